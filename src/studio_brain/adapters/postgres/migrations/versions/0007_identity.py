"""Personal identities (issue 11): staff accounts, passkeys, personal tokens, sessions, login links.

Revision ID: 0007_identity
Revises: 0006_scheduler
Create Date: 2026-12-01

Secrets are stored only as keyed MACs; the key lives in STUDIO_BRAIN_HOME, not in the database.
An upgraded brain has no persons: it starts, and ``serve`` says how to create the first owner.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007_identity"
down_revision: str | None = "0006_scheduler"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = postgresql.TIMESTAMP(timezone=True)
RLS_TABLES = (
    "staff_persons",
    "staff_passkeys",
    "staff_sessions",
    "personal_tokens",
    "identity_grants",
    "webauthn_challenges",
)


def upgrade() -> None:
    op.create_table(
        "staff_persons",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("roles", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("firebase_uid", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("removed_at", TS, nullable=True),
        sa.Column("removed_by", sa.Text(), nullable=True),
        sa.Column("seal", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "status IN ('invited', 'active', 'removed')", name=op.f("ck_staff_persons_status")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_staff_persons")),
        sa.UniqueConstraint(
            "tenant_id", "firebase_uid", name=op.f("uq_staff_persons_tenant_id_firebase_uid")
        ),
    )
    op.create_table(
        "staff_passkeys",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("person_id", sa.Text(), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("sign_count", sa.BigInteger(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_used_at", TS, nullable=True),
        sa.Column("removed_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_staff_passkeys")),
    )
    op.create_index("ix_staff_passkeys_tenant_person", "staff_passkeys", ["tenant_id", "person_id"])
    op.create_table(
        "staff_sessions",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("mac", sa.Text(), nullable=False),
        sa.Column("person_id", sa.Text(), nullable=True),
        sa.Column("credential_kind", sa.Text(), nullable=False),
        sa.Column("credential_id", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.Column("revoked_reason", sa.Text(), nullable=True),
        sa.Column("seal", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_sessions")),
        sa.UniqueConstraint("mac", name=op.f("uq_staff_sessions_mac")),
    )
    op.create_index("ix_staff_sessions_tenant_person", "staff_sessions", ["tenant_id", "person_id"])
    op.create_table(
        "personal_tokens",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("person_id", sa.Text(), nullable=False),
        sa.Column("mac", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("scopes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("last_used_at", TS, nullable=True),
        sa.Column("revoked_at", TS, nullable=True),
        sa.Column("seal", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_personal_tokens")),
        sa.UniqueConstraint("mac", name=op.f("uq_personal_tokens_mac")),
    )
    op.create_index("ix_personal_tokens_tenant_person", "personal_tokens", ["tenant_id", "person_id"])
    op.create_table(
        "identity_grants",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("mac", sa.Text(), nullable=False),
        sa.Column("person_id", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS, nullable=True),
        sa.Column("seal", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('invite', 'login_link', 'cli_code')", name=op.f("ck_identity_grants_kind")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_grants")),
        sa.UniqueConstraint("mac", name=op.f("uq_identity_grants_mac")),
    )
    op.create_index("ix_identity_grants_tenant_person", "identity_grants", ["tenant_id", "person_id"])
    op.create_table(
        "webauthn_challenges",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("challenge", sa.LargeBinary(), nullable=False),
        sa.Column("person_id", sa.Text(), nullable=True),
        sa.Column("grant_id", sa.Text(), nullable=True),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS, nullable=True),
        sa.CheckConstraint(
            "purpose IN ('register', 'authenticate')", name=op.f("ck_webauthn_challenges_purpose")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webauthn_challenges")),
    )
    # Row-level security as on the gateway's tables (0004): FORCE applies it to the owner too.
    for table in RLS_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table}"
            " USING (tenant_id = current_setting('studio_brain.tenant_id', true))"
            " WITH CHECK (tenant_id = current_setting('studio_brain.tenant_id', true))"
        )


def downgrade() -> None:
    for table in reversed(RLS_TABLES):
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
        op.drop_table(table)
