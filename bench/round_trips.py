"""Counts database round trips and statements per gateway lifecycle and per credential lookup (issue 18).

The first column is the wire's count (``bench/wire_trips.py``: every wait for the server's answer); the
one in brackets is the count by calls described below, which misses psycopg's BEGIN and COMMIT inside a
pipeline (each followed by a Sync psycopg waits for) and was the only count until 2026-12-03. The last
column, queries sent, is ``bench/wire_trips.py``'s too: what psycopg hands libpq, a simple-protocol query
string being one whatever it holds (ADR 0018) — the count the server's CPU follows (since 2026-12-04).

    .venv/bin/python bench/round_trips.py [--lifecycles 10] [--warmup 20]

In-process, deterministic (the counts do not depend on the machine's load): ``GatewayService`` with a
keyring, as the server has it, runs create → approve → execute ``studio.note.append`` on a throw-away
database; psycopg's cursor ``execute``/``executemany``/``stream``, the connection's ``commit``/``rollback``
and ``pipeline`` are wrapped to count. A statement outside a pipeline is one round trip, a pipeline block
is one round trip whatever it holds (statements inside it are counted as statements only), a COMMIT or
ROLLBACK outside a pipeline is one round trip of its own (and none outside a transaction: psycopg
sends nothing then). The pool's liveness check (an empty statement)
counts like any statement. Then the per-request credential lookups of the identity store (a Firebase
uid's person, a session's and a personal token's row with its person) are counted the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.gateway_lifecycle import in_process_gateway
from bench.wire_trips import WireTrips, counting_wire_trips

from studio_brain.adapters.clock import SystemClock, UUID7Factory
from studio_brain.adapters.postgres.database import Database, with_database
from studio_brain.adapters.postgres.identity_store import PostgresIdentityStore
from studio_brain.adapters.postgres.migrate import upgrade_to_head
from studio_brain.domain.audit import ActorType
from studio_brain.domain.identity import AuthMethod, Principal
from studio_brain.domain.proposals import Status
from studio_brain.domain.records import Keyring, MacKey
from studio_brain.logging import configure_logging

TENANT = "bench-studio"


@dataclass
class Counts:
    round_trips: int = 0
    statements: int = 0
    commits: int = 0
    depth: int = 0  # open pipeline blocks
    #: with --trace: each round trip's statements, in order
    trace: list[list[str]] | None = None

    def reset(self) -> None:
        self.round_trips = self.statements = self.commits = 0
        if self.trace is not None:
            self.trace = []

    def note(self, what: object, *, trip: bool) -> None:
        if self.trace is None:
            return
        text = " ".join(str(getattr(what, "as_string", lambda: what)()).split())[:70] or "(empty)"
        if trip or not self.trace:
            self.trace.append([])
        self.trace[-1].append(text)


COUNTS = Counts()


def install_counters() -> None:
    """Wrap psycopg's async cursor and connection methods to count round trips and statements."""
    cursor = psycopg.AsyncCursor
    conn = psycopg.AsyncConnection
    execute, executemany, stream = cursor.execute, cursor.executemany, cursor.stream
    commit, rollback, pipeline = conn.commit, conn.rollback, conn.pipeline

    async def counted_execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        COUNTS.statements += 1
        COUNTS.commits += args[0] == "COMMIT"  # queued in a pipeline (commit_in_pipeline)
        COUNTS.round_trips += COUNTS.depth == 0
        COUNTS.note(args[0], trip=COUNTS.depth == 0)
        return await execute(self, *args, **kwargs)

    async def counted_executemany(self: Any, query: Any, params_seq: Any, **kwargs: Any) -> Any:
        params = list(params_seq)
        COUNTS.statements += len(params)
        COUNTS.round_trips += COUNTS.depth == 0  # executemany pipelines its statements
        COUNTS.note(query, trip=COUNTS.depth == 0)
        return await executemany(self, query, params, **kwargs)

    def counted_stream(self: Any, *args: Any, **kwargs: Any) -> Any:
        COUNTS.statements += 1
        COUNTS.round_trips += 1
        return stream(self, *args, **kwargs)

    def in_transaction(self: Any) -> bool:
        # psycopg sends nothing for a COMMIT or ROLLBACK outside a transaction (e.g. the pool's block end)
        return bool(COUNTS.depth or self.info.transaction_status != TransactionStatus.IDLE)

    async def counted_commit(self: Any) -> None:
        if in_transaction(self):
            COUNTS.statements += 1
            COUNTS.commits += 1
            COUNTS.round_trips += COUNTS.depth == 0
            COUNTS.note("COMMIT", trip=COUNTS.depth == 0)
        await commit(self)

    async def counted_rollback(self: Any) -> None:
        if in_transaction(self):
            COUNTS.statements += 1
            COUNTS.round_trips += COUNTS.depth == 0
            COUNTS.note("ROLLBACK", trip=COUNTS.depth == 0)
        await rollback(self)

    @asynccontextmanager
    async def counted_pipeline(self: Any) -> AsyncIterator[Any]:
        outermost = COUNTS.depth == 0
        if outermost and COUNTS.trace is not None:
            COUNTS.trace.append(["[pipeline]"])
        COUNTS.depth += 1
        try:
            async with pipeline(self) as p:
                yield p
        finally:
            COUNTS.depth -= 1
            COUNTS.round_trips += outermost  # a nested block's sync is counted with the outer one

    cursor.execute = counted_execute  # type: ignore[method-assign]
    cursor.executemany = counted_executemany  # type: ignore[method-assign]
    cursor.stream = counted_stream  # type: ignore[method-assign]
    conn.commit = counted_commit  # type: ignore[method-assign]
    conn.rollback = counted_rollback  # type: ignore[method-assign]
    conn.pipeline = counted_pipeline  # type: ignore[method-assign,assignment]


#: the wire's count (bench/wire_trips.py), taken beside the call counts above while ``run`` runs
WIRE = WireTrips()


async def measure(
    label: str, what: Callable[[], Awaitable[object]], times: int, warmup: int
) -> tuple[float, float, float]:
    for _ in range(warmup):
        await what()
    COUNTS.reset()
    WIRE.reset()
    for _ in range(times):
        await what()
    per = (COUNTS.round_trips / times, COUNTS.statements / times, COUNTS.commits / times)
    print(
        f"{label:<44} {WIRE.count / times:6.1f} round trips on the wire ({per[0]:.1f} by calls)"
        f" {per[1]:6.1f} statements {per[2]:5.1f} commits {WIRE.queries / times:6.1f} queries sent"
    )
    if COUNTS.trace is not None:
        for n, trip in enumerate(COUNTS.trace[: len(COUNTS.trace) // times], 1):
            print(f"  {n:2}. " + "\n      ".join(trip))
    return per


async def run(url: str, lifecycles: int, warmup: int, trace: bool) -> None:
    if trace:
        COUNTS.trace = []
    database = Database(url, max_size=4)
    await database.open()
    clock, ids = SystemClock(), UUID7Factory()
    keyring = Keyring(current=MacKey(key_id="mk-bench", secret=bytes(range(32))))
    service = in_process_gateway(database, clock, ids, keyring)
    requester = Principal(
        tenant_id=TENANT,
        actor_type=ActorType.STAFF,
        actor_id="req-1",
        via=AuthMethod.CLI,
        roles=frozenset({"staff"}),
    )
    approver = Principal(
        tenant_id=TENANT,
        actor_type=ActorType.STAFF,
        actor_id="app-1",
        via=AuthMethod.CLI,
        roles=frozenset({"staff"}),
    )

    async def lifecycle() -> None:
        created = await service.create_proposal(
            requester, "studio.note.append", {"text": "counted"}, "round-trip count"
        )
        await service.approve(approver, created.proposal.id, "counted approval")
        result = await service.execute(approver, created.proposal.id)
        assert result.proposal.status is Status.EXECUTED

    install_counters()
    wire = counting_wire_trips(WIRE)
    wire.__enter__()  # for the rest of the process: the benchmark ends with it
    await measure("lifecycle (create → approve → execute)", lifecycle, lifecycles, warmup)
    identities = PostgresIdentityStore(database)
    # unknown credentials: the same statements and round trips as a hit (one row fewer in the answer)
    await measure(
        "Firebase uid → person",
        lambda: identities.person_by_firebase_uid(TENANT, "uid-unknown"),
        lifecycles,
        warmup,
    )
    await measure(
        "session → session and person",
        lambda: identities.session_and_person(TENANT, "mac-unknown"),
        lifecycles,
        warmup,
    )
    await measure(
        "personal token → token and person",
        lambda: identities.token_and_person(TENANT, "mac-unknown"),
        lifecycles,
        warmup,
    )
    await database.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lifecycles", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--trace", action="store_true", help="print one lifecycle's round trips")
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    configure_logging(level="warning", fmt="json")
    name = f"sb_bench_trips_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_database(args.server, name)
    try:
        upgrade_to_head(url)
        asyncio.run(run(url, args.lifecycles, args.warmup, args.trace))
    finally:
        with psycopg.connect(args.server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
