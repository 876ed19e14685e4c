"""Benchmark: audit appends with 8 concurrent writers on local PostgreSQL (issue 3).

Every writer appends single events, one call each (the way the gateway and swarms append), to ONE
tenant's chain — the worst case, since appends to a chain are serialised and each transaction waits for
its WAL flush. Two modes:

- ``tasks``: 8 concurrent writers in one process sharing one PostgresEventStore (how `studio-brain serve`
  runs: the store coalesces concurrent appends into shared transactions — group commit);
- ``processes``: 8 writer processes, each with its own store and connection (no coalescing possible:
  one WAL flush per event).

Reports sustained events/s, then checks the chain: gap-free seq, zero forks, verify intact.

    .venv/bin/python bench/audit_append.py [--mode both|tasks|processes] [--writers 8] [--seconds 20]
                                           [--server URL] [--json]

Uses a throw-away database on the server (default postgresql://postgres@127.0.0.1:5432/test), dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import time
import uuid
from typing import Any

import psycopg
from psycopg import sql

from studio_brain.adapters.clock import UUID7Factory
from studio_brain.adapters.postgres.database import Database, with_database
from studio_brain.adapters.postgres.event_store import PostgresEventStore
from studio_brain.adapters.postgres.migrate import upgrade_to_head
from studio_brain.domain.audit import ActorType, ApprovalState, AuditDraft, ChainVerifier
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.records import Keyring, MacKey

TENANT = "bench-tenant"

#: keyed appends (issue 12): every event is sealed with its MAC, as `studio-brain serve` seals them
#: (``--format 1``: unkeyed, as before the keyed chain; passed to writer processes in the environment)
_KEY = Keyring(current=MacKey(key_id="mk-bench", secret=bytes(range(32))))
KEYRING = _KEY if os.environ.get("SB_BENCH_AUDIT_FORMAT", "2") == "2" else None


def _writer(url: str, writer: int, deadline: float, start: Any, counts: Any) -> None:
    async def main() -> int:
        appended = 0
        async with Database(url, max_size=1) as db:
            store = PostgresEventStore(db, UUID7Factory(), KEYRING)
            start.wait()
            while time.time() < deadline:
                await store.append(
                    AuditDraft(
                        tenant_id=TENANT,
                        actor_type=ActorType.AGENT,
                        actor_id=f"writer-{writer}",
                        action="bench.audit.append",
                        target="local",
                        rationale=f"writer {writer} event {appended}",
                        approval_state=ApprovalState.EXEMPT,
                        input_hash=sha256_hex([writer, appended]),
                        request_id=f"{writer}-{appended}",
                        correlation_id=f"writer-{writer}",
                        metadata={"writer": writer, "n": appended},
                    )
                )
                appended += 1
        return appended

    counts[writer] = asyncio.run(main())


async def _check(url: str) -> dict[str, Any]:
    async with Database(url, max_size=1) as db:
        store = PostgresEventStore(db, UUID7Factory(), KEYRING)
        verifier = ChainVerifier(TENANT, keyring=KEYRING)
        async for event in store.stream(TENANT):
            if verifier.feed(event) is not None:
                break
        problem = verifier.finish()
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*), min(seq), max(seq), count(DISTINCT prev_hash) FROM audit_events WHERE tenant_id = %s",
            (TENANT,),
        ).fetchone()
    assert row is not None
    count, first, last, parents = row
    return {
        "events": count,
        "gap_free": count == 0 or (first == 1 and last == count),
        "forks": count - parents,
        "verify_intact": problem is None,
    }


async def _tasks(url: str, writers: int, seconds: float) -> list[int]:
    async with Database(url, max_size=writers) as db:
        store = PostgresEventStore(db, UUID7Factory(), KEYRING)
        deadline = time.time() + seconds

        async def writer(w: int) -> int:
            appended = 0
            while time.time() < deadline:
                await store.append(
                    AuditDraft(
                        tenant_id=TENANT,
                        actor_type=ActorType.AGENT,
                        actor_id=f"writer-{w}",
                        action="bench.audit.append",
                        target="local",
                        rationale=f"writer {w} event {appended}",
                        approval_state=ApprovalState.EXEMPT,
                        input_hash=sha256_hex([w, appended]),
                        request_id=f"{w}-{appended}",
                        correlation_id=f"writer-{w}",
                        metadata={"writer": w, "n": appended},
                    )
                )
                appended += 1
            return appended

        return list(await asyncio.gather(*(writer(w) for w in range(writers))))


def _run_processes(url: str, writers: int, seconds: float) -> tuple[list[int], float]:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    counts = ctx.Array("l", writers)
    deadline = time.time() + 10.0 + seconds  # processes need a few seconds to start
    procs = [ctx.Process(target=_writer, args=(url, w, deadline, start, counts)) for w in range(writers)]
    for p in procs:
        p.start()
    time.sleep(max(0.0, deadline - seconds - time.time()))
    began = time.perf_counter()
    start.set()
    for p in procs:
        p.join()
    return list(counts), time.perf_counter() - began


def _run(server: str, mode: str, writers: int, seconds: float) -> dict[str, Any]:
    name = f"sb_bench_audit_append_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_database(server, name)
    try:
        upgrade_to_head(url)
        if mode == "tasks":
            began = time.perf_counter()
            counts = asyncio.run(_tasks(url, writers, seconds))
            elapsed = time.perf_counter() - began
        else:
            counts, elapsed = _run_processes(url, writers, seconds)
        total = sum(counts)
        return {
            "mode": mode,
            "writers": writers,
            "seconds": round(elapsed, 2),
            "events": total,
            "events_per_second": round(total / elapsed, 1),
            "per_writer": counts,
            **asyncio.run(_check(url)),
        }
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _commit_latency_ms(server: str) -> float:
    """One durable commit of a one-row insert: the floor under serialised appends on this disk."""
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS sb_bench_fsync_probe (x int)")
        try:
            began = time.perf_counter()
            for _ in range(100):
                conn.execute("INSERT INTO sb_bench_fsync_probe VALUES (1)")
            return (time.perf_counter() - began) / 100 * 1000
        finally:
            conn.execute("DROP TABLE sb_bench_fsync_probe")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--mode", choices=["both", "tasks", "processes"], default="both")
    parser.add_argument("--format", type=int, choices=(1, 2), default=2, help="1: unkeyed appends; 2: keyed")
    args = parser.parse_args()
    global KEYRING
    os.environ["SB_BENCH_AUDIT_FORMAT"] = str(args.format)
    KEYRING = _KEY if args.format == 2 else None
    modes = ["tasks", "processes"] if args.mode == "both" else [args.mode]
    results = [_run(args.server, mode, args.writers, args.seconds) for mode in modes]
    latency = _commit_latency_ms(args.server)
    if args.json:
        print(json.dumps({"results": results, "durable_commit_ms": round(latency, 2)}, indent=2))
        return
    for r in results:
        print(
            f"{r['mode']:>9}: {r['writers']} writers, {r['seconds']} s: {r['events']} events, "
            f"{r['events_per_second']} events/s; gap-free={r['gap_free']} forks={r['forks']} "
            f"verify_intact={r['verify_intact']}; per writer {r['per_writer']}"
        )
    print(
        f"one durable commit on this server: {latency:.2f} ms (max {1000 / latency:.0f} serialised commits/s)"
    )


if __name__ == "__main__":
    main()
