"""Personal identities (issue 11): staff accounts, passkeys, personal tokens, sessions, login links.

Revision ID: 0007_identity
Revises: 0006_scheduler
Create Date: 2026-12-01

Reserved slot in the linear chain: empty until its issue needs a schema change.
"""

from collections.abc import Sequence

revision: str = "0007_identity"
down_revision: str | None = "0006_scheduler"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
