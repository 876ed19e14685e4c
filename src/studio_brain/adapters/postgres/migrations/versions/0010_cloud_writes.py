"""Controlled cloud writes (issue 15): write budgets and attestations.

Revision ID: 0010_cloud_writes
Revises: 0009_faults
Create Date: 2026-12-01

No schema change was needed, so the slot stays a no-op (kept for the linear chain): the daily cloud-write
budget is a row in ``gateway_rate_buckets`` (bucket ``cloud-writes:day``, tenant-scoped by its RLS policy),
and attestations travel in proposal results and audit rows, which already exist.
"""

from collections.abc import Sequence

revision: str = "0010_cloud_writes"
down_revision: str | None = "0009_faults"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
