"""Morning cockpit (issue 14): daily closes marked late, draft dismissals.

Revision ID: 0012_cockpit
Revises: 0011_safety
Create Date: 2026-12-01

Reserved slot in the linear chain: empty until its issue needs a schema change.
"""

from collections.abc import Sequence

revision: str = "0012_cockpit"
down_revision: str | None = "0011_safety"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
