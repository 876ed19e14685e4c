"""Foundation: StateStore tables (snapshot runs, daily diffs, job runs).

Revision ID: 0001_foundation
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_foundation"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "snapshot_runs",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("snapshot_date", sa.Date(), nullable=False),
        sa.Column("generated_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("completeness", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("document", postgresql.JSONB(), nullable=False),
        sa.Column("snapshot_hash", sa.Text(), nullable=False),
        sa.Column(
            "stored_at", postgresql.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.CheckConstraint("completeness IN ('full', 'partial')", name=op.f("ck_snapshot_runs_completeness")),
        sa.CheckConstraint(
            "snapshot_hash ~ '^[0-9a-f]{64}$'", name=op.f("ck_snapshot_runs_snapshot_hash_sha256")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snapshot_runs")),
    )
    op.create_index(
        "ix_snapshot_runs_tenant_date", "snapshot_runs", ["tenant_id", "snapshot_date", "generated_at"]
    )
    op.create_table(
        "snapshot_diffs",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("from_date", sa.Date(), nullable=False),
        sa.Column("to_date", sa.Date(), nullable=False),
        sa.Column("from_run_id", sa.Text(), nullable=False),
        sa.Column("to_run_id", sa.Text(), nullable=False),
        sa.Column("changes", postgresql.JSONB(), nullable=False),
        sa.Column("computed_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "from_date", "to_date", name=op.f("pk_snapshot_diffs")),
    )
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("job", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("started_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("finished_at", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("summary", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed', 'skipped')", name=op.f("ck_job_runs_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
    )
    op.create_index("ix_job_runs_tenant_job_started", "job_runs", ["tenant_id", "job", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_job_runs_tenant_job_started", table_name="job_runs")
    op.drop_table("job_runs")
    op.drop_table("snapshot_diffs")
    op.drop_index("ix_snapshot_runs_tenant_date", table_name="snapshot_runs")
    op.drop_table("snapshot_runs")
