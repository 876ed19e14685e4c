"""Tables of the scheduler and swarms area (issue 8): swarm drafts (migration 0006).

The cooldown is enforced by a BEFORE INSERT trigger (``swarm_drafts_cooldown``, created in the
migration; Alembic does not compare triggers), so no writer can bypass it.
"""

from sqlalchemy import (
    CheckConstraint,
    Column,
    Date,
    Float,
    Index,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP

from studio_brain.adapters.postgres.tables.base import metadata

swarm_drafts = Table(
    "swarm_drafts",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("rule_id", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("dedupe_key", Text, nullable=False),
    Column("cooldown_key", Text, nullable=False),
    Column("cooldown_seconds", Integer, nullable=False),
    Column("draft_day", Date, nullable=False),
    Column("status", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("rationale", Text, nullable=False),
    Column("recommendation", Text, nullable=False),
    Column("snapshot_date", Date),
    Column("evidence", JSONB, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("body", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("actor_type", Text, nullable=False),
    Column("actor_id", Text, nullable=False),
    Column("created_at", TIMESTAMP(timezone=True), nullable=False),
    Column("updated_at", TIMESTAMP(timezone=True), nullable=False),
    CheckConstraint("kind IN ('ops', 'finance', 'marketing')", name="kind"),
    CheckConstraint("status IN ('open', 'draft', 'needs_review', 'approved_for_publish')", name="status"),
    CheckConstraint("severity IN ('info', 'low', 'medium', 'high')", name="severity"),
    CheckConstraint("confidence >= 0 AND confidence <= 1", name="confidence_range"),
    CheckConstraint("cooldown_seconds >= 0", name="cooldown_non_negative"),
    CheckConstraint("dedupe_key ~ '^[0-9a-f]{64}$'", name="dedupe_key_sha256"),
    UniqueConstraint("tenant_id", "dedupe_key"),
    Index("ix_swarm_drafts_tenant_kind_created", "tenant_id", "kind", "created_at"),
    Index("ix_swarm_drafts_tenant_cooldown_created", "tenant_id", "cooldown_key", "created_at"),
)

__all__ = ["metadata", "swarm_drafts"]
