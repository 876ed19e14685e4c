"""Benchmark: full lifecycles (create → approve → execute ``studio.note.append``) through GatewayService on
local PostgreSQL with N concurrent clients; lifecycles/s and p50/p99 per step.

Run: .venv/bin/python bench/gateway_lifecycle.py [--clients 8] [--seconds 10] [--server postgresql://postgres@127.0.0.1:5432/test]
Creates a throw-away database on the server, migrates it, and drops it afterwards. Loopback only.
The registry is the shipped one with the note's rate limit raised (the shipped 600/hour would refuse
a benchmark on purpose). Targets: ≥ 100 lifecycles/s with 8 clients, p99 per step < 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import psycopg
from psycopg import sql

from studio_brain.adapters.capability_registry import registry_text
from studio_brain.adapters.clock import SystemClock, UUID7Factory
from studio_brain.adapters.connector_directory import DictConnectorDirectory
from studio_brain.adapters.local_connector import LocalNotesConnector
from studio_brain.adapters.postgres.database import Database, with_database
from studio_brain.adapters.postgres.event_store import PostgresEventStore
from studio_brain.adapters.postgres.gateway_store import PostgresGatewayStore
from studio_brain.adapters.postgres.migrate import upgrade_to_head
from studio_brain.domain.audit import ActorType
from studio_brain.domain.capabilities import parse_registry_toml
from studio_brain.domain.connectors import ConnectorMode
from studio_brain.domain.identity import AuthMethod, Principal
from studio_brain.domain.proposals import Status
from studio_brain.logging import configure_logging
from studio_brain.services.gateway import GatewayService

TENANT = "bench-studio"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bench(url: str, clients: int, seconds: float, tenants: int) -> None:
    database = Database(url, max_size=clients + 2)
    await database.open()
    clock, ids = SystemClock(), UUID7Factory()
    _, text = registry_text(None)
    registry = parse_registry_toml(
        text.replace("perHour = 600, burst = 120", "perHour = 1000000, burst = 100000")
    )
    assert registry.valid
    service = GatewayService(
        store=PostgresGatewayStore(database, PostgresEventStore(database, ids)),
        registry=registry,
        connectors=DictConnectorDirectory(
            local_factory=lambda t: LocalNotesConnector(
                database, tenant_id=t, clock=clock, ids=ids, mode=ConnectorMode.READ_WRITE
            )
        ),
        clock=clock,
        ids=ids,
        tenant_id=TENANT,
    )
    steps: dict[str, list[float]] = {"create": [], "approve": [], "execute": []}
    done = 0
    stop = time.perf_counter() + seconds

    async def client(n: int) -> None:
        nonlocal done
        tenant = TENANT if tenants == 1 else f"{TENANT}-{n % tenants}"
        requester = Principal(
            tenant_id=tenant,
            actor_type=ActorType.STAFF,
            actor_id=f"req-{n}",
            via=AuthMethod.CLI,
            roles=frozenset({"staff"}),
        )
        approver = Principal(
            tenant_id=tenant,
            actor_type=ActorType.STAFF,
            actor_id=f"app-{n}",
            via=AuthMethod.CLI,
            roles=frozenset({"staff"}),
        )
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            created = await service.create_proposal(
                requester, "studio.note.append", {"text": f"bench {n}"}, "benchmark lifecycle"
            )
            t1 = time.perf_counter()
            await service.approve(approver, created.proposal.id, "benchmark approval")
            t2 = time.perf_counter()
            result = await service.execute(approver, created.proposal.id)
            t3 = time.perf_counter()
            assert result.proposal.status is Status.EXECUTED
            steps["create"].append((t1 - t0) * 1000)
            steps["approve"].append((t2 - t1) * 1000)
            steps["execute"].append((t3 - t2) * 1000)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    elapsed = time.perf_counter() - started
    await database.close()
    print(
        f"{clients} clients, {tenants} tenant(s), {elapsed:.1f}s: {done} lifecycles = {done / elapsed:.1f}/s (target ≥ 100/s)"
    )
    for name, values in steps.items():
        print(
            f"  {name:<8} p50 {statistics.median(values):6.1f} ms   p99 {pct(values, 0.99):6.1f} ms   max {max(values):6.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--tenants", type=int, default=1, help="spread clients over N tenants (each has its own audit chain)"
    )
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    configure_logging(level="warning", fmt="json")
    name = f"sb_bench_gateway_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_database(args.server, name)
    try:
        upgrade_to_head(url)
        asyncio.run(bench(url, args.clients, args.seconds, args.tenants))
    finally:
        with psycopg.connect(args.server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
