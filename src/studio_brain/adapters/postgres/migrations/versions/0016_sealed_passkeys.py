"""Sealed passkeys and versioned staff accounts (issue 12, item 2).

Revision ID: 0016_sealed_passkeys
Revises: 0015_rls_roles
Create Date: 2026-12-02

- ``staff_passkeys.seal``: a MAC (the identity key) over the passkey's id, tenant, person, public key and
  removal. Before it, a database writer could add their own public key to an owner's account, or move
  their passkey to it, and sign in as the owner. Rows from before have no seal and are refused at sign-in
  (RECORD_TAMPERED): their people enrol again from a new invite (docs/security.md, CHANGELOG).
- ``staff_persons.record_version``: bumped by every change and covered by the seal from version 2 on, so
  the record ledger (STUDIO_BRAIN_HOME) can tell an older copy of an account — an owner before demotion,
  a person before removal — from the current one. Existing rows are version 1 and keep their seals.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_sealed_passkeys"
down_revision: str | None = "0015_rls_roles"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("staff_passkeys", sa.Column("seal", sa.Text(), nullable=True))
    op.add_column(
        "staff_persons", sa.Column("record_version", sa.Integer(), nullable=False, server_default="1")
    )


def downgrade() -> None:
    op.drop_column("staff_persons", "record_version")
    op.drop_column("staff_passkeys", "seal")
