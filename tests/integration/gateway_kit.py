"""Shared pieces of the gateway tests: a wired GatewayService on real PostgreSQL or on the in-memory
stores (both pass ``tests/contract/test_gateway_store.py``), principals, and a scripted connector (a
stand-in for a device at the Connector port) whose outcome each test chooses.

Fixtures (``tests/integration/conftest.py``): ``kit`` and ``make_kit`` run a test on both stores;
``pg_kit`` is for the tests that reach into PostgreSQL itself (tampering, sabotage, row-level security)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from studio_brain.adapters.capability_registry import load_registry
from studio_brain.adapters.clock import UUID7Factory
from studio_brain.adapters.connector_directory import DictConnectorDirectory
from studio_brain.adapters.local_connector import LocalNotesConnector, NotesReader
from studio_brain.adapters.memory import InMemoryEventStore, InMemoryGatewayStore
from studio_brain.adapters.memory.notes import InMemoryNotesConnector, NotesTable
from studio_brain.adapters.postgres.database import Database
from studio_brain.adapters.postgres.event_store import PostgresEventStore
from studio_brain.adapters.postgres.gateway_store import PostgresGatewayStore
from studio_brain.domain.audit import ActorType, AuditEvent, ChainVerifier
from studio_brain.domain.capabilities import Registry
from studio_brain.domain.connectors import (
    ConnectorCommand,
    ConnectorContext,
    ConnectorHealth,
    ConnectorMode,
    ConnectorResponse,
    DryRunSupport,
    HealthStatus,
)
from studio_brain.domain.errors import ConnectorError
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.identity import AuthMethod, Principal
from studio_brain.domain.records import Keyring
from studio_brain.ports import Connector, EventStore, GatewayStore
from studio_brain.ports.record_ledger import RecordLedger
from studio_brain.services.gateway import GatewayService
from tests.fakes import FakeClock

TENANT = "studio-a"


def staff(actor_id: str, tenant: str = TENANT, *, admin: bool = False) -> Principal:
    roles = {"staff", "admin"} if admin else {"staff"}
    return Principal(
        tenant_id=tenant,
        actor_type=ActorType.STAFF,
        actor_id=actor_id,
        via=AuthMethod.CLI,
        roles=frozenset(roles),
    )


def agent(actor_id: str, *scopes: str, tenant: str = TENANT) -> Principal:
    return Principal(
        tenant_id=tenant,
        actor_type=ActorType.AGENT,
        actor_id=actor_id,
        via=AuthMethod.AGENT_TOKEN,
        scopes=frozenset(scopes),
    )


ALICE = staff("alice")
BOB = staff("bob")
CAROL = staff("carol")


@dataclass
class ScriptedConnector:
    """Implements the Connector port; ``behaviour`` says what the next execute does."""

    target: str
    mode: ConnectorMode = ConnectorMode.READ_WRITE
    behaviour: str = "ok"  # ok | fail | timeout | connector_timeout | crash
    delay: float = 0.0
    calls: list[ConnectorCommand] = field(default_factory=list)
    dry_runs: int = 0

    @property
    def id(self) -> str:
        return self.target

    @property
    def version(self) -> str:
        return "test"

    @property
    def dry_run_support(self) -> DryRunSupport:
        return DryRunSupport.SIMULATED

    async def health(self, ctx: ConnectorContext) -> ConnectorHealth:
        return ConnectorHealth(
            connector_id=self.id,
            status=HealthStatus.HEALTHY,
            request_id=ctx.request_id,
            checked_at=datetime.now(UTC),
        )

    async def read_status(self, ctx: ConnectorContext, input: dict[str, Any]) -> ConnectorResponse:
        data = {"devices": [{"id": "1", "switch": "off"}]}
        return ConnectorResponse(
            request_id=ctx.request_id, input_hash=sha256_hex(input), output_hash=sha256_hex(data), data=data
        )

    async def execute(self, ctx: ConnectorContext, command: ConnectorCommand) -> ConnectorResponse:
        if ctx.dry_run:
            self.dry_runs += 1
            data: dict[str, Any] = {"effects": [f"{command.action} {command.device_id} {command.command}"]}
            return ConnectorResponse(
                request_id=ctx.request_id,
                input_hash=sha256_hex(command.args),
                output_hash=sha256_hex(data),
                data=data,
                dry_run=True,
            )
        self.calls.append(command)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.behaviour == "fail":
            # a proven refusal: after a send, only that is `failed` (issue 13, domain/outcomes.py)
            raise ConnectorError("REFUSED", "device refused the command", retryable=False, sent=True)
        if self.behaviour == "connector_timeout":
            raise ConnectorError("TIMEOUT", "device did not answer", retryable=True)
        if self.behaviour == "timeout":
            await asyncio.sleep(3600)
        if self.behaviour == "crash":
            raise RuntimeError("bug in a driver")
        data = {"ok": True, "device": command.device_id, "state": command.command}
        return ConnectorResponse(
            request_id=ctx.request_id,
            input_hash=sha256_hex(command.args),
            output_hash=sha256_hex(data),
            data=data,
        )


@dataclass
class Kit:
    service: GatewayService
    store: GatewayStore
    events: EventStore
    clock: FakeClock
    hubitat: ScriptedConnector
    roborock: ScriptedConnector
    #: None on the in-memory stores (then the staff notes live in ``notes_table``)
    database: Database | None
    connectors: DictConnectorDirectory = field(default_factory=DictConnectorDirectory)
    notes_table: NotesTable | None = None

    async def audit(self, tenant: str = TENANT) -> list[AuditEvent]:
        return [e async for e in self.events.stream(tenant)]

    async def refused(self, tenant: str = TENANT) -> Counter[str]:
        """Every policy refusal so far by reason code, counted: the windows are flushed first, and an
        aggregated row counts the refusals it stands for (issue 12 item 8)."""
        await self.service.flush_refusals()
        counted: Counter[str] = Counter()
        for e in await self.audit(tenant):
            if e.action == "capability.decision.refused":
                counted[e.metadata["decision"]["reasonCode"]] += int(e.metadata.get("count", 1))
        return counted

    async def chain_intact(self, tenant: str = TENANT) -> bool:
        verifier = ChainVerifier(tenant)
        for event in await self.audit(tenant):
            if verifier.feed(event) is not None:
                return False
        return verifier.finish() is None

    async def notes(self, tenant: str = TENANT) -> int:
        if self.notes_table is not None:
            return len(self.notes_table.notes(tenant, limit=1_000_000))
        assert self.database is not None
        return len(await NotesReader(self.database).notes(tenant, limit=1_000_000))

    def service_with(self, registry: Registry) -> GatewayService:
        """Another gateway on the same stores and connectors, with a different registry in force."""
        return GatewayService(
            store=self.store,
            registry=registry,
            connectors=self.connectors,
            clock=self.clock,
            ids=UUID7Factory(),
            tenant_id=TENANT,
            events=self.events,
        )

    @property
    def pg(self) -> Database:
        """The PostgreSQL database of a ``pg_kit`` (tests that reach into the tables)."""
        assert self.database is not None, "this test needs the pg_kit fixture"
        return self.database


def build_kit(
    database: Database | None,
    *,
    registry: Registry | None = None,
    clock: FakeClock | None = None,
    keyring: Keyring | None = None,
    ledger: RecordLedger | None = None,
) -> Kit:
    """A gateway on PostgreSQL (``database``) or, with None, on the in-memory stores. ``keyring``: keyed
    audit events and keyed proposal / agent-token rows, as the brain runs (PostgreSQL only)."""
    clock = clock or FakeClock(datetime.now(UTC))
    ids = UUID7Factory()
    events: EventStore
    store: GatewayStore
    local: Callable[[str], Connector]
    table: NotesTable | None = None
    if database is None:
        memory_events = InMemoryEventStore(clock, ids)
        events, store, table = memory_events, InMemoryGatewayStore(memory_events), NotesTable()

        def local(tenant_id: str) -> Connector:
            assert table is not None
            return InMemoryNotesConnector(
                table, tenant_id=tenant_id, clock=clock, ids=ids, mode=ConnectorMode.READ_WRITE
            )
    else:
        pg_events = PostgresEventStore(database, ids, keyring)
        events, store = pg_events, PostgresGatewayStore(database, pg_events, keyring, ledger=ledger)

        def local(tenant_id: str) -> Connector:
            assert database is not None
            return LocalNotesConnector(
                database, tenant_id=tenant_id, clock=clock, ids=ids, mode=ConnectorMode.READ_WRITE
            )

    hubitat = ScriptedConnector("hubitat")
    roborock = ScriptedConnector("roborock")

    connectors = DictConnectorDirectory({"hubitat": hubitat, "roborock": roborock}, local_factory=local)
    service = GatewayService(
        store=store,
        registry=registry or load_registry(None),
        connectors=connectors,
        clock=clock,
        ids=ids,
        tenant_id=TENANT,
        events=events,
        keyring=keyring,
    )
    return Kit(
        service=service,
        store=store,
        events=events,
        clock=clock,
        hubitat=hubitat,
        roborock=roborock,
        database=database,
        connectors=connectors,
        notes_table=table,
    )


NOTE = {"text": "Kiln 2 shelf cracked; replaced.", "topic": "kilns"}
WHY = "staff log of a maintenance job"
