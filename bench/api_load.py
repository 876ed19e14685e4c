"""Read-API load benchmark: p50/p95/p99 and throughput at 16 concurrent clients, with 1,000,000 audit events
and 365 daily snapshots.

Run: .venv/bin/python bench/api_load.py [--clients 16] [--seconds 10] [--events 1000000] [--days 365]
                                        [--server postgresql://postgres@127.0.0.1:5432/test] [--fresh]
                                        [--tool wrk|httpx] [--rate 0] [--profile STATS_FILE]

- data: the cockpit benchmark's database (``sb_bench_cockpit``, seeded through the real EventStore,
  StateStore and gateway by ``bench/cockpit_pages.py``; topped up only when it holds less than asked);
- server: ``uvicorn studio_brain.web.app:app_from_environment --factory`` in its own process
  (``--workers``, default 1) on a free loopback port, scheduler off; planner statistics refreshed first;
- load: a second process — ``wrk`` (Debian package ``wrk``) when installed, else an httpx client in a
  subprocess — holding ``--clients`` keep-alive connections, each sending its next request as soon as the
  previous one answered (closed loop, no think time: the hardest reading of "16 concurrent clients"). With
  ``--rate R`` the httpx generator paces each client to R requests/second instead (open-loop-ish).
- every request carries an RS256 Firebase ID token of a staff user (``authorization: Bearer …``, the way
  the Portal calls), verified by the server against a local signing key it trusts
  (``STUDIO_BRAIN_FIREBASE_CERTS_FILE``); any non-2xx answer fails the run;
- per endpoint: server CPU per request (utime + stime of the server's processes, ``/proc/PID/stat``, before
  and after) and PostgreSQL backend CPU per request (backends of the database, pids from
  ``pg_stat_activity``), response bytes, and the server's idle RSS;
- ``--profile FILE``: the (single-worker) server runs under cProfile with the process clock
  (``bench/profiled_uvicorn.py``), switched on after the warm-up, its stats written to FILE when it stops
  (read them with ``python -m pstats FILE``); the CPU figures of such a run include the profiler's own.
Bounded: (endpoints + 1) x ``--seconds`` plus a warm-up, about two minutes with the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# the data set is shared with the cockpit benchmark (same seed, same database)
from bench.cockpit_pages import ADMIN_TOKEN, ensure_database, seed  # noqa: E402
from bench.server_cpu import (  # noqa: E402
    FirebaseTrust,
    cpu_spent,
    load_average,
    rss_mb,
    snapshot,
)
from bench.server_cpu import start_server as start_uvicorn  # noqa: E402

from studio_brain.adapters.postgres.database import libpq_url  # noqa: E402

#: the Firebase staff user every load request authenticates as
STAFF_UID = "bench-portal-staff"


def endpoints(events: int) -> list[tuple[str, str]]:
    today = date.today()
    middle = events // 2
    return [
        ("state: latest", "/api/v1/state/latest"),
        ("state: one day", f"/api/v1/state/{(today - timedelta(days=100)).isoformat()}"),
        (
            "state: 30-day history",
            f"/api/v1/state/history?start={(today - timedelta(days=29)).isoformat()}&end={today.isoformat()}",
        ),
        ("audit: newest 50", "/api/v1/audit?newestFirst=true&limit=50"),
        ("audit: 50 from the middle", f"/api/v1/audit?after={middle}&limit=50"),
        (
            "audit: by action, newest 50",
            "/api/v1/audit?actionPrefix=capability.proposal&newestFirst=true&limit=50",
        ),
        ("audit: by actor, newest 50", "/api/v1/audit?actorId=actor-7&newestFirst=true&limit=50"),
        ("proposals: newest 50", "/api/v1/proposals?limit=50"),
        ("capabilities", "/api/v1/capabilities"),
        ("portal: capabilities", "/api/capabilities"),
        ("portal: audit 100", "/api/capabilities/audit?limit=100"),
    ]


def analyze(url: str) -> None:
    """Fresh planner statistics, as autovacuum would have gathered on a live brain: right after a bulk
    seed the planner believes the audit table is tiny and picks a full-scan plan for filtered pages."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("ANALYZE")


def start_server(
    url: str, home: Path, workers: int, trust: FirebaseTrust, profile: Path | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """``uvicorn … --factory --workers N`` in its own process on a free loopback port, trusting ``trust``."""
    return start_uvicorn(
        url, home, workers, {**trust.env(), "STUDIO_BRAIN_ADMIN_TOKEN": ADMIN_TOKEN}, profile=profile
    )


# --- load generators (each runs in its own process) -----------------------------------------------

WRK_SCRIPT = """
wrk.headers["authorization"] = "%(authorization)s"
local paths = %(paths)s
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1])
end
done = function(summary, latency, requests)
  io.write(string.format(
    '\\nRESULT {"requests":%%d,"seconds":%%f,"non2xx":%%d,"errors":%%d,"p50":%%f,"p95":%%f,"p99":%%f,"max":%%f}\\n',
    summary.requests, summary.duration / 1e6, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000))
end
"""


def run_wrk(
    base: str, paths: list[str], clients: int, seconds: int, headers: dict[str, str]
) -> dict[str, Any]:
    lua_paths = "{" + ", ".join(json.dumps(p) for p in paths) + "}"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % {"authorization": headers["authorization"], "paths": lua_paths})
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t",
                "2",
                "-c",
                str(clients),
                "-d",
                f"{seconds}s",
                "--timeout",
                "10s",
                "-s",
                script.name,
                base,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    return result


async def _httpx_load(
    base: str, paths: list[str], clients: int, seconds: int, rate: float, headers: dict[str, str]
) -> dict[str, Any]:
    timings: list[float] = []
    failures = 0
    received = 0
    stop = time.perf_counter() + seconds

    async def client(index: int) -> None:
        nonlocal failures, received
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as http:
            n = index
            next_at = time.perf_counter()
            while time.perf_counter() < stop:
                if rate > 0:
                    next_at += 1.0 / rate
                    await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                started = time.perf_counter()
                response = await http.get(paths[n % len(paths)])
                timings.append((time.perf_counter() - started) * 1000)
                failures += response.status_code >= 300
                received += len(response.content)
                n += 1

    began = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = time.perf_counter() - began
    timings.sort()

    def pct(p: float) -> float:
        return timings[min(len(timings) - 1, int(p / 100 * len(timings)))] if timings else float("nan")

    return {
        "requests": len(timings),
        "seconds": elapsed,
        "non2xx": failures,
        "errors": 0,
        "p50": pct(50),
        "p95": pct(95),
        "p99": pct(99),
        "max": timings[-1] if timings else float("nan"),
        "bytes": received,
    }


def run_httpx(
    base: str, paths: list[str], clients: int, seconds: int, rate: float, headers: dict[str, str]
) -> dict[str, Any]:
    """The httpx generator in a subprocess (this same script with --worker), so it is a second process."""
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--worker",
            base,
            "--clients",
            str(clients),
            "--seconds",
            str(seconds),
            "--rate",
            str(rate),
            "--paths",
            json.dumps(paths),
            "--headers",
            json.dumps(headers),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument(
        "--seconds", type=int, default=10, help="per endpoint (the mixed run takes twice that)"
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--fresh", action="store_true", help="drop and reseed the benchmark database")
    parser.add_argument("--tool", choices=["wrk", "httpx"], default="wrk" if shutil.which("wrk") else "httpx")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="httpx only: requests/s per client (0: closed loop)"
    )
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated substrings: measure only the endpoints whose label matches",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="STATS_FILE",
        help="run the server under cProfile (process clock) after the warm-up; stats written here",
    )
    parser.add_argument("--worker", metavar="BASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--paths", help=argparse.SUPPRESS)
    parser.add_argument("--headers", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:  # the load-generating subprocess
        result = asyncio.run(
            _httpx_load(
                args.worker,
                json.loads(args.paths),
                args.clients,
                args.seconds,
                args.rate,
                json.loads(args.headers),
            )
        )
        print(json.dumps(result))
        return
    if args.tool == "wrk" and args.rate:
        parser.error("--rate needs --tool httpx (wrk always runs closed loop)")
    if args.profile is not None and args.workers != 1:
        parser.error("--profile profiles one worker: leave --workers at 1")

    url = ensure_database(args.server, args.fresh)
    seeded = asyncio.run(seed(url, args.events, args.days))
    print(
        f"data: {args.events:,} audit events, {args.days} daily snapshots (seeding took {seeded['seed_seconds']:.0f} s)"
    )
    analyze(url)
    home = ROOT / "bench" / "results" / "api-home"
    home.mkdir(parents=True, exist_ok=True)
    trust = FirebaseTrust.create(home)
    headers = trust.staff_headers(STAFF_UID)
    process, base = start_server(url, home, args.workers, trust, args.profile)
    time.sleep(1.0)
    idle_rss = rss_mb(process.pid)
    mode = "closed loop" if args.rate == 0 else f"{args.rate:g} req/s per client"
    print(
        f"load: {args.tool}, {args.clients} concurrent clients, {mode}, {args.seconds} s per endpoint; "
        f"server: {args.workers} uvicorn worker(s), idle RSS {idle_rss:.0f} MB; load {load_average()}"
    )

    def load(paths: list[str], seconds: int) -> dict[str, Any]:
        if args.tool == "wrk":
            return run_wrk(base, paths, args.clients, seconds, headers)
        return run_httpx(base, paths, args.clients, seconds, args.rate, headers)

    try:
        table = endpoints(args.events)
        if args.only:
            table = [(label, p) for label, p in table if any(w in label for w in args.only.split(","))]
        sizes: dict[str, int] = {}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as check:
            for _label, path in table:  # warm-up, and fail fast on anything but 200
                for _ in range(5):
                    response = check.get(path)
                    if response.status_code != 200:
                        raise SystemExit(f"{path} answered {response.status_code}: {response.text[:300]}")
                sizes[path] = len(response.content)
        if args.profile is not None:
            process.send_signal(signal.SIGUSR1)  # bench/profiled_uvicorn.py: profile from here on
        print(
            f"{'endpoint':30} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} "
            f"{'srv CPU ms/req':>14} {'PG CPU ms/req':>13} {'KB':>6}"
        )
        worst = 0.0
        for label, path in [*table, ("mixed (all of the above)", "")]:
            paths = [p for _, p in table] if not path else [path]
            before = snapshot(process.pid, url)
            result = load(paths, args.seconds * (2 if not path else 1))
            server_s, db_s = cpu_spent(before, snapshot(process.pid, url))
            if result["non2xx"] or result["errors"]:
                raise SystemExit(
                    f"{label}: {result['non2xx']} non-2xx answers, {result['errors']} socket errors"
                )
            rps = result["requests"] / result["seconds"]
            worst = max(worst, result["p99"])
            per = 1000 / max(1, result["requests"])
            size = f"{sizes[path] / 1024:6.1f}" if path else f"{'':>6}"
            print(
                f"{label:30} {rps:8.0f} {result['p50']:8.1f} {result['p95']:8.1f} {result['p99']:8.1f} "
                f"{result['max']:8.1f} {server_s * per:14.2f} {db_s * per:13.2f} {size}",
                flush=True,
            )
        print(
            f"worst p99: {worst:.1f} ms (target < 50 ms); load after {load_average()}; targets (issue 18): "
            "server CPU ≤ 1.0 ms/request for capabilities and the audit page of 100, ≤ 0.25 ms for the "
            "latest state; audit page of 100 ≤ 80 KB"
        )
    finally:
        process.terminate()
        process.wait(10)


if __name__ == "__main__":
    main()
