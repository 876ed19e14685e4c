"""Row-level security on every tenant table and a non-owner app role (issue 12).

Revision ID: 0015_rls_roles
Revises: 0014_mcp
Create Date: 2026-12-01

Reserved slot in the linear chain: empty until its issue needs a schema change.
"""

from collections.abc import Sequence

revision: str = "0015_rls_roles"
down_revision: str | None = "0014_mcp"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
