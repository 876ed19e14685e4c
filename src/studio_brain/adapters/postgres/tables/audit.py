"""Tables of the audit log (issue 3, migration 0002): hash-chained events and signed checkpoints.

Both are append-only in the database itself: triggers created by migration 0002 refuse UPDATE, DELETE
and TRUNCATE (triggers are not compared by ``alembic check``; the constraints and indexes here are).
"""

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Index,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP

from studio_brain.adapters.postgres.tables.base import metadata

SHA256 = "~ '^[0-9a-f]{64}$'"

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("at", TIMESTAMP(timezone=True), nullable=False),
    Column("actor_type", Text, nullable=False),
    Column("actor_id", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("capability_id", Text),
    Column("target", Text, nullable=False),
    Column("rationale", Text, nullable=False),
    Column("approval_state", Text, nullable=False),
    Column("input_hash", Text, nullable=False),
    Column("output_hash", Text),
    Column("request_id", Text, nullable=False),
    Column("correlation_id", Text, nullable=False),
    Column("metadata", JSONB, nullable=False),
    Column("prev_hash", Text, nullable=False),
    Column("hash", Text, nullable=False),
    # Migration 0008: the hashed format (1 unkeyed, 2 keyed) and, keyed, the MAC key's id and the MAC.
    Column("format_version", SmallInteger, nullable=False, server_default=text("1")),
    Column("key_id", Text),
    Column("mac", Text),
    # One event per position, and one successor per event: two writers can never fork a chain.
    UniqueConstraint("tenant_id", "seq"),
    UniqueConstraint("tenant_id", "prev_hash"),
    CheckConstraint("seq >= 1", name="seq_positive"),
    CheckConstraint("actor_type IN ('human', 'staff', 'agent', 'system')", name="actor_type"),
    CheckConstraint(
        "approval_state IN ('required', 'approved', 'rejected', 'exempt', 'not_applicable')",
        name="approval_state",
    ),
    CheckConstraint(f"input_hash {SHA256}", name="input_hash_sha256"),
    CheckConstraint(f"output_hash IS NULL OR output_hash {SHA256}", name="output_hash_sha256"),
    CheckConstraint(f"prev_hash {SHA256}", name="prev_hash_sha256"),
    CheckConstraint(f"hash {SHA256}", name="hash_sha256"),
    CheckConstraint("format_version IN (1, 2)", name="format_version"),
    CheckConstraint(
        "(format_version = 1 AND key_id IS NULL AND mac IS NULL)"
        f" OR (format_version = 2 AND key_id IS NOT NULL AND mac {SHA256})",
        name="keyed_mac",
    ),
    # Newest-first pages filtered by one column walk (tenant, column, seq) backwards and stop at the limit;
    # without these a rarely matching filter scans the whole chain.
    Index("ix_audit_events_tenant_actor_seq", "tenant_id", "actor_id", "seq"),
    Index("ix_audit_events_tenant_capability_seq", "tenant_id", "capability_id", "seq"),
    Index("ix_audit_events_tenant_correlation_seq", "tenant_id", "correlation_id", "seq"),
    Index(
        "ix_audit_events_tenant_action_seq",
        "tenant_id",
        "action",
        "seq",
        postgresql_ops={"action": "text_pattern_ops"},  # LIKE 'prefix.%' whatever the collation
    ),
    Index("ix_audit_events_tenant_at", "tenant_id", "at"),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", Text, nullable=False),
    Column("at", TIMESTAMP(timezone=True), nullable=False),
    Column("signature", Text, nullable=False),
    Column("public_key", Text, nullable=False),
    Column("recorded_at", TIMESTAMP(timezone=True), nullable=False, server_default=text("now()")),
    PrimaryKeyConstraint("tenant_id", "seq"),
    CheckConstraint(f"hash {SHA256}", name="hash_sha256"),
)

__all__ = ["audit_checkpoints", "audit_events", "metadata"]
