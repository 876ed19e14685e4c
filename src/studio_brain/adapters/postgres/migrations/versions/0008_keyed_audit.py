"""Keyed records (issues 20, 12): hashed-format version and MAC columns on the audit chain.

Revision ID: 0008_keyed_audit
Revises: 0007_identity
Create Date: 2026-12-01

Reserved slot in the linear chain: empty until its issue needs a schema change.
"""

from collections.abc import Sequence

revision: str = "0008_keyed_audit"
down_revision: str | None = "0007_identity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
