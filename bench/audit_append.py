"""Benchmark: audit appends with 8 concurrent writer processes on local PostgreSQL (issue 3).

Each writer process opens its own connection and appends single events (one transaction each, the way
the gateway and swarms append) to ONE tenant's chain — the worst case, since appends to a chain are
serialised. Reports sustained events/s, then checks the chain: gap-free seq, zero forks, verify intact.

    .venv/bin/python bench/audit_append.py [--writers 8] [--seconds 20] [--server URL] [--json]

Uses a throw-away database on the server (default postgresql://postgres@127.0.0.1:5432/test), dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
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

TENANT = "bench-tenant"


def _writer(url: str, writer: int, deadline: float, start: Any, counts: Any) -> None:
    async def main() -> int:
        appended = 0
        async with Database(url, max_size=1) as db:
            store = PostgresEventStore(db, UUID7Factory())
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
        store = PostgresEventStore(db, UUID7Factory())
        verifier = ChainVerifier(TENANT)
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    name = f"sb_bench_audit_append_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_database(args.server, name)
    try:
        upgrade_to_head(url)
        ctx = multiprocessing.get_context("spawn")
        start = ctx.Event()
        counts = ctx.Array("l", args.writers)
        deadline_holder = time.time() + 10.0 + args.seconds  # processes need a few seconds to start
        procs = [
            ctx.Process(target=_writer, args=(url, w, deadline_holder, start, counts))
            for w in range(args.writers)
        ]
        for p in procs:
            p.start()
        time.sleep(max(0.0, deadline_holder - args.seconds - time.time()))
        began = time.perf_counter()
        start.set()
        for p in procs:
            p.join()
        elapsed = time.perf_counter() - began
        total = sum(counts)
        check = asyncio.run(_check(url))
        result = {
            "writers": args.writers,
            "seconds": round(elapsed, 2),
            "events": total,
            "events_per_second": round(total / elapsed, 1),
            "per_writer": list(counts),
            **check,
        }
    finally:
        with psycopg.connect(args.server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{result['writers']} writers, {result['seconds']} s: {result['events']} events, "
            f"{result['events_per_second']} events/s; gap-free={result['gap_free']} forks={result['forks']} "
            f"verify_intact={result['verify_intact']}"
        )
        print(f"per writer: {result['per_writer']}")


if __name__ == "__main__":
    main()
