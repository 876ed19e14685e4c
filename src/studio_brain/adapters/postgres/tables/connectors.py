"""Tables of the connectors area (issue 6): connector health-check results kept for the cockpit."""

from sqlalchemy import CheckConstraint, Column, Double, Index, Table, Text, text
from sqlalchemy.dialects.postgresql import TIMESTAMP

from studio_brain.adapters.postgres.tables.base import metadata

connector_health_checks = Table(
    "connector_health_checks",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("connector_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("breaker", Text, nullable=False),
    Column("latency_ms", Double),
    Column("error_kind", Text),
    Column("mode", Text),
    Column("detail", Text, nullable=False, server_default=text("''")),
    Column("request_id", Text, nullable=False),
    Column("checked_at", TIMESTAMP(timezone=True), nullable=False),
    CheckConstraint("status IN ('healthy', 'degraded', 'down', 'not_configured')", name="status"),
    CheckConstraint("breaker IN ('closed', 'open', 'half_open')", name="breaker"),
    Index("ix_connector_health_checks_latest", "tenant_id", "connector_id", "checked_at"),
)

__all__ = ["connector_health_checks", "metadata"]
