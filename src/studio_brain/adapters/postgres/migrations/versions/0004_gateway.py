"""Capability gateway (issue 5): proposals, kill switch, exemptions, rate buckets, targets, agent tokens,
staff notes — each with row-level security keyed on the ``studio_brain.tenant_id`` session setting.

Revision ID: 0004_gateway
Revises: 0003_studio_state
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_gateway"
down_revision: str | None = "0003_studio_state"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = postgresql.TIMESTAMP(timezone=True)
RLS_TABLES = (
    "gateway_proposals",
    "gateway_kill_switch",
    "gateway_exemptions",
    "gateway_rate_buckets",
    "gateway_targets",
    "agent_tokens",
    "staff_notes",
)


def upgrade() -> None:
    op.create_table(
        "gateway_proposals",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("capability_id", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=True),
        sa.Column("execution_key", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("record", postgresql.JSONB(), nullable=False),
        sa.CheckConstraint(
            "status IN ('draft', 'pending_approval', 'approved', 'executing', 'executed', 'failed',"
            " 'outcome_unknown', 'rejected', 'expired', 'cancelled')",
            name=op.f("ck_gateway_proposals_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_proposals")),
        sa.UniqueConstraint(
            "tenant_id", "idempotency_key", name=op.f("uq_gateway_proposals_tenant_id_idempotency_key")
        ),
        sa.UniqueConstraint(
            "tenant_id", "execution_key", name=op.f("uq_gateway_proposals_tenant_id_execution_key")
        ),
    )
    op.create_index(
        "ix_gateway_proposals_tenant_created", "gateway_proposals", ["tenant_id", "created_at", "id"]
    )
    op.create_index(
        "ix_gateway_proposals_tenant_target_status", "gateway_proposals", ["tenant_id", "target", "status"]
    )
    op.create_table(
        "gateway_proposal_tenants",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_proposal_tenants")),
    )
    op.create_table(
        "gateway_kill_switch",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("rationale", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "scope", name=op.f("pk_gateway_kill_switch")),
    )
    op.create_table(
        "gateway_exemptions",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("capability_id", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=True),
        sa.Column("actor_id", sa.Text(), nullable=True),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.Column("revoked_by", sa.Text(), nullable=True),
        sa.Column("revoke_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_exemptions")),
    )
    op.create_index(
        "ix_gateway_exemptions_tenant_capability", "gateway_exemptions", ["tenant_id", "capability_id"]
    )
    op.create_table(
        "gateway_rate_buckets",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("bucket", sa.Text(), nullable=False),
        sa.Column("window_start", TS, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "bucket", "window_start", name=op.f("pk_gateway_rate_buckets")),
    )
    op.create_table(
        "gateway_targets",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("last_started_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "target", name=op.f("pk_gateway_targets")),
    )
    op.create_table(
        "agent_tokens",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("agent_id", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.Text(), nullable=False),
        sa.Column("scopes", postgresql.JSONB(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.Column("revoked_by", sa.Text(), nullable=True),
        sa.CheckConstraint("token_hash ~ '^[0-9a-f]{64}$'", name=op.f("ck_agent_tokens_token_hash_sha256")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_tokens")),
    )
    op.create_table(
        "staff_notes",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_notes")),
        sa.UniqueConstraint(
            "tenant_id", "idempotency_key", name=op.f("uq_staff_notes_tenant_id_idempotency_key")
        ),
    )
    op.create_index("ix_staff_notes_tenant_created", "staff_notes", ["tenant_id", "created_at"])
    # Row-level security: a second wall behind the services' tenant checks. FORCE makes it apply to the
    # table owner too; only a superuser (or BYPASSRLS role) sees across tenants.
    for table in RLS_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table}"
            " USING (tenant_id = current_setting('studio_brain.tenant_id', true))"
            " WITH CHECK (tenant_id = current_setting('studio_brain.tenant_id', true))"
        )


def downgrade() -> None:
    for table in reversed(RLS_TABLES):
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
    op.drop_index("ix_staff_notes_tenant_created", table_name="staff_notes")
    op.drop_table("staff_notes")
    op.drop_table("agent_tokens")
    op.drop_table("gateway_targets")
    op.drop_table("gateway_rate_buckets")
    op.drop_index("ix_gateway_exemptions_tenant_capability", table_name="gateway_exemptions")
    op.drop_table("gateway_exemptions")
    op.drop_table("gateway_kill_switch")
    op.drop_table("gateway_proposal_tenants")
    op.drop_index("ix_gateway_proposals_tenant_target_status", table_name="gateway_proposals")
    op.drop_index("ix_gateway_proposals_tenant_created", table_name="gateway_proposals")
    op.drop_table("gateway_proposals")
