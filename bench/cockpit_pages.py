"""Cockpit benchmark: page latency (p50/p95/max) with 1,000,000 audit events and 365 daily snapshots.

Run: .venv/bin/python bench/cockpit_pages.py [--events 1000000] [--days 365] [--requests 200]
                                             [--server postgresql://postgres@127.0.0.1:5432/test] [--fresh]

- data: a database ``sb_bench_cockpit`` on the server (kept between runs, topped up only when it holds
  fewer events or snapshots than asked; --fresh starts over), filled through the real EventStore and
  StateStore, plus 300 proposals through the real gateway;
- server: ``uvicorn studio_brain.web.app:app_from_environment --factory`` in a second process on a free
  loopback port, so the client's work is not counted against the server;
- client: one keep-alive connection with the admin-token header (a staff principal), sequential GETs,
  10 warm-up requests per page, then ``--requests`` timed ones. Bounded: at most a few minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.seed import audit_draft, propose_note, snapshot_run  # noqa: E402

from studio_brain.adapters.postgres.database import Database, libpq_url, with_database  # noqa: E402
from studio_brain.adapters.postgres.migrate import upgrade_to_head  # noqa: E402
from studio_brain.bootstrap import DatabaseTarget, open_brain  # noqa: E402
from studio_brain.domain.audit import ActorType  # noqa: E402
from studio_brain.domain.identity import AuthMethod, Principal  # noqa: E402
from studio_brain.ports.gateway import ProposalFilter  # noqa: E402
from studio_brain.settings import load_settings  # noqa: E402

BENCH_DB = "sb_bench_cockpit"
TENANT = "monsoonfire-main"
#: proposals in the queue (the Proposals page shows the newest 100)
PROPOSALS = 300
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"  # noqa: S105 - a throwaway token for a loopback benchmark


def ensure_database(server: str, fresh: bool) -> str:
    with psycopg.connect(libpq_url(server), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (BENCH_DB,)).fetchone()
        if exists and fresh:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(BENCH_DB)))
            exists = None
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DB)))
    url = with_database(server, BENCH_DB)
    upgrade_to_head(url)
    return url


async def seed(url: str, events: int, days: int) -> dict[str, Any]:
    db = Database(url, max_size=2)
    await db.open()
    try:
        async with db.connection() as conn:
            have_events = (
                await (
                    await conn.execute(
                        "SELECT count(*) AS n FROM audit_events WHERE tenant_id = %s", (TENANT,)
                    )
                ).fetchone()
            )["n"]
            have_days = (
                await (
                    await conn.execute(
                        "SELECT count(*) AS n FROM snapshot_runs WHERE tenant_id = %s", (TENANT,)
                    )
                ).fetchone()
            )["n"]
    finally:
        await db.close()
    os.environ.update(STUDIO_BRAIN_DATABASE_URL=url, STUDIO_BRAIN_ADMIN_TOKEN=ADMIN_TOKEN)
    settings = load_settings()
    started = time.perf_counter()
    async with open_brain(settings, target=DatabaseTarget(url=url, embedded=None)) as brain:
        today = date.today()
        if have_days < days:
            existing = {
                r.snapshot_date
                for r in await brain.state_store.history(TENANT, today - timedelta(days=days), today)
            }
            for back in range(days):
                day = today - timedelta(days=back)
                if day not in existing:
                    await brain.state_store.save_run(snapshot_run(day, days - back, tenant_id=TENANT))
        if brain.gateway is not None:
            staff = Principal(
                tenant_id=TENANT,
                actor_type=ActorType.STAFF,
                actor_id="bench-staff",
                via=AuthMethod.SESSION,
                roles=frozenset({"staff"}),
            )
            have = await brain.gateway.list_proposals(staff, ProposalFilter(limit=PROPOSALS))
            for i in range(len(have), PROPOSALS):
                await propose_note(brain.gateway, staff, text=f"bench note {i}")
        batch = 5000
        n = have_events
        actions = ("state.snapshot.computed", "capability.proposal.created", "connector.health.checked")
        while n < events:
            size = min(batch, events - n)
            await brain.events.append_many(
                [
                    audit_draft(TENANT, n + i, action=actions[(n + i) % 3], actor_id=f"actor-{(n + i) % 50}")
                    for i in range(size)
                ]
            )
            n += size
            if n % 100_000 < batch:
                print(f"  seeded {n:,} events ({time.perf_counter() - started:.0f} s)", flush=True)
    return {
        "events_before": have_events,
        "days_before": have_days,
        "seed_seconds": time.perf_counter() - started,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(url: str, home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_BRAIN_")}
    env.update(
        STUDIO_BRAIN_DATABASE_URL=url,
        STUDIO_BRAIN_ADMIN_TOKEN=ADMIN_TOKEN,
        STUDIO_BRAIN_HOME=str(home),
        STUDIO_BRAIN_LOG_LEVEL="warning",
    )
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "studio_brain.web.app:app_from_environment",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    process = subprocess.Popen(command, env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.1)
    process.terminate()
    raise RuntimeError("server did not start")


def measure(client: httpx.Client, path: str, requests: int) -> dict[str, float]:
    for _ in range(10):
        response = client.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"{path} answered {response.status_code}: {response.text[:200]}")
    timings = []
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    timings.sort()
    return {
        "p50": statistics.median(timings),
        "p95": timings[int(0.95 * len(timings)) - 1],
        "max": timings[-1],
    }


def report(label: str, result: dict[str, float]) -> None:
    print(f"{label:36} {result['p50']:8.1f} {result['p95']:8.1f} {result['max']:8.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--fresh", action="store_true", help="drop and reseed the benchmark database")
    args = parser.parse_args()

    url = ensure_database(args.server, args.fresh)
    seeded = asyncio.run(seed(url, args.events, args.days))
    print(
        f"data: {args.events:,} audit events, {args.days} daily snapshots "
        f"(seeding took {seeded['seed_seconds']:.0f} s; {seeded['events_before']:,} events were already there)"
    )
    home = ROOT / "bench" / "results" / "cockpit-home"
    home.mkdir(parents=True, exist_ok=True)
    process, base = start_server(url, home)
    try:
        with httpx.Client(
            base_url=base, headers={"x-studio-brain-admin-token": ADMIN_TOKEN}, timeout=30
        ) as client:
            middle = args.events // 2
            pages = [
                ("Today (30-day sparklines)", "/"),
                ("Audit, newest page", "/audit"),
                ("Audit, page in the middle", f"/audit?before={middle}"),
                ("Audit, filtered by action", "/audit?action=capability.proposal"),
                ("Audit, filtered by actor", "/audit?actor=actor-7"),
                ("Audit, actor with no events", "/audit?actor=nobody"),
                ("Audit, capability with no events", "/audit?capability=hubitat.switch.set"),
                ("Proposals", "/proposals"),
                ("Proposals, pending only", "/proposals?status=pending_approval"),
                ("Connectors", "/connectors"),
                ("Policy", "/policy"),
            ]
            print(f"{'page':36} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
            for label, path in pages:
                report(label, measure(client, path, args.requests))
            start = time.perf_counter()
            verified = client.post("/audit/verify", timeout=900)
            seconds = time.perf_counter() - start
            badge = client.get("/audit").text.split('data-testid="verification">', 1)[-1].split("<", 1)[0]
            print(
                f"Verify whole chain now (one POST): {seconds:.1f} s, HTTP {verified.status_code}; badge: {badge}"
            )
            report("Audit, newest page, chain verified", measure(client, "/audit", args.requests))
    finally:
        process.terminate()
        process.wait(10)


if __name__ == "__main__":
    main()
