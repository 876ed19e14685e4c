"""ConnectorHealthStore on PostgreSQL: every health-check result, newest per connector for the cockpit.

Each transaction sets ``studio_brain.tenant_id`` so the table's row-level security policy applies to a
non-superuser application role, as on the gateway's tables."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

from studio_brain.adapters.postgres.database import Database, translate
from studio_brain.domain.connectors import (
    BreakerState,
    ConnectorHealth,
    ConnectorMode,
    ErrorKind,
    HealthStatus,
)

_COLUMNS = "connector_id, status, breaker, latency_ms, error_kind, mode, detail, request_id, checked_at"


def _health(row: dict[str, Any]) -> ConnectorHealth:
    return ConnectorHealth(
        connector_id=row["connector_id"],
        status=HealthStatus(row["status"]),
        breaker=BreakerState(row["breaker"]),
        latency_ms=row["latency_ms"],
        error_kind=None if row["error_kind"] is None else ErrorKind(row["error_kind"]),
        mode=None if row["mode"] is None else ConnectorMode(row["mode"]),
        detail=row["detail"],
        request_id=row["request_id"],
        checked_at=row["checked_at"],
    )


async def _scope(conn: psycopg.AsyncConnection[dict[str, Any]], tenant_id: str) -> None:
    await conn.execute("SELECT set_config('studio_brain.tenant_id', %s, true)", (tenant_id,))


class PostgresConnectorHealthStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def record(self, tenant_id: str, health: ConnectorHealth) -> None:
        try:
            async with self._db.connection() as conn:
                await _scope(conn, tenant_id)
                await conn.execute(
                    f"INSERT INTO connector_health_checks (id, tenant_id, {_COLUMNS})"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        str(uuid.uuid4()),
                        tenant_id,
                        health.connector_id,
                        health.status.value,
                        health.breaker.value,
                        health.latency_ms,
                        None if health.error_kind is None else health.error_kind.value,
                        None if health.mode is None else health.mode.value,
                        health.detail,
                        health.request_id,
                        health.checked_at,
                    ),
                )
        except psycopg.Error as err:
            raise translate(err, "recording a connector health check") from err

    async def _rows(self, tenant_id: str, query: str, params: tuple[Any, ...]) -> list[ConnectorHealth]:
        try:
            # scope and statement in one query message and one round trip (issue 18, ADR 0018: the Portal's
            # capabilities card reads the latest per connector on every load; it was four round trips)
            rows = await self._db.tenant_statement(tenant_id, query, params)
        except psycopg.Error as err:
            raise translate(err, "reading connector health") from err
        return [_health(row) for row in rows]

    async def latest(self, tenant_id: str) -> list[ConnectorHealth]:
        return await self._rows(
            tenant_id,
            f"SELECT DISTINCT ON (connector_id) {_COLUMNS} FROM connector_health_checks WHERE tenant_id = %s"
            " ORDER BY connector_id, checked_at DESC, id DESC",
            (tenant_id,),
        )

    async def history(self, tenant_id: str, connector_id: str, *, limit: int = 50) -> list[ConnectorHealth]:
        return await self._rows(
            tenant_id,
            f"SELECT {_COLUMNS} FROM connector_health_checks WHERE tenant_id = %s AND connector_id = %s"
            " ORDER BY checked_at DESC, id DESC LIMIT %s",
            (tenant_id, connector_id, max(1, min(limit, 1000))),
        )
