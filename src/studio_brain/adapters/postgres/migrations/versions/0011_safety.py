"""Safety watch and notifications (issue 17).

Revision ID: 0011_safety
Revises: 0010_cloud_writes
Create Date: 2026-12-01

Reserved slot in the linear chain: empty until its issue needs a schema change.
"""

from collections.abc import Sequence

revision: str = "0011_safety"
down_revision: str | None = "0010_cloud_writes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
