"""MCP agents (issue 16).

Revision ID: 0014_mcp
Revises: 0013_portal
Create Date: 2026-12-01

Reserved slot in the linear chain: empty until its issue needs a schema change.
"""

from collections.abc import Sequence

revision: str = "0014_mcp"
down_revision: str | None = "0013_portal"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
