"""Benchmark (issue 13): the fault campaign — kill -9 under load, repeated database cuts, a faulty device.

Run: .venv/bin/python bench/faults.py [--seconds 60] [--server postgresql://postgres@127.0.0.1:5432/test]

What runs, all on loopback:

- a throw-away database (migrated, dropped afterwards) reached through a TCP proxy the campaign cuts;
- a fake Hubitat hub that *acts* on a command and then, at random, answers with malformed JSON, an HTML
  page, a 500 or nothing, or refuses it (401) without acting;
- a worker process executing "switch the kiln outlet to the opposite of its state" proposals back to back
  (create → approve by a second person → execute), running the execution-recovery step between them;
  the campaign kill -9s it at random and starts a new one;
- a scheduler (in this process) with a 1 s job on the same proxied database, to time its recovery.

Then it records every outcome, runs a final recovery and compares the database with what the device
really did: every side effect is attributed to the execution that was in flight when it happened.
Mismatches (must be 0): a side effect doubled, ``executed`` without a side effect, ``failed`` with one,
an execution left ``executing``, a broken (forked) audit chain.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.faults.proxy import TcpProxy

from studio_brain.adapters.capability_registry import registry_text
from studio_brain.adapters.clock import SystemClock, UUID7Factory
from studio_brain.adapters.connector_directory import DictConnectorDirectory
from studio_brain.adapters.connectors.base import HttpPolicy
from studio_brain.adapters.connectors.breaker import CircuitBreaker
from studio_brain.adapters.connectors.fakes import FakeMakerApi
from studio_brain.adapters.connectors.fakes.server import Incoming, Reply
from studio_brain.adapters.connectors.hubitat import HubitatConnector
from studio_brain.adapters.execution_journal import FileExecutionJournal
from studio_brain.adapters.postgres.database import Database, with_database
from studio_brain.adapters.postgres.event_store import PostgresEventStore
from studio_brain.adapters.postgres.gateway_store import PostgresGatewayStore
from studio_brain.adapters.postgres.leader import PostgresJobLocks, PostgresLeaderLock
from studio_brain.adapters.postgres.migrate import upgrade_to_head
from studio_brain.adapters.postgres.state_store import PostgresStateStore
from studio_brain.domain.audit import ActorType, ChainVerifier
from studio_brain.domain.capabilities import parse_registry_toml
from studio_brain.domain.connectors import ConnectorContext, ConnectorMode, WriteAllowlist
from studio_brain.domain.identity import AuthMethod, Principal
from studio_brain.domain.schedule import Every
from studio_brain.logging import configure_logging
from studio_brain.services.gateway import GatewayService
from studio_brain.services.gateway import execution as execution_module
from studio_brain.services.jobs import JobContext, JobDefinition, JobService
from studio_brain.services.scheduling import Scheduler

TENANT = "bench-faults"
TOKEN = "bench-maker-token"  # noqa: S105 - the fake hub's token
OUTLET = "21"
MODES = (None, None, None, "malformed_json", "html_page", "server_error", "no_answer", "refuse")
POLICY = HttpPolicy(
    attempt_timeout_seconds=1.0,
    connect_timeout_seconds=0.5,
    read_attempts=2,
    retry_wait_initial_seconds=0.01,
    retry_wait_max_seconds=0.05,
    degraded_after_ms=1500.0,
)


def staff(actor: str) -> Principal:
    return Principal(
        tenant_id=TENANT,
        actor_type=ActorType.STAFF,
        actor_id=actor,
        via=AuthMethod.CLI,
        roles=frozenset({"staff"}),
    )


class CampaignHub(FakeMakerApi):
    """The fake hub with a fault mode for writes; remembers every command it carried out, and when."""

    mode: str | None = None

    def __init__(self) -> None:
        super().__init__(token=TOKEN)
        self.acted: list[tuple[datetime, str]] = []
        self.faults: Counter[str] = Counter()

    def _serve(self, incoming: Incoming) -> Reply | None:
        if not self.is_write(incoming):
            return super()._serve(incoming)
        mode = self.mode
        if mode == "refuse":
            self.faults["device refused (401)"] += 1
            return Reply(status=401, body={"error": True, "type": "Unauthorized"})
        reply = super()._serve(incoming)
        self.acted.append((datetime.now(UTC), incoming.path.rsplit("/", 1)[-1]))
        if mode is not None:
            self.faults[f"device acted, then {mode.replace('_', ' ')}"] += 1
        match mode:
            case "malformed_json":
                return Reply(status=200, body=b'{"id": "21", "lab', content_type="application/json")
            case "html_page":
                return Reply(status=200, body="<html>hub login</html>", content_type="text/html")
            case "server_error":
                return Reply(status=500, body={"message": "after switching"})
            case "no_answer":
                return None
        return reply


def registry_for_bench() -> Any:
    """The shipped registry, with the switch's cooldown and rate limit lifted and a 2 s budget."""
    _, text = registry_text(None)
    start = text.index('id = "hubitat.switch.set"')
    end = text.index("[[capability]]", start)
    block = (
        text[start:end]
        .replace("timeoutBudgetSeconds = 10", "timeoutBudgetSeconds = 2")
        .replace("cooldownSeconds = 30", "cooldownSeconds = 0")
        .replace("perHour = 20, burst = 5", "perHour = 100000, burst = 10000")
    )
    registry = parse_registry_toml(text[:start] + block + text[end:])
    assert registry.valid, registry.violations
    return registry


def hub_connector(hub_url: str, app_id: str) -> HubitatConnector:
    clock = SystemClock()
    return HubitatConnector(
        hub_url=hub_url,
        app_id=app_id,
        token=SecretStr(TOKEN),
        clock=clock,
        breaker=CircuitBreaker(name="hubitat", clock=clock, failure_threshold=1000),
        policy=POLICY,
        mode=ConnectorMode.READ_WRITE,
        allowlist=WriteAllowlist.parse([f"{OUTLET}:on", f"{OUTLET}:off"]),
    )


def build_gateway(database: Database, hub_url: str, app_id: str, journal: Path) -> GatewayService:
    clock = SystemClock()
    hubitat = hub_connector(hub_url, app_id)
    ids = UUID7Factory()
    events = PostgresEventStore(database, ids)
    return GatewayService(
        store=PostgresGatewayStore(database, events),
        registry=registry_for_bench(),
        connectors=DictConnectorDirectory({"hubitat": hubitat}),
        clock=clock,
        ids=ids,
        tenant_id=TENANT,
        events=events,
        journal=FileExecutionJournal(journal),
        outcome_retry_seconds=5.0,
    )


# --- the worker process ------------------------------------------------------------------------------


async def worker(url: str, hub_url: str, app_id: str, journal: Path) -> None:
    # an execution is stale after its 2 s budget plus 1 s (the shipped grace is 60 s)
    execution_module.STALE_GRACE_SECONDS = 1
    database = Database(url, max_size=3, timeout=2.0)
    while True:
        try:
            await database.open(wait_seconds=2.0)
            break
        except Exception:
            await asyncio.sleep(0.3)
    service = build_gateway(database, hub_url, app_id, journal)
    alice, bob = staff("alice"), staff("bob")
    reader = hub_connector(hub_url, app_id)
    print("worker ready", flush=True)
    while True:
        try:
            await service.recover_executions(TENANT)  # what the scheduled job does (and at start)
            ctx = ConnectorContext(request_id="w", timeout_seconds=2)
            state = (await reader.read_status(ctx, {"deviceId": OUTLET})).data
            current = state["device"]["attributes"].get("switch")
            wanted = "off" if current == "on" else "on"
            created = await service.create_proposal(
                alice, "hubitat.switch.set", {"deviceId": OUTLET, "state": wanted}, "fault campaign switch"
            )
            await service.approve(bob, created.proposal.id, "approved by the campaign")
            await service.execute(bob, created.proposal.id)
        except Exception:
            await asyncio.sleep(0.1)


# --- the campaign ------------------------------------------------------------------------------------


def create_database(server: str) -> tuple[str, str]:
    name = f"sb_bench_faults_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_database(server, name)
    upgrade_to_head(url)
    return name, url


def drop_database(server: str, name: str) -> None:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def start_worker(url: str, hub: CampaignHub, journal: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--worker", url, hub.hub_url, hub.app_id, str(journal)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    process.stdout.readline()
    return process


async def campaign(server: str, seconds: float, seed: int) -> None:
    rng = random.Random(seed)
    name, direct_url = create_database(server)
    journal = Path(tempfile.mkdtemp(prefix="sb-bench-journal-"))
    hub = CampaignHub()
    hub.start()
    proxy = TcpProxy.for_url(direct_url)
    url = proxy.url(direct_url)
    faults: Counter[str] = Counter()
    cut_restores: list[float] = []
    kill_times: list[float] = []
    job_starts: list[float] = []

    # the scheduler under test: a 1 s job on the proxied database, in this process
    sched_db = Database(url, max_size=3, timeout=2.0)
    await sched_db.open()

    async def tick(_ctx: JobContext) -> Mapping[str, Any]:
        job_starts.append(time.time())
        return {}

    jobs = JobService(
        tenant_id=TENANT,
        state_store=PostgresStateStore(sched_db),
        locks=PostgresJobLocks(sched_db),
        clock=SystemClock(),
        ids=UUID7Factory(),
        zone=UTC,
        backoff_base_seconds=1.0,
        backoff_cap_seconds=2.0,
    )
    jobs.register(JobDefinition(name="tick", description="", action=tick, schedule=Every(seconds=1)))
    scheduler = Scheduler(
        jobs,
        PostgresLeaderLock(url, tenant_id=TENANT),
        SystemClock(),
        leader_check_seconds=2,
        leader_retry_seconds=2,
    )
    sched_task = asyncio.create_task(scheduler.run())

    stop = threading.Event()

    def device_faults() -> None:
        while not stop.is_set():
            hub.mode = rng.choice(MODES)
            time.sleep(rng.uniform(0.2, 0.8))
        hub.mode = None

    threading.Thread(target=device_faults, daemon=True).start()
    process = await asyncio.to_thread(start_worker, url, hub, journal)
    started = time.monotonic()
    next_kill = started + rng.uniform(3, 8)
    next_cut = started + rng.uniform(2, 6)
    try:
        while time.monotonic() - started < seconds:
            now = time.monotonic()
            if now >= next_kill:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
                kill_times.append(time.time())
                faults["kill -9 of the executing process"] += 1
                process = await asyncio.to_thread(start_worker, url, hub, journal)
                next_kill = now + rng.uniform(3, 8)
            if now >= next_cut:
                proxy.cut()
                faults["database cut (TCP reset)"] += 1
                await asyncio.sleep(rng.uniform(0.5, 3.0))
                proxy.restore()
                cut_restores.append(time.time())
                next_cut = time.monotonic() + rng.uniform(3, 7)
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
        proxy.restore()
    kill_times.append(time.time())
    await asyncio.sleep(3.5)  # let the last in-flight execution go stale (budget 2 s + 1 s)

    # final recovery, as the next start's catch-up would run it
    execution_module.STALE_GRACE_SECONDS = 1
    database = Database(direct_url, max_size=3)
    await database.open()
    service = build_gateway(database, hub.hub_url, hub.app_id, journal)
    await service.recover_executions(TENANT)
    scheduler.stop()
    await asyncio.wait_for(sched_task, timeout=30)
    await sched_db.close()
    report(await analyse(database, hub, service), faults + hub.faults, cut_restores, job_starts, kill_times)
    await database.close()
    hub.stop()
    proxy.close()
    drop_database(server, name)


async def analyse(database: Database, hub: CampaignHub, service: GatewayService) -> dict[str, Any]:
    async with database.connection() as conn:
        cursor = await conn.execute(
            "SELECT id, status, record->>'executionStartedAt' AS started, record->>'error' AS error,"
            " record->>'outputHash' AS output FROM gateway_proposals WHERE tenant_id = %s"
            " AND record->>'executionStartedAt' IS NOT NULL",
            (TENANT,),
        )
        rows = await cursor.fetchall()
    runs = sorted(
        ({**r, "started": datetime.fromisoformat(r["started"])} for r in rows), key=lambda r: r["started"]
    )
    effects: Counter[str] = Counter()
    unattributed = 0
    for at, _command in hub.acted:
        owner = None
        for run in runs:
            if run["started"] <= at:
                owner = run["id"]
            else:
                break
        if owner is None:
            unattributed += 1
        else:
            effects[owner] += 1
    mismatches: Counter[str] = Counter()
    statuses: Counter[str] = Counter(r["status"] for r in runs)
    reconciled = 0
    for run in runs:
        n = effects[run["id"]]
        if n > 1:
            mismatches["side effect doubled"] += 1
        if run["status"] == "executed" and n == 0:
            mismatches["executed without a side effect"] += 1
        if run["status"] == "failed" and n > 0:
            mismatches["failed though the device acted"] += 1
        if run["status"] == "executing":
            mismatches["left executing"] += 1
        if run["error"] is None and run["status"] == "executed" and run["output"] is None:
            mismatches["executed without an output hash"] += 1
    mismatches["side effect outside any execution"] += unattributed
    audit = PostgresEventStore(database, UUID7Factory())
    verifier = ChainVerifier(TENANT)
    forks = 0
    async for event in audit.stream(TENANT):
        if verifier.feed(event) is not None:
            forks += 1
    if verifier.finish() is not None:
        forks += 1
    async with database.connection() as conn:
        cursor = await conn.execute(
            "SELECT count(*) AS n FROM audit_events WHERE tenant_id = %s AND action = 'capability.proposal.reconciled'",
            (TENANT,),
        )
        row = await cursor.fetchone()
        reconciled = int(row["n"]) if row else 0
    return {
        "executions": len(runs),
        "statuses": statuses,
        "side_effects": len(hub.acted),
        "mismatches": mismatches,
        "forks": forks,
        "reconciled": reconciled,
    }


def report(
    found: dict[str, Any],
    faults: Counter[str],
    cut_restores: list[float],
    job_starts: list[float],
    kill_times: list[float],
) -> None:
    recoveries = []
    for restored in cut_restores:
        after = [t - restored for t in job_starts if t > restored]
        if after:
            recoveries.append(min(after))
    print("\nfaults injected")
    for kind, n in sorted(faults.items()):
        print(f"  {kind:<42} {n:>5}")
    print(f"  {'total':<42} {sum(faults.values()):>5}")
    print("\noutcomes")
    print(f"  {'executions (reached executing)':<42} {found['executions']:>5}")
    for status, n in sorted(found["statuses"].items()):
        print(f"    {status:<40} {n:>5}")
    print(f"  {'settled by reading the device back':<42} {found['reconciled']:>5}")
    print(f"  {'side effects on the device':<42} {found['side_effects']:>5}")
    print("\nmismatches (must be 0)")
    kinds = (
        "side effect doubled",
        "executed without a side effect",
        "failed though the device acted",
        "left executing",
        "executed without an output hash",
        "side effect outside any execution",
    )
    for kind in kinds:
        print(f"  {kind:<42} {found['mismatches'][kind]:>5}")
    print(f"  {'audit chain forks / breaks':<42} {found['forks']:>5}")
    total = sum(found["mismatches"][k] for k in kinds) + found["forks"]
    print(f"  {'total':<42} {total:>5}")
    print("\nrecovery")
    if recoveries:
        print(
            f"  scheduler: first job after a cut ends       median {statistics.median(recoveries):.2f} s,"
            f" max {max(recoveries):.2f} s ({len(recoveries)} cuts)"
        )
        print("    each cut: " + ", ".join(f"{r:.1f}" for r in recoveries))
    else:
        print("  scheduler: no cut was followed by a job run  (FAIL)")
    print(f"  kill -9: executing processes killed          {len(kill_times) - 1}")
    if total:
        sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--worker", nargs=4, metavar=("URL", "HUB", "APP", "JOURNAL"))
    args = parser.parse_args()
    configure_logging(level="critical", fmt="json")
    logging.getLogger("psycopg.pool").setLevel(logging.CRITICAL)  # reconnect warnings during the cuts
    if args.worker:
        url, hub_url, app_id, journal = args.worker
        asyncio.run(worker(url, hub_url, app_id, Path(journal)))
        return
    asyncio.run(campaign(args.server, args.seconds, args.seed))


if __name__ == "__main__":
    main()
