"""Connectors (issue 6). A no-op until that issue adds its tables.

Revision ID: 0005_connectors
Revises: 0004_gateway
Create Date: 2026-11-25
"""

from collections.abc import Sequence

revision: str = "0005_connectors"
down_revision: str | None = "0004_gateway"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
