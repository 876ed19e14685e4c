"""Tables of personal identities (issue 11, migration 0007): persons, passkeys, sessions, personal tokens,
one-time grants (invites, login links, CLI codes) and WebAuthn challenges.

Secrets are never stored: session ids, tokens and grants appear only as keyed MACs (``mac``), and each
row that grants a power carries a ``seal`` (a MAC over its deciding fields). Every table has
``tenant_id`` and forced row-level security (the policies live in the migration).
"""

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP

from studio_brain.adapters.postgres.tables.base import metadata

TS = TIMESTAMP(timezone=True)

#: the tables with row-level security, in creation order
RLS_TABLES = (
    "staff_persons",
    "staff_passkeys",
    "staff_sessions",
    "personal_tokens",
    "identity_grants",
    "webauthn_challenges",
)

staff_persons = Table(
    "staff_persons",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("id", Text, nullable=False),
    Column("display_name", Text, nullable=False),
    Column("roles", JSONB, nullable=False),
    Column("status", Text, nullable=False),
    Column("firebase_uid", Text),
    Column("created_by", Text, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("removed_at", TS),
    Column("removed_by", Text),
    Column("seal", Text, nullable=False),
    # issue 12: bumped by every change and sealed, so an older copy written back is caught (0016)
    Column("record_version", Integer, nullable=False, server_default="1"),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "firebase_uid"),
    CheckConstraint("status IN ('invited', 'active', 'removed')", name="status"),
)

staff_passkeys = Table(
    "staff_passkeys",
    metadata,
    Column("tenant_id", Text, nullable=False),
    Column("id", Text, nullable=False),
    Column("person_id", Text, nullable=False),
    Column("public_key", LargeBinary, nullable=False),
    Column("sign_count", BigInteger, nullable=False),
    Column("label", Text, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("last_used_at", TS),
    Column("removed_at", TS),
    # issue 12: a MAC over who the key belongs to, its public key and its removal (0016); NULL: refused
    Column("seal", Text),
    PrimaryKeyConstraint("tenant_id", "id"),
    Index("ix_staff_passkeys_tenant_person", "tenant_id", "person_id"),
)

staff_sessions = Table(
    "staff_sessions",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("mac", Text, nullable=False),
    Column("person_id", Text),
    Column("credential_kind", Text, nullable=False),
    Column("credential_id", Text, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("last_seen_at", TS, nullable=False),
    Column("revoked_at", TS),
    Column("revoked_reason", Text),
    Column("seal", Text, nullable=False),
    UniqueConstraint("mac"),
    Index("ix_staff_sessions_tenant_person", "tenant_id", "person_id"),
)

personal_tokens = Table(
    "personal_tokens",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("person_id", Text, nullable=False),
    Column("mac", Text, nullable=False),
    Column("label", Text, nullable=False),
    Column("scopes", JSONB, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("last_used_at", TS),
    Column("revoked_at", TS),
    Column("seal", Text, nullable=False),
    UniqueConstraint("mac"),
    Index("ix_personal_tokens_tenant_person", "tenant_id", "person_id"),
)

identity_grants = Table(
    "identity_grants",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("mac", Text, nullable=False),
    Column("person_id", Text),
    Column("created_by", Text, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("used_at", TS),
    Column("seal", Text, nullable=False),
    UniqueConstraint("mac"),
    CheckConstraint("kind IN ('invite', 'login_link', 'cli_code')", name="kind"),
    Index("ix_identity_grants_tenant_person", "tenant_id", "person_id"),
)

webauthn_challenges = Table(
    "webauthn_challenges",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("purpose", Text, nullable=False),
    Column("challenge", LargeBinary, nullable=False),
    Column("person_id", Text),
    Column("grant_id", Text),
    Column("expires_at", TS, nullable=False),
    Column("used_at", TS),
    CheckConstraint("purpose IN ('register', 'authenticate')", name="purpose"),
)

__all__ = [
    "RLS_TABLES",
    "identity_grants",
    "metadata",
    "personal_tokens",
    "staff_passkeys",
    "staff_persons",
    "staff_sessions",
    "webauthn_challenges",
]
