"""Fault recovery (issue 13): job runs abandoned, execution journal support.

Revision ID: 0009_faults
Revises: 0008_keyed_audit
Create Date: 2026-12-01

Reserved slot in the linear chain: empty until its issue needs a schema change.
"""

from collections.abc import Sequence

revision: str = "0009_faults"
down_revision: str | None = "0008_keyed_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
