"""Tables of the morning cockpit (issue 14, migration 0012): daily closes and draft decisions."""

from sqlalchemy import CheckConstraint, Column, Date, PrimaryKeyConstraint, Table, Text
from sqlalchemy.dialects.postgresql import TIMESTAMP

from studio_brain.adapters.postgres.tables.base import metadata

daily_closes = Table(
    "daily_closes",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("close_date", Date, nullable=False),
    Column("kind", Text, nullable=False),
    Column("run_id", Text),
    Column("closed_at", TIMESTAMP(timezone=True), nullable=False),
    Column("reason", Text, nullable=False),
    CheckConstraint("kind IN ('on_time', 'read_time', 'late', 'not_closed')", name="kind"),
    CheckConstraint("(kind = 'not_closed') = (run_id IS NULL)", name="run_when_closed"),
    PrimaryKeyConstraint("tenant_id", "close_date"),
)

draft_decisions = Table(
    "draft_decisions",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("draft_id", Text, nullable=False),
    Column("decision", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("proposal_id", Text),
    Column("actor_id", Text, nullable=False),
    Column("decided_at", TIMESTAMP(timezone=True), nullable=False),
    CheckConstraint("decision IN ('submitted', 'dismissed')", name="decision"),
    PrimaryKeyConstraint("tenant_id", "draft_id"),
)

__all__ = ["daily_closes", "draft_decisions", "metadata"]
