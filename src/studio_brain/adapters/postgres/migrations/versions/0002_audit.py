"""Audit (issue 3). A no-op until that issue adds its tables.

Revision ID: 0002_audit
Revises: 0001_foundation
Create Date: 2026-11-25
"""

from collections.abc import Sequence

revision: str = "0002_audit"
down_revision: str | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
