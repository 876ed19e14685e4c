"""Scheduler and swarms (issue 8). A no-op until that issue adds its tables.

Revision ID: 0006_scheduler
Revises: 0005_connectors
Create Date: 2026-11-25
"""

from collections.abc import Sequence

revision: str = "0006_scheduler"
down_revision: str | None = "0005_connectors"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
