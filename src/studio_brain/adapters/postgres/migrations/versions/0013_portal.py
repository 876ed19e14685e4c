"""Portal Control Tower (issue 21): acknowledgements.

Revision ID: 0013_portal
Revises: 0012_cockpit
Create Date: 2026-12-01

Reserved slot in the linear chain: empty until its issue needs a schema change.
"""

from collections.abc import Sequence

revision: str = "0013_portal"
down_revision: str | None = "0012_cockpit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
