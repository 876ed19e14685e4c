"""The records behind a person's credentials: passkeys, sessions, personal tokens, one-time grants, challenges.

Every secret a human holds (session id, personal token, invite, login link, CLI code) is 256 random bits
and is stored only as a keyed MAC (the key lives in STUDIO_BRAIN_HOME, never in the database). Each row
also carries a *seal* — a MAC over the fields that decide what the credential may do — so a database
writer without the key can neither mint a credential nor widen, extend, re-assign or revive one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from studio_brain.domain.identity import CredentialKind, GrantKind, Person
from studio_brain.domain.times import iso

#: a personal API token starts with this (agent tokens: ``sbat_``)
PERSONAL_TOKEN_PREFIX = "sbpt_"  # noqa: S105 - a prefix, not a token


def _iso(value: datetime | None) -> str | None:
    # UTC first: PostgreSQL hands timestamps back in the session's time zone, and a seal must not change
    # with it; "+00:00" (not "Z") as the rows were sealed before
    return iso(value, utc=True, z=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class Passkey:
    """A WebAuthn credential of one person (public key only; the private key never leaves the device)."""

    id: str  # base64url credential id
    tenant_id: str
    person_id: str
    public_key: bytes
    sign_count: int
    label: str
    created_at: datetime
    last_used_at: datetime | None = None
    removed_at: datetime | None = None
    #: a MAC over :meth:`sealed_fields` (issue 12); "" on a row written before passkeys were sealed
    seal: str = ""

    def sealed_fields(self) -> dict[str, Any]:
        """Whose key it is, which key, and whether it was removed. Not the sign counter: it only detects
        cloned authenticators and changes at every sign-in; lowering it lets no one sign without the
        private key."""
        return {
            "record": "passkey",
            "id": self.id,
            "tenant": self.tenant_id,
            "person": self.person_id,
            "publicKey": hashlib.sha256(self.public_key).hexdigest(),
            "removed": _iso(self.removed_at),
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class Session:
    """A cockpit session, server-side. The cookie carries only the random id; the store keeps its MAC."""

    id: str
    tenant_id: str
    mac: str
    #: None for a break-glass session opened with a login link
    person_id: str | None
    credential_kind: CredentialKind
    credential_id: str
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime
    seal: str
    revoked_at: datetime | None = None
    revoked_reason: str | None = None

    def sealed_fields(self) -> dict[str, Any]:
        return {
            "record": "session",
            "id": self.id,
            "tenant": self.tenant_id,
            "mac": self.mac,
            "person": self.person_id,
            "kind": self.credential_kind.value,
            "credential": self.credential_id,
            "expires": _iso(self.expires_at),
            "revoked": _iso(self.revoked_at),
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class PersonalToken:
    """A person's API token for the CLI and scripts: hashed, scoped, expiring, revocable."""

    id: str
    tenant_id: str
    person_id: str
    mac: str
    label: str
    scopes: frozenset[str]
    created_at: datetime
    expires_at: datetime
    seal: str
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    def sealed_fields(self) -> dict[str, Any]:
        return {
            "record": "personal_token",
            "id": self.id,
            "tenant": self.tenant_id,
            "mac": self.mac,
            "person": self.person_id,
            "scopes": sorted(self.scopes),
            "expires": _iso(self.expires_at),
            "revoked": _iso(self.revoked_at),
        }

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


@dataclass(frozen=True, kw_only=True, slots=True)
class Grant:
    """A one-time secret: an enrolment invite, a cockpit login link, or a CLI login code."""

    id: str
    tenant_id: str
    kind: GrantKind
    mac: str
    #: the person it is for (invites, CLI codes); None for a break-glass login link
    person_id: str | None
    created_by: str
    created_at: datetime
    expires_at: datetime
    seal: str
    used_at: datetime | None = None

    def sealed_fields(self) -> dict[str, Any]:
        return {
            "record": "grant",
            "id": self.id,
            "tenant": self.tenant_id,
            "kind": self.kind.value,
            "mac": self.mac,
            "person": self.person_id,
            "expires": _iso(self.expires_at),
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class Challenge:
    """A WebAuthn challenge, stored so it can be used exactly once and only before it expires."""

    id: str
    tenant_id: str
    #: "register" or "authenticate"
    purpose: str
    challenge: bytes
    person_id: str | None
    grant_id: str | None
    expires_at: datetime
    used_at: datetime | None = None


def person_sealed_fields(person: Person) -> dict[str, Any]:
    """What a person's seal covers: who they are and what they may do."""
    return {
        "record": "person",
        "id": person.id,
        "tenant": person.tenant_id,
        "roles": sorted(r.value for r in person.roles),
        "status": person.status.value,
        "firebase": person.firebase_uid,
    } | (
        # Version 1 rows keep the seal they were written with before versions existed (migration 0016);
        # every change after it is version 2 or more and sealed with it, so the record ledger can refuse
        # an older copy written back.
        {"version": person.version} if person.version > 1 else {}
    )
