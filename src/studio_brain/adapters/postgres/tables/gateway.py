"""Tables of the capability gateway (issue 5, migration 0004): proposals, kill switch, exemptions, rate
buckets, target state, agent tokens, and the local staff notes the ``local`` connector appends to.

Every table carries ``tenant_id`` and has row-level security keyed on the ``studio_brain.tenant_id``
session setting (the policies live in the migration; Alembic does not compare them).
"""

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP

from studio_brain.adapters.postgres.tables.base import metadata

TS = TIMESTAMP(timezone=True)

#: the tables with row-level security, in creation order
RLS_TABLES = (
    "gateway_proposals",
    "gateway_kill_switch",
    "gateway_exemptions",
    "gateway_rate_buckets",
    "gateway_targets",
    "agent_tokens",
    "staff_notes",
)

gateway_proposals = Table(
    "gateway_proposals",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("capability_id", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("requested_by", Text, nullable=False),
    Column("idempotency_key", Text),
    Column("execution_key", Text),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("version", Integer, nullable=False),
    # the whole proposal (domain.proposals.to_record): lossless, and what the audit log carries too
    Column("record", JSONB, nullable=False),
    # migration 0008: the MAC of the keyed record (domain/records.py) and its key id
    Column("record_key_id", Text),
    Column("record_mac", Text),
    CheckConstraint(
        "status IN ('draft', 'pending_approval', 'approved', 'executing', 'executed', 'failed',"
        " 'outcome_unknown', 'rejected', 'expired', 'cancelled')",
        name="status",
    ),
    UniqueConstraint("tenant_id", "idempotency_key"),
    UniqueConstraint("tenant_id", "execution_key"),
    Index("ix_gateway_proposals_tenant_created", "tenant_id", "created_at", "id"),
    Index("ix_gateway_proposals_tenant_target_status", "tenant_id", "target", "status"),
)

# id → owning tenant, deliberately without RLS and without content: lets the gateway tell a cross-tenant
# attempt (TENANT_MISMATCH, audited) from a proposal that does not exist
gateway_proposal_tenants = Table(
    "gateway_proposal_tenants",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
)

gateway_kill_switch = Table(
    "gateway_kill_switch",
    metadata,
    Column("tenant_id", Text, nullable=False),
    # '*' is the global switch; otherwise a capability id
    Column("scope", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("rationale", Text, nullable=False),
    Column("updated_by", Text, nullable=False),
    Column("updated_at", TS, nullable=False),
    # migration 0008: keyed record (version bumped by every write, MAC over content and version)
    Column("record_version", Integer, nullable=False, server_default=text("1")),
    Column("record_key_id", Text),
    Column("record_mac", Text),
    PrimaryKeyConstraint("tenant_id", "scope"),
)

gateway_exemptions = Table(
    "gateway_exemptions",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("capability_id", Text, nullable=False),
    Column("target", Text),
    Column("actor_id", Text),
    Column("justification", Text, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("revoked_at", TS),
    Column("revoked_by", Text),
    Column("revoke_reason", Text),
    # migration 0008: keyed record (version bumped by every write, MAC over content and version)
    Column("record_version", Integer, nullable=False, server_default=text("1")),
    Column("record_key_id", Text),
    Column("record_mac", Text),
    Index("ix_gateway_exemptions_tenant_capability", "tenant_id", "capability_id"),
)

gateway_rate_buckets = Table(
    "gateway_rate_buckets",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("bucket", Text, nullable=False),
    Column("window_start", TS, nullable=False),
    Column("count", Integer, nullable=False),
    PrimaryKeyConstraint("tenant_id", "bucket", "window_start"),
)

gateway_targets = Table(
    "gateway_targets",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("last_started_at", TS, nullable=False),
    PrimaryKeyConstraint("tenant_id", "target"),
)

agent_tokens = Table(
    "agent_tokens",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("agent_id", Text, nullable=False),
    # sha256 of the secret part; the raw token is shown once and never stored
    Column("token_hash", Text, nullable=False),
    Column("scopes", JSONB, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("revoked_at", TS),
    Column("revoked_by", Text),
    # migration 0008: keyed record — version bumped by every write, MAC over content and version
    Column("record_version", Integer, nullable=False, server_default=text("1")),
    Column("record_key_id", Text),
    Column("record_mac", Text),
    CheckConstraint("token_hash ~ '^[0-9a-f]{64}$'", name="token_hash_sha256"),
)

staff_notes = Table(
    "staff_notes",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("topic", Text),
    Column("idempotency_key", Text, nullable=False),
    Column("created_at", TS, nullable=False),
    UniqueConstraint("tenant_id", "idempotency_key"),
    Index("ix_staff_notes_tenant_created", "tenant_id", "created_at"),
)
