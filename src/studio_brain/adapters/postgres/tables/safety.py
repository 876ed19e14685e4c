"""Tables of the safety watch and notifications (issue 17, migration 0011): condition onsets, findings,
and the notification outbox (one row per finding or brief and target)."""

from sqlalchemy import CheckConstraint, Column, Index, Integer, Table, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP

from studio_brain.adapters.postgres.tables.base import metadata

safety_conditions = Table(
    "safety_conditions",
    metadata,
    Column("tenant_id", Text, primary_key=True),
    Column("condition_key", Text, primary_key=True),
    Column("onset_at", TIMESTAMP(timezone=True), nullable=False),
    Column("last_seen_at", TIMESTAMP(timezone=True), nullable=False),
)

safety_findings = Table(
    "safety_findings",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("rule_id", Text, nullable=False),
    Column("rule_kind", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("dedupe_key", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("cooldown_seconds", Integer, nullable=False),
    Column("onset_at", TIMESTAMP(timezone=True), nullable=False),
    Column("detected_at", TIMESTAMP(timezone=True), nullable=False),
    Column("last_seen_at", TIMESTAMP(timezone=True), nullable=False),
    Column("resolved_at", TIMESTAMP(timezone=True)),
    Column("evidence", JSONB, nullable=False),
    Column("rules_version", Text, nullable=False),
    Column("rules_hash", Text, nullable=False),
    Column("draft_id", Text),
    Column("proposal_id", Text),
    CheckConstraint("status IN ('open', 'resolved')", name="status"),
    CheckConstraint("severity IN ('info', 'low', 'medium', 'high')", name="severity"),
    CheckConstraint("cooldown_seconds >= 0", name="cooldown_non_negative"),
    Index("ix_safety_findings_tenant_dedupe_detected", "tenant_id", "dedupe_key", "detected_at"),
    Index("ix_safety_findings_tenant_status_detected", "tenant_id", "status", "detected_at"),
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("dedupe_key", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("target_display", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("finding_id", Text),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", TIMESTAMP(timezone=True)),
    Column("last_error", Text),
    Column("created_at", TIMESTAMP(timezone=True), nullable=False),
    Column("sent_at", TIMESTAMP(timezone=True)),
    Column("updated_at", TIMESTAMP(timezone=True), nullable=False),
    CheckConstraint("kind IN ('alert', 'brief')", name="kind"),
    CheckConstraint("status IN ('pending', 'sent', 'failed')", name="status"),
    CheckConstraint("severity IN ('info', 'low', 'medium', 'high')", name="severity"),
    CheckConstraint("attempts >= 0", name="attempts_non_negative"),
    UniqueConstraint("tenant_id", "dedupe_key"),
    Index("ix_notifications_tenant_status_next", "tenant_id", "status", "next_attempt_at"),
    Index("ix_notifications_tenant_created", "tenant_id", "created_at"),
)

__all__ = ["metadata", "notifications", "safety_conditions", "safety_findings"]
