"""Foundation benchmark: cold and warm start to /readyz ok, embedded database start, idle RSS of serve.

Run: .venv/bin/python bench/startup.py [--runs 3]
- cold start: `studio-brain demo` on an empty STUDIO_BRAIN_HOME (initdb + migrate + demo data) to /readyz ok
- warm start: the same home again
- embedded start: start_embedded() on a fresh and on an existing data directory, in-process
- idle RSS: `studio-brain serve` against the machine's PostgreSQL (no embedded server in the figure),
  after start-up and 20 requests, measured with psutil (the Python process only)
The pip install is excluded (it is a one-time step of ./scripts/run).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
CLI = [str(ROOT / ".venv" / "bin" / "studio-brain")]
MACHINE_PG = "postgresql://postgres@127.0.0.1:5432/test"
BENCH_DB = "sb_bench_startup"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, timeout: float = 180) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                if json.loads(r.read()).get("ok"):
                    return time.perf_counter()
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("never ready")


def timed_start(
    home: Path, command: str, env_extra: dict[str, str] | None = None
) -> tuple[float, subprocess.Popen[bytes], int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_BRAIN_")}
    env.update({"STUDIO_BRAIN_HOME": str(home), **(env_extra or {})})
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*CLI, command, "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    ready = wait_ready(port)
    return ready - started, proc, port


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    proc.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, object] = {}

    cold, warm = [], []
    for _ in range(args.runs):
        home = Path(tempfile.mkdtemp(prefix="sb-bench-"))
        try:
            seconds, proc, _ = timed_start(home, "demo")
            cold.append(seconds)
            stop(proc)
            seconds, proc, _ = timed_start(home, "demo")
            warm.append(seconds)
            stop(proc)
        finally:
            shutil.rmtree(home, ignore_errors=True)
    results["cold_start_demo_to_ready_s"] = {"median": statistics.median(cold), "runs": cold}
    results["warm_start_demo_to_ready_s"] = {"median": statistics.median(warm), "runs": warm}

    from studio_brain.adapters.postgres.embedded import start_embedded, stop_embedded

    fresh, existing = [], []
    for _ in range(args.runs):
        home = Path(tempfile.mkdtemp(prefix="sb-bench-pg-"))
        try:
            server = start_embedded(home)
            fresh.append(server.started_in_seconds)
            stop_embedded(server)
            server = start_embedded(home)
            existing.append(server.started_in_seconds)
            stop_embedded(server)
        finally:
            shutil.rmtree(home, ignore_errors=True)
    results["embedded_start_fresh_initdb_s"] = {"median": statistics.median(fresh), "runs": fresh}
    results["embedded_start_existing_s"] = {"median": statistics.median(existing), "runs": existing}

    import psycopg

    with psycopg.connect(MACHINE_PG, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    home = Path(tempfile.mkdtemp(prefix="sb-bench-rss-"))
    try:
        bench_url = MACHINE_PG.rsplit("/", 1)[0] + "/" + BENCH_DB
        _, proc, port = timed_start(home, "serve", {"STUDIO_BRAIN_DATABASE_URL": bench_url})
        for _ in range(20):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5).read()
        time.sleep(2)
        rss = psutil.Process(proc.pid).memory_info().rss / 2**20
        results["idle_rss_serve_mb"] = round(rss, 1)
        stop(proc)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    json.dump(results, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
