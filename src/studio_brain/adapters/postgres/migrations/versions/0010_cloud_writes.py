"""Controlled cloud writes (issue 15): write budgets and attestations.

Revision ID: 0010_cloud_writes
Revises: 0009_faults
Create Date: 2026-12-01

Reserved slot in the linear chain: empty until its issue needs a schema change.
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
