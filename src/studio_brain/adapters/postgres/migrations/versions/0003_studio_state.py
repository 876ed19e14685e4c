"""StudioState (rule tables, cloud reads) (issue 4). A no-op until that issue adds its tables.

Revision ID: 0003_studio_state
Revises: 0002_audit
Create Date: 2026-11-25
"""

from collections.abc import Sequence

revision: str = "0003_studio_state"
down_revision: str | None = "0002_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
