"""Morning cockpit (issue 14): daily closes (final, marked late / not closed), draft decisions.

Revision ID: 0012_cockpit
Revises: 0011_safety
Create Date: 2026-12-01

``daily_closes`` holds one row per (tenant, local date), written once: the service inserts with
``ON CONFLICT DO NOTHING`` so a catch-up can never replace a close. ``draft_decisions`` records what a
person did with a swarm draft (submitted as a proposal, or dismissed with a reason), one row per draft.
Both hold tenant data: row-level security keyed on ``studio_brain.tenant_id`` as in 0004.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012_cockpit"
down_revision: str | None = "0011_safety"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("daily_closes", "draft_decisions")


def upgrade() -> None:
    op.create_table(
        "daily_closes",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("close_date", sa.Date(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=True),
        sa.Column("closed_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('on_time', 'read_time', 'late', 'not_closed')", name=op.f("ck_daily_closes_kind")
        ),
        sa.CheckConstraint(
            "(kind = 'not_closed') = (run_id IS NULL)", name=op.f("ck_daily_closes_run_when_closed")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "close_date", name=op.f("pk_daily_closes")),
    )
    op.create_table(
        "draft_decisions",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("draft_id", sa.Text(), nullable=False),
        sa.Column("decision", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("proposal_id", sa.Text(), nullable=True),
        sa.Column("actor_id", sa.Text(), nullable=False),
        sa.Column("decided_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.CheckConstraint(
            "decision IN ('submitted', 'dismissed')", name=op.f("ck_draft_decisions_decision")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "draft_id", name=op.f("pk_draft_decisions")),
    )
    for table in _TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table}"
            " USING (tenant_id = current_setting('studio_brain.tenant_id', true))"
            " WITH CHECK (tenant_id = current_setting('studio_brain.tenant_id', true))"
        )


def downgrade() -> None:
    for table in _TABLES:
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
    op.drop_table("draft_decisions")
    op.drop_table("daily_closes")
