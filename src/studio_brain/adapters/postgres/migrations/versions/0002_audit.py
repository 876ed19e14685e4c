"""Audit (issue 3): the hash-chained, append-only audit log and its signed checkpoints.

Revision ID: 0002_audit
Revises: 0001_foundation
Create Date: 2026-11-25

Append-only is enforced by the database, not by convention: BEFORE UPDATE/DELETE row triggers and a
BEFORE TRUNCATE statement trigger raise on both tables, and UPDATE/DELETE/TRUNCATE are revoked from
PUBLIC (and from the runtime role ``studio_brain_app`` when the deployment created it; docs/audit.md).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_audit"
down_revision: str | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SHA256 = "~ '^[0-9a-f]{64}$'"
TABLES = ("audit_events", "audit_checkpoints")
RUNTIME_ROLE = "studio_brain_app"


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("actor_type", sa.Text(), nullable=False),
        sa.Column("actor_id", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("capability_id", sa.Text(), nullable=True),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("rationale", sa.Text(), nullable=False),
        sa.Column("approval_state", sa.Text(), nullable=False),
        sa.Column("input_hash", sa.Text(), nullable=False),
        sa.Column("output_hash", sa.Text(), nullable=True),
        sa.Column("request_id", sa.Text(), nullable=False),
        sa.Column("correlation_id", sa.Text(), nullable=False),
        sa.Column("metadata", postgresql.JSONB(), nullable=False),
        sa.Column("prev_hash", sa.Text(), nullable=False),
        sa.Column("hash", sa.Text(), nullable=False),
        sa.CheckConstraint("seq >= 1", name=op.f("ck_audit_events_seq_positive")),
        sa.CheckConstraint(
            "actor_type IN ('human', 'staff', 'agent', 'system')", name=op.f("ck_audit_events_actor_type")
        ),
        sa.CheckConstraint(
            "approval_state IN ('required', 'approved', 'rejected', 'exempt', 'not_applicable')",
            name=op.f("ck_audit_events_approval_state"),
        ),
        sa.CheckConstraint(f"input_hash {SHA256}", name=op.f("ck_audit_events_input_hash_sha256")),
        sa.CheckConstraint(
            f"output_hash IS NULL OR output_hash {SHA256}", name=op.f("ck_audit_events_output_hash_sha256")
        ),
        sa.CheckConstraint(f"prev_hash {SHA256}", name=op.f("ck_audit_events_prev_hash_sha256")),
        sa.CheckConstraint(f"hash {SHA256}", name=op.f("ck_audit_events_hash_sha256")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
        sa.UniqueConstraint("tenant_id", "seq", name=op.f("uq_audit_events_tenant_id_seq")),
        sa.UniqueConstraint("tenant_id", "prev_hash", name=op.f("uq_audit_events_tenant_id_prev_hash")),
    )
    op.create_index("ix_audit_events_tenant_actor_seq", "audit_events", ["tenant_id", "actor_id", "seq"])
    op.create_index(
        "ix_audit_events_tenant_capability_seq", "audit_events", ["tenant_id", "capability_id", "seq"]
    )
    op.create_index(
        "ix_audit_events_tenant_correlation_seq", "audit_events", ["tenant_id", "correlation_id", "seq"]
    )
    op.create_index(
        "ix_audit_events_tenant_action_seq",
        "audit_events",
        ["tenant_id", "action", "seq"],
        postgresql_ops={"action": "text_pattern_ops"},
    )
    op.create_index("ix_audit_events_tenant_at", "audit_events", ["tenant_id", "at"])
    op.create_table(
        "audit_checkpoints",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.Text(), nullable=False),
        sa.Column("at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column(
            "recorded_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(f"hash {SHA256}", name=op.f("ck_audit_checkpoints_hash_sha256")),
        sa.PrimaryKeyConstraint("tenant_id", "seq", name=op.f("pk_audit_checkpoints")),
    )
    op.execute(
        """
        CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the audit log is append-only: % on % is refused', TG_OP, TG_TABLE_NAME
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_refuse_update_delete BEFORE UPDATE OR DELETE ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_refuse_truncate BEFORE TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()"
        )
        op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM PUBLIC")
    # The least-privilege runtime role, when the deployment made one, may read and append only.
    op.execute(
        f"""
        DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{RUNTIME_ROLE}') THEN
                REVOKE UPDATE, DELETE, TRUNCATE ON {", ".join(TABLES)} FROM {RUNTIME_ROLE};
                GRANT SELECT, INSERT ON {", ".join(TABLES)} TO {RUNTIME_ROLE};
            END IF;
        END
        $$
        """
    )


def downgrade() -> None:
    # Dropping the tables is the only way to remove audit rows; a downgrade is a deliberate act.
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_refuse_truncate ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_refuse_update_delete ON {table}")
    op.execute("DROP FUNCTION IF EXISTS audit_refuse_change()")
    op.drop_table("audit_checkpoints")
    op.drop_index("ix_audit_events_tenant_at", table_name="audit_events")
    for index in (
        "ix_audit_events_tenant_action_seq",
        "ix_audit_events_tenant_correlation_seq",
        "ix_audit_events_tenant_capability_seq",
        "ix_audit_events_tenant_actor_seq",
    ):
        op.drop_index(index, table_name="audit_events")
    op.drop_table("audit_events")
