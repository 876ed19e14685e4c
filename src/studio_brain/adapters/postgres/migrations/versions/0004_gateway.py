"""Capability gateway (issue 5). A no-op until that issue adds its tables.

Revision ID: 0004_gateway
Revises: 0003_studio_state
Create Date: 2026-11-25
"""

from collections.abc import Sequence

revision: str = "0004_gateway"
down_revision: str | None = "0003_studio_state"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
