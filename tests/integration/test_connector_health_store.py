"""Connector health results in PostgreSQL: newest per connector, history, tenant isolation (RLS)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql

from studio_brain.adapters.postgres.connector_health_store import PostgresConnectorHealthStore
from studio_brain.adapters.postgres.database import Database, libpq_url
from studio_brain.domain.connectors import (
    BreakerState,
    ConnectorHealth,
    ConnectorMode,
    ErrorKind,
    HealthStatus,
)

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def health(connector: str, status: HealthStatus, minutes: int, **kw: object) -> ConnectorHealth:
    return ConnectorHealth(
        connector_id=connector,
        status=status,
        request_id=f"r-{connector}-{minutes}",
        checked_at=T0 + timedelta(minutes=minutes),
        **kw,  # type: ignore[arg-type]
    )


async def test_the_cockpit_gets_the_newest_result_per_connector_with_every_field(database: Database) -> None:
    store = PostgresConnectorHealthStore(database)
    await store.record(
        "studio-a", health("hubitat", HealthStatus.HEALTHY, 0, latency_ms=3.5, mode=ConnectorMode.READ_ONLY)
    )
    down = health(
        "hubitat",
        HealthStatus.DOWN,
        5,
        breaker=BreakerState.OPEN,
        error_kind=ErrorKind.UNAVAILABLE,
        detail="circuit open; next trial in 12.0s",
        mode=ConnectorMode.READ_ONLY,
    )
    await store.record("studio-a", down)
    await store.record("studio-a", health("roborock", HealthStatus.NOT_CONFIGURED, 1))
    assert await store.latest("studio-a") == [down, health("roborock", HealthStatus.NOT_CONFIGURED, 1)]
    history = await store.history("studio-a", "hubitat", limit=1)
    assert history == [down]


async def test_a_tenant_sees_only_its_own_results_even_without_the_query_filter(
    database: Database, database_url: str
) -> None:
    store = PostgresConnectorHealthStore(database)
    await store.record("studio-a", health("hubitat", HealthStatus.HEALTHY, 0))
    await store.record("studio-b", health("hubitat", HealthStatus.DOWN, 0))
    assert [h.status for h in await store.latest("studio-b")] == [HealthStatus.DOWN]
    # the application role is not a superuser: row-level security applies to it
    role = f"sb_app_{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    admin = libpq_url(database_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
        conn.execute(sql.SQL("GRANT SELECT ON connector_health_checks TO {}").format(sql.Identifier(role)))
    try:
        with psycopg.connect(admin, user=role, password=password) as app:
            app.execute("SELECT set_config('studio_brain.tenant_id', 'studio-a', true)")
            rows = app.execute("SELECT tenant_id, status FROM connector_health_checks").fetchall()
        assert rows == [("studio-a", "healthy")]
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("REVOKE ALL ON connector_health_checks FROM {}").format(sql.Identifier(role))
            )
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
