"""Benchmark: full lifecycles (create → approve → execute ``studio.note.append``) with N concurrent clients;
lifecycles/s, p50/p99 per step, and CPU per lifecycle.

Run: .venv/bin/python bench/gateway_lifecycle.py [--clients 8] [--seconds 10] [--workers 1] [--serve]
                                                [--server postgresql://postgres@127.0.0.1:5432/test]
     .venv/bin/python bench/gateway_lifecycle.py --in-process …   (GatewayService called directly, no HTTP)

Default (HTTP, as the Portal drives it): a real ``uvicorn`` server in its own process on loopback, trusting a
local Firebase signing key (``STUDIO_BRAIN_FIREBASE_CERTS_FILE``); each client is a pair of Firebase staff
users (RS256 ID tokens, ``authorization: Bearer …``): one creates, the other — a distinct person — approves
and executes, over ``/api/v1/proposals``. Reported: server CPU per lifecycle (utime + stime of the server's
processes from ``/proc/PID/stat``, before/after the measured window) and PostgreSQL backend CPU per lifecycle
(the backends of the benchmark database, pids from ``pg_stat_activity``), plus the server's idle RSS.

Creates a throw-away database on the server, migrates it, and drops it afterwards. Loopback only; bounded
by ``--seconds`` plus a warm-up. The registry is the shipped one with the note's rate limit raised (the
shipped 600/hour would refuse a benchmark on purpose). Targets (issue 18): ≥ 200 lifecycles/s with 8
clients on one tenant, p99 of every step < 40 ms, server CPU ≤ 2.5 ms and PostgreSQL CPU ≤ 2.5 ms per
lifecycle.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx
import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.server_cpu import (
    FirebaseTrust,
    cpu_spent,
    load_average,
    rss_mb,
    snapshot,
    start_server,
)

from studio_brain.adapters.capability_registry import registry_text
from studio_brain.adapters.clock import SystemClock, UUID7Factory
from studio_brain.adapters.connector_directory import DictConnectorDirectory
from studio_brain.adapters.local_connector import LocalNotesConnector
from studio_brain.adapters.postgres.database import Database, libpq_url, with_database
from studio_brain.adapters.postgres.event_store import PostgresEventStore
from studio_brain.adapters.postgres.gateway_store import PostgresGatewayStore
from studio_brain.adapters.postgres.migrate import upgrade_to_head
from studio_brain.domain.audit import ActorType
from studio_brain.domain.capabilities import parse_registry_toml
from studio_brain.domain.connectors import ConnectorMode
from studio_brain.domain.identity import AuthMethod, Principal
from studio_brain.domain.proposals import Status
from studio_brain.domain.records import Keyring
from studio_brain.logging import configure_logging
from studio_brain.services.gateway import GatewayService

TENANT = "bench-studio"
ROOT = Path(__file__).resolve().parents[1]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def in_process_gateway(
    database: Database, clock: SystemClock, ids: UUID7Factory, keyring: Keyring | None = None
) -> GatewayService:
    """The gateway as the server builds it, for one tenant, with the notes connector writing and the rate
    limits raised out of a benchmark's way; ``keyring``: keyed records, as the server has them."""
    _, text = registry_text(None)
    registry = parse_registry_toml(
        text.replace("perHour = 600, burst = 120", "perHour = 1000000, burst = 100000")
    )
    assert registry.valid
    return GatewayService(
        store=PostgresGatewayStore(database, PostgresEventStore(database, ids), keyring),
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


async def bench(url: str, clients: int, seconds: float, tenants: int) -> None:
    database = Database(url, max_size=clients + 2)
    await database.open()
    clock, ids = SystemClock(), UUID7Factory()
    service = in_process_gateway(database, clock, ids)
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


def bench_registry() -> str:
    _, text = registry_text(None)
    raised = text.replace("perHour = 600, burst = 120", "perHour = 1000000, burst = 100000")
    assert raised != text, "the shipped registry's note rate limit moved; update the benchmark"
    return raised


async def http_lifecycle(
    http: httpx.AsyncClient, n: int, requester: dict[str, str], approver: dict[str, str]
) -> tuple[float, float, float]:
    """create → approve (a second person) → execute over the HTTP API; the three steps' wall seconds."""
    t0 = time.perf_counter()
    created = await http.post(
        "/api/v1/proposals",
        json={
            "capabilityId": "studio.note.append",
            "input": {"text": f"bench {n}"},
            "rationale": "benchmark lifecycle",
        },
        headers=requester,
    )
    t1 = time.perf_counter()
    if created.status_code != 201:
        raise SystemExit(f"create answered {created.status_code}: {created.text[:300]}")
    proposal_id = created.json()["proposal"]["id"]
    approved = await http.post(
        f"/api/v1/proposals/{proposal_id}/approve",
        json={"rationale": "benchmark approval"},
        headers=approver,
    )
    t2 = time.perf_counter()
    if approved.status_code != 200:
        raise SystemExit(f"approve answered {approved.status_code}: {approved.text[:300]}")
    executed = await http.post(f"/api/v1/proposals/{proposal_id}/execute", json={}, headers=approver)
    t3 = time.perf_counter()
    if executed.status_code != 200 or executed.json()["proposal"]["status"] != "executed":
        raise SystemExit(f"execute answered {executed.status_code}: {executed.text[:300]}")
    return t1 - t0, t2 - t1, t3 - t2


async def _http_clients(
    base: str, trust: FirebaseTrust, clients: int, seconds: float, warmup: int
) -> tuple[dict[str, list[float]], int, float]:
    steps: dict[str, list[float]] = {"create": [], "approve": [], "execute": []}
    done = 0

    # two distinct Firebase staff users per client: approver ≠ requester is a person check
    people = [
        (trust.staff_headers(f"bench-req-{n}"), trust.staff_headers(f"bench-app-{n}")) for n in range(clients)
    ]
    async with httpx.AsyncClient(
        base_url=base, timeout=30, limits=httpx.Limits(max_connections=clients)
    ) as http:
        for n in range(warmup):  # warm-up: pools filled, caches primed, code paths compiled
            await asyncio.gather(*(http_lifecycle(http, n, *people[c]) for c in range(clients)))
        stop = time.perf_counter() + seconds

        async def client(n: int) -> None:
            nonlocal done
            while time.perf_counter() < stop:
                create, approve, execute = await http_lifecycle(http, n, *people[n])
                steps["create"].append(create * 1000)
                steps["approve"].append(approve * 1000)
                steps["execute"].append(execute * 1000)
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(clients)))
        elapsed = time.perf_counter() - started
    return steps, done, elapsed


def bench_http(
    url: str, clients: int, seconds: float, workers: int, profile: Path | None = None, *, serve: bool = False
) -> None:
    home = ROOT / "bench" / "results" / f"lifecycle-home-{uuid.uuid4().hex[:6]}"
    trust = FirebaseTrust.create(home)
    registry = home / "capabilities.toml"
    registry.write_text(bench_registry(), encoding="utf-8")
    env = {
        **trust.env(),
        "STUDIO_BRAIN_GATEWAY_REGISTRY_FILE": str(registry),
        "STUDIO_BRAIN_TENANT_ID": TENANT,
        "STUDIO_BRAIN_DB_POOL_MAX": str(max(10, clients + 2)),
    }
    process, base = start_server(url, home, workers, env, profile=profile, serve=serve)
    try:
        time.sleep(1.0)
        idle = rss_mb(process.pid)
        load_before = load_average()
        # warm-up (pools filled, caches primed), then the CPU window around the measured loop only
        asyncio.run(_http_clients(base, trust, clients, 0.0, warmup=3))
        if profile is not None:
            process.send_signal(signal.SIGUSR1)  # bench/profiled_uvicorn.py: profile from here on
        before = snapshot(process.pid, url)
        steps, done, elapsed = asyncio.run(_http_clients(base, trust, clients, seconds, warmup=0))
        after = snapshot(process.pid, url)
        server_s, db_s = cpu_spent(before, after)
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(home, ignore_errors=True)
    with psycopg.connect(libpq_url(url)) as conn:
        seqs = [
            r[0]
            for r in conn.execute("SELECT seq FROM audit_events WHERE tenant_id = %s ORDER BY seq", (TENANT,))
        ]
        forks = conn.execute(
            "SELECT count(*) FROM (SELECT prev_hash FROM audit_events WHERE tenant_id = %s"
            " GROUP BY prev_hash HAVING count(*) > 1) f",
            (TENANT,),
        ).fetchone()
    gap_free = seqs == list(range(1, len(seqs) + 1))
    print(
        f"HTTP, {'serve' if serve else 'uvicorn'}, {workers} worker(s), {clients} clients, one tenant, Firebase RS256 tokens, {elapsed:.1f}s: "
        f"{done} lifecycles = {done / elapsed:.1f}/s (target ≥ 200/s); load before {load_before}, after {load_average()}"
    )
    for name, values in steps.items():
        print(
            f"  {name:<8} p50 {statistics.median(values):6.1f} ms   p99 {pct(values, 0.99):6.1f} ms   max {max(values):6.1f} ms"
        )
    print(
        f"  server CPU {server_s * 1000 / done:.2f} ms/lifecycle (target ≤ 2.5), PostgreSQL backends "
        f"{db_s * 1000 / done:.2f} ms/lifecycle (target ≤ 2.5); idle RSS {idle:.0f} MB (target ≤ 130)"
    )
    print(
        f"  audit chain: {len(seqs)} events, {'gap-free' if gap_free else 'GAPS'}, "
        f"{'fork-free' if forks and forks[0] == 0 else 'FORKED'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--tenants", type=int, default=1, help="spread clients over N tenants (each has its own audit chain)"
    )
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--workers", type=int, default=1, help="HTTP: uvicorn worker processes")
    parser.add_argument(
        "--in-process", action="store_true", help="call GatewayService directly (no HTTP, no tokens)"
    )
    parser.add_argument(
        "--serve", action="store_true", help="HTTP: run `studio-brain serve --workers N`, not uvicorn"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="HTTP: run the server under cProfile and write its stats here (CPU figures then include it)",
    )
    args = parser.parse_args()
    configure_logging(level="warning", fmt="json")
    name = f"sb_bench_gateway_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_database(args.server, name)
    try:
        upgrade_to_head(url)
        if args.in_process:
            asyncio.run(bench(url, args.clients, args.seconds, args.tenants))
        else:
            bench_http(url, args.clients, args.seconds, args.workers, args.profile, serve=args.serve)
    finally:
        with psycopg.connect(args.server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
