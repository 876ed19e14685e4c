"""Tables of the StateStore: snapshot runs, daily diffs, job runs (migration 0001)."""

from sqlalchemy import CheckConstraint, Column, Date, Index, PrimaryKeyConstraint, Table, Text, text
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP

from studio_brain.adapters.postgres.tables.base import metadata

snapshot_runs = Table(
    "snapshot_runs",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("snapshot_date", Date, nullable=False),
    Column("generated_at", TIMESTAMP(timezone=True), nullable=False),
    Column("completeness", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("document", JSONB, nullable=False),
    Column("snapshot_hash", Text, nullable=False),
    Column("stored_at", TIMESTAMP(timezone=True), nullable=False, server_default=text("now()")),
    CheckConstraint("completeness IN ('full', 'partial')", name="completeness"),
    CheckConstraint("snapshot_hash ~ '^[0-9a-f]{64}$'", name="snapshot_hash_sha256"),
    Index("ix_snapshot_runs_tenant_date", "tenant_id", "snapshot_date", "generated_at"),
)

snapshot_diffs = Table(
    "snapshot_diffs",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("from_date", Date, nullable=False),
    Column("to_date", Date, nullable=False),
    Column("from_run_id", Text, nullable=False),
    Column("to_run_id", Text, nullable=False),
    Column("changes", JSONB, nullable=False),
    Column("computed_at", TIMESTAMP(timezone=True), nullable=False),
    PrimaryKeyConstraint("tenant_id", "from_date", "to_date"),
)

job_runs = Table(
    "job_runs",
    metadata,
    Column("id", Text, primary_key=True),
    Column("job", Text, nullable=False),
    Column("tenant_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("started_at", TIMESTAMP(timezone=True), nullable=False),
    Column("finished_at", TIMESTAMP(timezone=True)),
    Column("error", Text),
    Column("summary", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    # 'abandoned' (migration 0009): a run whose process died, closed on the next start
    CheckConstraint("status IN ('running', 'succeeded', 'failed', 'skipped', 'abandoned')", name="status"),
    Index("ix_job_runs_tenant_job_started", "tenant_id", "job", "started_at"),
)
