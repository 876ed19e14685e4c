"""Safety watch and notifications (issue 17): condition onsets, findings, the notification outbox.

Revision ID: 0011_safety
Revises: 0010_cloud_writes
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011_safety"
down_revision: str | None = "0010_cloud_writes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RLS_TABLES = ("safety_conditions", "safety_findings", "notifications")
_TS = postgresql.TIMESTAMP(timezone=True)


def upgrade() -> None:
    op.create_table(
        "safety_conditions",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("condition_key", sa.Text(), nullable=False),
        sa.Column("onset_at", _TS, nullable=False),
        sa.Column("last_seen_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "condition_key", name=op.f("pk_safety_conditions")),
    )
    op.create_table(
        "safety_findings",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("rule_id", sa.Text(), nullable=False),
        sa.Column("rule_kind", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("dedupe_key", sa.Text(), nullable=False),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("cooldown_seconds", sa.Integer(), nullable=False),
        sa.Column("onset_at", _TS, nullable=False),
        sa.Column("detected_at", _TS, nullable=False),
        sa.Column("last_seen_at", _TS, nullable=False),
        sa.Column("resolved_at", _TS, nullable=True),
        sa.Column("evidence", postgresql.JSONB(), nullable=False),
        sa.Column("rules_version", sa.Text(), nullable=False),
        sa.Column("rules_hash", sa.Text(), nullable=False),
        sa.Column("draft_id", sa.Text(), nullable=True),
        sa.Column("proposal_id", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('open', 'resolved')", name=op.f("ck_safety_findings_status")),
        sa.CheckConstraint(
            "severity IN ('info', 'low', 'medium', 'high')", name=op.f("ck_safety_findings_severity")
        ),
        sa.CheckConstraint("cooldown_seconds >= 0", name=op.f("ck_safety_findings_cooldown_non_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_safety_findings")),
    )
    op.create_index(
        "ix_safety_findings_tenant_dedupe_detected",
        "safety_findings",
        ["tenant_id", "dedupe_key", "detected_at"],
    )
    op.create_index(
        "ix_safety_findings_tenant_status_detected", "safety_findings", ["tenant_id", "status", "detected_at"]
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("dedupe_key", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("target_display", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("finding_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("sent_at", _TS, nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint("kind IN ('alert', 'brief')", name=op.f("ck_notifications_kind")),
        sa.CheckConstraint("status IN ('pending', 'sent', 'failed')", name=op.f("ck_notifications_status")),
        sa.CheckConstraint(
            "severity IN ('info', 'low', 'medium', 'high')", name=op.f("ck_notifications_severity")
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_notifications_attempts_non_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("tenant_id", "dedupe_key", name=op.f("uq_notifications_tenant_id_dedupe_key")),
    )
    op.create_index(
        "ix_notifications_tenant_status_next", "notifications", ["tenant_id", "status", "next_attempt_at"]
    )
    op.create_index("ix_notifications_tenant_created", "notifications", ["tenant_id", "created_at"])
    # Same tenant-isolation policy as 0004_gateway: each transaction sets studio_brain.tenant_id.
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
    op.drop_index("ix_notifications_tenant_created", table_name="notifications")
    op.drop_index("ix_notifications_tenant_status_next", table_name="notifications")
    op.drop_table("notifications")
    op.drop_index("ix_safety_findings_tenant_status_detected", table_name="safety_findings")
    op.drop_index("ix_safety_findings_tenant_dedupe_detected", table_name="safety_findings")
    op.drop_table("safety_findings")
    op.drop_table("safety_conditions")
