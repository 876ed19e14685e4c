"""The ``local`` (staff notes) connector in memory: the same rules as ``adapters/local_connector.py`` —
read-only unless configured, an allowlist of actions, exactly one note per idempotency key, dry runs that
write nothing — over a dict instead of the ``staff_notes`` table. Used by the in-memory brain and tests;
``tests/integration/test_gateway_local_connector.py`` runs against both."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

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
from studio_brain.ports.clock import Clock, IdFactory

#: the allowlist of ``adapters/local_connector.py``
ACTIONS = frozenset({"note.append"})


@dataclass(slots=True)
class NotesTable:
    """Every tenant's notes, keyed by (tenant, idempotency key) like the table's unique constraint."""

    rows: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def notes(self, tenant_id: str, *, limit: int = 50) -> list[dict[str, Any]]:
        mine = [dict(r) for (tenant, _), r in self.rows.items() if tenant == tenant_id]
        mine.sort(key=lambda r: (r["created_at"], r["id"]), reverse=True)
        return mine[:limit]


class InMemoryNotesConnector:
    """Connector for target ``local`` of one tenant, writing to a shared :class:`NotesTable`."""

    def __init__(
        self,
        table: NotesTable,
        *,
        tenant_id: str,
        clock: Clock,
        ids: IdFactory,
        mode: ConnectorMode = ConnectorMode.READ_ONLY,
    ) -> None:
        self._table = table
        self._tenant = tenant_id
        self._clock = clock
        self._ids = ids
        self._mode = mode

    @property
    def id(self) -> str:
        return "local"

    @property
    def target(self) -> str:
        return "local"

    @property
    def version(self) -> str:
        return "1"

    @property
    def mode(self) -> ConnectorMode:
        return self._mode

    @property
    def dry_run_support(self) -> DryRunSupport:
        return DryRunSupport.SIMULATED

    async def health(self, ctx: ConnectorContext) -> ConnectorHealth:
        return ConnectorHealth(
            connector_id=self.id,
            status=HealthStatus.HEALTHY,
            request_id=ctx.request_id,
            checked_at=self._clock.now(),
            latency_ms=0.0,
        )

    async def read_status(self, ctx: ConnectorContext, input: dict[str, Any]) -> ConnectorResponse:
        mine = self._table.notes(self._tenant, limit=1)
        count = sum(1 for tenant, _ in self._table.rows if tenant == self._tenant)
        latest: datetime | None = mine[0]["created_at"] if mine else None
        data = {"notes": count, "latest": latest}
        return ConnectorResponse(
            request_id=ctx.request_id, input_hash=sha256_hex(input), output_hash=sha256_hex(data), data=data
        )

    async def execute(self, ctx: ConnectorContext, command: ConnectorCommand) -> ConnectorResponse:
        if command.action not in ACTIONS:
            raise ConnectorError(
                "NOT_ALLOWED", f"local connector has no action {command.action!r}", retryable=False
            )
        if command.write and self._mode is ConnectorMode.READ_ONLY and not ctx.dry_run:
            raise ConnectorError("READ_ONLY_VIOLATION", "the local connector is read-only", retryable=False)
        text = command.args.get("text")
        topic = command.args.get("topic")
        if not isinstance(text, str) or not text.strip():
            raise ConnectorError("NOT_ALLOWED", "a note needs text", retryable=False)
        input_hash = sha256_hex({"action": command.action, "args": command.args})
        if ctx.dry_run:
            effects = [
                f"append one staff note ({len(text)} characters)"
                + (f" under topic {topic!r}" if topic else "")
            ]
            data: dict[str, Any] = {"effects": effects}
            return ConnectorResponse(
                request_id=ctx.request_id,
                input_hash=input_hash,
                output_hash=sha256_hex(data),
                data=data,
                dry_run=True,
            )
        if not ctx.idempotency_key:
            raise ConnectorError("NOT_ALLOWED", "a write needs an idempotency key", retryable=False)
        key = (self._tenant, ctx.idempotency_key)
        row = self._table.rows.get(key)
        if row is None:  # else a replay: return the note the first call wrote
            row = {
                "id": self._ids.new_id(),
                "text": text,
                "topic": topic,
                "idempotency_key": ctx.idempotency_key,
                "created_at": self._clock.now(),
            }
            self._table.rows[key] = row
        data = {"noteId": row["id"], "createdAt": row["created_at"].isoformat()}
        return ConnectorResponse(
            request_id=ctx.request_id,
            input_hash=input_hash,
            output_hash=sha256_hex(data),
            data=data,
            latency_ms=0.0,
        )
