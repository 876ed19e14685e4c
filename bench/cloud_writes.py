"""Benchmark: cloud-write lifecycles (create with the dry-run read → approve → execute through the real
Functions connector over HTTP) against the fake Functions on loopback, on local PostgreSQL; and the cost of
signing and verifying one approval attestation.

Run: .venv/bin/python bench/cloud_writes.py [--clients 4] [--seconds 10] [--emulator 127.0.0.1:8080]
     [--server postgresql://postgres@127.0.0.1:5432/test]
Without --emulator the fake writes to memory (the brain's reads too); with it, to the Firestore emulator.
A throw-away database is created and dropped. The registry is the shipped one with the write windows
removed and the rate limit and daily budget raised (they would refuse a benchmark on purpose).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql
from pydantic import SecretStr

from studio_brain.adapters.attestation_keys import AttestationSigner, verify_token
from studio_brain.adapters.capability_registry import registry_text
from studio_brain.adapters.clock import SystemClock, UUID7Factory
from studio_brain.adapters.connector_directory import DictConnectorDirectory
from studio_brain.adapters.connectors.base import HttpPolicy
from studio_brain.adapters.connectors.breaker import CircuitBreaker
from studio_brain.adapters.connectors.functions import (
    CloudDocuments,
    FirestoreDocuments,
    FunctionsConnector,
    MemoryDocuments,
)
from studio_brain.adapters.connectors.functions.fake import FakeFunctions
from studio_brain.adapters.connectors.functions.store import EmulatorPilotStore, MemoryPilotStore, PilotStore
from studio_brain.adapters.firebase_id_token import IdTokenSource
from studio_brain.adapters.postgres.database import Database, with_database
from studio_brain.adapters.postgres.event_store import PostgresEventStore
from studio_brain.adapters.postgres.gateway_store import PostgresGatewayStore
from studio_brain.adapters.postgres.migrate import upgrade_to_head
from studio_brain.domain.attestation import claims_for
from studio_brain.domain.audit import ActorType
from studio_brain.domain.capabilities import parse_registry_toml
from studio_brain.domain.connectors import ConnectorMode, WriteAllowlist
from studio_brain.domain.errors import PolicyRefused
from studio_brain.domain.identity import AuthMethod, Principal
from studio_brain.domain.proposals import Status
from studio_brain.logging import configure_logging
from studio_brain.services.gateway import GatewayService

TENANT = "bench-studio"
PROJECT = "studio-brain-bench"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def person(actor_id: str) -> Principal:
    return Principal(
        tenant_id=TENANT,
        actor_type=ActorType.STAFF,
        actor_id=actor_id,
        via=AuthMethod.CLI,
        roles=frozenset({"staff"}),
    )


async def bench(url: str, clients: int, seconds: float, emulator: str | None, home: Path) -> None:
    database = Database(url, max_size=clients + 2)
    await database.open()
    clock, ids = SystemClock(), UUID7Factory()
    _, text = registry_text(None)
    text = "\n".join(line for line in text.splitlines() if not line.startswith("allowedHours"))
    text = text.replace("dailyCloudWriteBudget = 50", "dailyCloudWriteBudget = 1000000")
    text = text.replace(
        "rateLimit = { perHour = 30, burst = 5 }", "rateLimit = { perHour = 1000000, burst = 100000 }"
    )
    registry = parse_registry_toml(text)
    assert registry.valid, registry.violations
    store: PilotStore
    documents: CloudDocuments
    if emulator:
        os.environ["FIRESTORE_EMULATOR_HOST"] = emulator
        store, documents = EmulatorPilotStore(project_id=PROJECT), FirestoreDocuments(project_id=PROJECT)
    else:
        memory = MemoryPilotStore()
        store, documents = memory, MemoryDocuments(memory.store)
    for n in range(clients):
        store.put(f"batches/bench-{n}", {"ownerUid": f"member-{n}", "isClosed": False, "state": "SHELVED"})
    refresh = secrets.token_urlsafe(24)
    fake = FakeFunctions(store=store, project_id=PROJECT, refresh_token=refresh).start()
    signer = AttestationSigner(home / "attestation.pem")
    connector = FunctionsConnector(
        base_url=fake.url,
        tokens=IdTokenSource(refresh_token=SecretStr(refresh), clock=clock, token_url=fake.token_url),
        documents=documents,
        attester=signer,
        clock=clock,
        breaker=CircuitBreaker(name="functions", clock=clock, failure_threshold=1000, window_seconds=30),
        policy=HttpPolicy(attempt_timeout_seconds=15, read_attempts=1),
        mode=ConnectorMode.READ_WRITE,
        allowlist=WriteAllowlist.parse(["executeStudioBrainPilotAction:ops_note_append"]),
    )
    service = GatewayService(
        store=PostgresGatewayStore(database, PostgresEventStore(database, ids)),
        registry=registry,
        connectors=DictConnectorDirectory({"firestore": connector}),
        clock=clock,
        ids=ids,
        tenant_id=TENANT,
    )
    steps: dict[str, list[float]] = {"create+dry-run": [], "approve": [], "execute": []}
    done = busy = 0
    stop = time.perf_counter() + seconds

    async def client(n: int) -> None:
        nonlocal done, busy
        requester, approver = person(f"req-{n}"), person(f"app-{n}")
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            created = await service.create_proposal(
                requester,
                "firestore.ops_note.append",
                {"batchId": f"bench-{n}", "ownerUid": f"member-{n}", "note": f"bench note {done} {n}"},
                "benchmark cloud write",
            )
            t1 = time.perf_counter()
            await service.approve(approver, created.proposal.id, "benchmark approval")
            t2 = time.perf_counter()
            while True:
                try:
                    result = await service.execute(approver, created.proposal.id)
                    break
                except PolicyRefused as refused:
                    # cloud writes run one at a time per target (exclusive): wait for the other one
                    if refused.reason_code != "TARGET_BUSY":
                        raise
                    busy += 1
                    await asyncio.sleep(0.002)
            t3 = time.perf_counter()
            assert result.proposal.status is Status.EXECUTED, result.proposal.error
            steps["create+dry-run"].append((t1 - t0) * 1000)
            steps["approve"].append((t2 - t1) * 1000)
            steps["execute"].append((t3 - t2) * 1000)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    elapsed = time.perf_counter() - started
    fake.stop()
    await database.close()
    where = f"the Firestore emulator at {emulator}" if emulator else "memory"
    print(
        f"{clients} clients, {elapsed:.1f}s, fake Functions over {where}: {done} cloud writes = {done / elapsed:.1f}/s"
    )
    for name, values in steps.items():
        print(
            f"  {name:<15} p50 {statistics.median(values):6.1f} ms   p99 {pct(values, 0.99):6.1f} ms   max {max(values):6.1f} ms"
        )
    claims = claims_for(
        proposal_id=str(uuid.uuid4()),
        capability_id="firestore.ops_note.append",
        tenant_id=TENANT,
        input_hash="ab" * 32,
        approvers=["manager"],
        approved_at=datetime.now(UTC),
        expires_at=datetime.now(UTC),
    )
    jwks = signer.jwks()
    rounds = 2000
    t0 = time.perf_counter()
    tokens = [signer.attest(claims) for _ in range(rounds)]
    t1 = time.perf_counter()
    assert all(verify_token(t, jwks).valid for t in tokens)
    t2 = time.perf_counter()
    print(
        f"  attestation     sign {(t1 - t0) / rounds * 1e6:6.0f} µs   verify {(t2 - t1) / rounds * 1e6:6.0f} µs"
        f"   ({len(tokens[0])} characters)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--emulator", default=None, help="host:port of a running Firestore emulator")
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    configure_logging(level="warning", fmt="json")
    name = f"sb_bench_cloud_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_database(args.server, name)
    try:
        upgrade_to_head(url)
        with tempfile.TemporaryDirectory() as home:
            asyncio.run(bench(url, args.clients, args.seconds, args.emulator, Path(home)))
    finally:
        with psycopg.connect(args.server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
