"""Fault recovery (issue 13): job runs may be closed as ``abandoned``.

A run left ``running`` by a process that died (kill -9, host crash) is closed on the next start with
status ``abandoned``; the status check of ``job_runs`` accepts it.

Revision ID: 0009_faults
Revises: 0008_keyed_audit
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009_faults"
down_revision: str | None = "0008_keyed_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = "status IN ('running', 'succeeded', 'failed', 'skipped')"
_NEW = "status IN ('running', 'succeeded', 'failed', 'skipped', 'abandoned')"


def upgrade() -> None:
    op.drop_constraint(op.f("ck_job_runs_status"), "job_runs", type_="check")
    op.create_check_constraint(op.f("ck_job_runs_status"), "job_runs", _NEW)


def downgrade() -> None:
    # an abandoned run is a failed one to the older schema
    op.execute("UPDATE job_runs SET status = 'failed' WHERE status = 'abandoned'")
    op.drop_constraint(op.f("ck_job_runs_status"), "job_runs", type_="check")
    op.create_check_constraint(op.f("ck_job_runs_status"), "job_runs", _OLD)
