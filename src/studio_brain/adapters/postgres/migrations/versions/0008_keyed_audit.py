"""Keyed records (issues 20, 12): hashed-format version and MAC columns on the audit chain.

Revision ID: 0008_keyed_audit
Revises: 0007_identity
Create Date: 2026-12-01

Every audit event gets ``format_version`` (1 = unkeyed, the only format before this revision; 2 = keyed),
``key_id`` and ``mac``. Existing rows become format 1 by the column default (no rewrite of their hashed
content: their hashes stay valid). A keyed row must carry a key id and a 64-hex MAC; an unkeyed one
neither. The key itself never enters the database (docs/audit.md "Keyed chain").

Keyed records (issue 12 item 2): ``gateway_proposals`` and ``agent_tokens`` get ``record_key_id`` and
``record_mac`` (a MAC over the row's content and version, docs/security.md "Keyed records");
``agent_tokens``, ``gateway_exemptions`` and ``gateway_kill_switch`` also a ``record_version`` bumped by
every write, and their own ``record_key_id`` / ``record_mac``. Rows written before this revision have no MAC
and are refused at use (re-issue agent tokens and exemptions, re-create pending proposals and set the kill
switch again after upgrading).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_keyed_audit"
down_revision: str | None = "0007_identity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ADD COLUMN with a constant default does not rewrite the table (PostgreSQL >= 11), and is DDL: the
    # append-only row triggers do not fire.
    op.add_column(
        "audit_events",
        sa.Column("format_version", sa.SmallInteger(), server_default=sa.text("1"), nullable=False),
    )
    op.add_column("audit_events", sa.Column("key_id", sa.Text(), nullable=True))
    op.add_column("audit_events", sa.Column("mac", sa.Text(), nullable=True))
    op.create_check_constraint(
        op.f("ck_audit_events_format_version"), "audit_events", "format_version IN (1, 2)"
    )
    op.add_column("gateway_proposals", sa.Column("record_key_id", sa.Text(), nullable=True))
    op.add_column("gateway_proposals", sa.Column("record_mac", sa.Text(), nullable=True))
    op.add_column(
        "agent_tokens",
        sa.Column("record_version", sa.Integer(), server_default=sa.text("1"), nullable=False),
    )
    for table in ("agent_tokens", "gateway_exemptions", "gateway_kill_switch"):
        if table != "agent_tokens":
            op.add_column(
                table, sa.Column("record_version", sa.Integer(), server_default=sa.text("1"), nullable=False)
            )
        op.add_column(table, sa.Column("record_key_id", sa.Text(), nullable=True))
        op.add_column(table, sa.Column("record_mac", sa.Text(), nullable=True))
    op.create_check_constraint(
        op.f("ck_audit_events_keyed_mac"),
        "audit_events",
        "(format_version = 1 AND key_id IS NULL AND mac IS NULL)"
        " OR (format_version = 2 AND key_id IS NOT NULL AND mac ~ '^[0-9a-f]{64}$')",
    )


def downgrade() -> None:
    # Keyed rows cannot be represented without these columns: downgrading would make them unverifiable.
    op.execute(
        """
        DO $$ BEGIN
          IF EXISTS (SELECT 1 FROM audit_events WHERE format_version <> 1) THEN
            RAISE EXCEPTION 'keyed audit events exist; downgrading below 0008 would make them unverifiable';
          END IF;
        END $$;
        """
    )
    for table, column in (
        ("gateway_kill_switch", "record_mac"),
        ("gateway_kill_switch", "record_key_id"),
        ("gateway_kill_switch", "record_version"),
        ("gateway_exemptions", "record_mac"),
        ("gateway_exemptions", "record_key_id"),
        ("gateway_exemptions", "record_version"),
        ("agent_tokens", "record_mac"),
        ("agent_tokens", "record_key_id"),
        ("agent_tokens", "record_version"),
        ("gateway_proposals", "record_mac"),
        ("gateway_proposals", "record_key_id"),
    ):
        op.drop_column(table, column)
    op.drop_constraint(op.f("ck_audit_events_keyed_mac"), "audit_events", type_="check")
    op.drop_constraint(op.f("ck_audit_events_format_version"), "audit_events", type_="check")
    op.drop_column("audit_events", "mac")
    op.drop_column("audit_events", "key_id")
    op.drop_column("audit_events", "format_version")
