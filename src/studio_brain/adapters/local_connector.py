"""The ``local`` target connector: appends staff notes to the brain's own PostgreSQL (``staff_notes``).

It speaks the same Connector protocol as the device connectors, so ``studio.note.append`` exercises the
whole gateway lifecycle with a real, safe side effect. Appends are idempotent on the idempotency key the
gateway derives from the proposal: a replay returns the note already written, never a second one.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

from studio_brain.adapters.postgres.database import Database, translate
from studio_brain.domain.connectors import (
    ConnectorCommand,
    ConnectorContext,
    ConnectorHealth,
    ConnectorMode,
    ConnectorResponse,
    DryRunSupport,
    HealthStatus,
)
from studio_brain.domain.errors import ConnectorError, StorageError
from studio_brain.domain.hashing import sha256_hex
from studio_brain.ports.clock import Clock, IdFactory

ACTIONS = frozenset({"note.append"})


class LocalNotesConnector:
    """Connector for target ``local`` of one tenant. Read-only unless configured otherwise, like every
    connector; bootstrap configures it read-write because its only write is the safe note append."""

    def __init__(
        self,
        database: Database,
        *,
        tenant_id: str,
        clock: Clock,
        ids: IdFactory,
        mode: ConnectorMode = ConnectorMode.READ_ONLY,
    ) -> None:
        self._db = database
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
        started = time.perf_counter()
        try:
            await self._db.ping()
        except StorageError as err:
            return ConnectorHealth(
                connector_id=self.id,
                status=HealthStatus.DOWN,
                request_id=ctx.request_id,
                checked_at=self._clock.now(),
                detail=err.message,
            )
        return ConnectorHealth(
            connector_id=self.id,
            status=HealthStatus.HEALTHY,
            request_id=ctx.request_id,
            checked_at=self._clock.now(),
            latency_ms=(time.perf_counter() - started) * 1000.0,
        )

    async def read_status(self, ctx: ConnectorContext, input: dict[str, Any]) -> ConnectorResponse:
        try:
            async with self._db.connection() as conn:
                await conn.execute("SELECT set_config('studio_brain.tenant_id', %s, true)", (self._tenant,))
                cursor = await conn.execute(
                    "SELECT count(*) AS notes, max(created_at) AS latest FROM staff_notes WHERE tenant_id = %s",
                    (self._tenant,),
                )
                row = await cursor.fetchone()
        except psycopg.Error as err:
            raise ConnectorError("UNAVAILABLE", "cannot read staff notes", retryable=True) from err
        data = {"notes": int(row["notes"]) if row else 0, "latest": row["latest"] if row else None}
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
        started = time.perf_counter()
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
        try:
            # the tenant scope and the insert in one query message and one implicit transaction (issue 18);
            # a failing insert commits nothing
            rows = await self._db.tenant_statement(
                self._tenant,
                "INSERT INTO staff_notes (id, tenant_id, text, topic, idempotency_key, created_at)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (tenant_id, idempotency_key) DO NOTHING"
                " RETURNING id, created_at",
                (self._ids.new_id(), self._tenant, text, topic, ctx.idempotency_key, self._clock.now()),
            )
            if not rows:  # a replay: return the note the first call wrote
                rows = await self._db.tenant_statement(
                    self._tenant,
                    "SELECT id, created_at FROM staff_notes WHERE tenant_id = %s AND idempotency_key = %s",
                    (self._tenant, ctx.idempotency_key),
                )
        except psycopg.Error as err:
            raise ConnectorError(
                "UNAVAILABLE", f"cannot append the note ({translate(err, 'appending')})", retryable=True
            ) from err
        if not rows:  # the first call's note is gone (removed since): nothing to replay
            raise ConnectorError("UNKNOWN", "the note of this idempotency key is gone", retryable=False)
        row = rows[0]
        data = {"noteId": row["id"], "createdAt": row["created_at"].isoformat()}
        return ConnectorResponse(
            request_id=ctx.request_id,
            input_hash=input_hash,
            output_hash=sha256_hex(data),
            data=data,
            latency_ms=(time.perf_counter() - started) * 1000.0,
        )


class NotesReader:
    """Reads staff notes (for the CLI, the cockpit and tests)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def notes(self, tenant_id: str, *, limit: int = 50) -> list[dict[str, Any]]:
        try:
            async with self._db.connection() as conn:
                await conn.execute("SELECT set_config('studio_brain.tenant_id', %s, true)", (tenant_id,))
                cursor = await conn.execute(
                    "SELECT id, text, topic, idempotency_key, created_at FROM staff_notes WHERE tenant_id = %s"
                    " ORDER BY created_at DESC, id DESC LIMIT %s",
                    (tenant_id, limit),
                )
                return await cursor.fetchall()
        except psycopg.Error as err:
            raise translate(err, "reading staff notes") from err
