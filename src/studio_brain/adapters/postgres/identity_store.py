"""IdentityStore on PostgreSQL: persons, passkeys, sessions, personal tokens, grants and challenges.

Each transaction sets ``studio_brain.tenant_id`` so the tables' row-level security applies. Single use is
decided by the database (``UPDATE … WHERE used_at IS NULL RETURNING``), so two racing redemptions of one
link or challenge can never both win, in one process or across restarts.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import psycopg

from studio_brain.adapters.postgres.database import Database, translate
from studio_brain.domain.credentials import Challenge, Grant, Passkey, PersonalToken, Session
from studio_brain.domain.identity import CredentialKind, GrantKind, Person, PersonStatus, Role

Conn = psycopg.AsyncConnection[dict[str, Any]]


def _person(row: dict[str, Any]) -> Person:
    return Person(
        id=row["id"],
        tenant_id=row["tenant_id"],
        display_name=row["display_name"],
        roles=frozenset(Role(r) for r in row["roles"]),
        status=PersonStatus(row["status"]),
        firebase_uid=row["firebase_uid"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        removed_at=row["removed_at"],
        removed_by=row["removed_by"],
        seal=row["seal"],
        version=row.get("record_version", 1),
    )


def _person_json(value: dict[str, Any] | None) -> Person | None:
    """A person row that came back as ``to_jsonb`` (timestamps as ISO text)."""
    if value is None:
        return None
    for key in ("created_at", "removed_at"):
        if isinstance(value.get(key), str):
            value[key] = datetime.fromisoformat(value[key])
    return _person(value)


def _passkey(row: dict[str, Any]) -> Passkey:
    return Passkey(
        id=row["id"],
        tenant_id=row["tenant_id"],
        person_id=row["person_id"],
        public_key=bytes(row["public_key"]),
        sign_count=row["sign_count"],
        label=row["label"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        removed_at=row["removed_at"],
        seal=row.get("seal") or "",
    )


def _session(row: dict[str, Any]) -> Session:
    return Session(
        id=row["id"],
        tenant_id=row["tenant_id"],
        mac=row["mac"],
        person_id=row["person_id"],
        credential_kind=CredentialKind(row["credential_kind"]),
        credential_id=row["credential_id"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        last_seen_at=row["last_seen_at"],
        revoked_at=row["revoked_at"],
        revoked_reason=row["revoked_reason"],
        seal=row["seal"],
    )


def _token(row: dict[str, Any]) -> PersonalToken:
    return PersonalToken(
        id=row["id"],
        tenant_id=row["tenant_id"],
        person_id=row["person_id"],
        mac=row["mac"],
        label=row["label"],
        scopes=frozenset(row["scopes"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
        seal=row["seal"],
    )


def _grant(row: dict[str, Any]) -> Grant:
    return Grant(
        id=row["id"],
        tenant_id=row["tenant_id"],
        kind=GrantKind(row["kind"]),
        mac=row["mac"],
        person_id=row["person_id"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        used_at=row["used_at"],
        seal=row["seal"],
    )


def _challenge(row: dict[str, Any]) -> Challenge:
    return Challenge(
        id=row["id"],
        tenant_id=row["tenant_id"],
        purpose=row["purpose"],
        challenge=bytes(row["challenge"]),
        person_id=row["person_id"],
        grant_id=row["grant_id"],
        expires_at=row["expires_at"],
        used_at=row["used_at"],
    )


class PostgresIdentityStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    def __repr__(self) -> str:
        return f"PostgresIdentityStore({self._db.redacted_url})"

    @asynccontextmanager
    async def _tx(self, tenant_id: str, doing: str) -> AsyncIterator[Conn]:
        try:
            # the tenant scope rides the transaction's first statement (no round trip of its own)
            async with self._db.tenant_connection(tenant_id) as conn:
                yield conn
        except psycopg.Error as err:
            raise translate(err, doing) from err

    async def _one(
        self, tenant_id: str, doing: str, query: str, params: tuple[Any, ...]
    ) -> dict[str, Any] | None:
        try:
            # scope and statement in one query message and one round trip (issue 18, ADR 0018: every
            # request's credential lookup)
            rows = await self._db.tenant_statement(tenant_id, query, params)
        except psycopg.Error as err:
            raise translate(err, doing) from err
        return rows[0] if rows else None

    async def _all(
        self, tenant_id: str, doing: str, query: str, params: tuple[Any, ...]
    ) -> list[dict[str, Any]]:
        async with self._tx(tenant_id, doing) as conn:
            cursor = await conn.execute(query, params)
            return await cursor.fetchall()

    async def _run(self, tenant_id: str, doing: str, query: str, params: tuple[Any, ...]) -> int:
        async with self._tx(tenant_id, doing) as conn:
            cursor = await conn.execute(query, params)
            return cursor.rowcount

    # --- persons --------------------------------------------------------------------------------------

    async def add_person(self, person: Person) -> None:
        await self._run(
            person.tenant_id,
            "adding a staff account",
            "INSERT INTO staff_persons (tenant_id, id, display_name, roles, status, firebase_uid,"
            " created_by, created_at, removed_at, removed_by, seal, record_version)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                person.tenant_id,
                person.id,
                person.display_name,
                json.dumps(sorted(r.value for r in person.roles)),
                person.status.value,
                person.firebase_uid,
                person.created_by,
                person.created_at,
                person.removed_at,
                person.removed_by,
                person.seal,
                person.version,
            ),
        )

    async def update_person(self, person: Person) -> None:
        await self._run(
            person.tenant_id,
            "updating a staff account",
            "UPDATE staff_persons SET display_name = %s, roles = %s, status = %s, firebase_uid = %s,"
            " removed_at = %s, removed_by = %s, seal = %s, record_version = %s"
            " WHERE tenant_id = %s AND id = %s",
            (
                person.display_name,
                json.dumps(sorted(r.value for r in person.roles)),
                person.status.value,
                person.firebase_uid,
                person.removed_at,
                person.removed_by,
                person.seal,
                person.version,
                person.tenant_id,
                person.id,
            ),
        )

    async def person(self, tenant_id: str, person_id: str) -> Person | None:
        row = await self._one(
            tenant_id,
            "reading a staff account",
            "SELECT * FROM staff_persons WHERE tenant_id = %s AND id = %s",
            (tenant_id, person_id),
        )
        return None if row is None else _person(row)

    async def person_by_firebase_uid(self, tenant_id: str, uid: str) -> Person | None:
        row = await self._one(
            tenant_id,
            "reading a staff account",
            "SELECT * FROM staff_persons WHERE tenant_id = %s AND firebase_uid = %s",
            (tenant_id, uid),
        )
        return None if row is None else _person(row)

    async def persons(self, tenant_id: str) -> list[Person]:
        rows = await self._all(
            tenant_id,
            "listing staff accounts",
            "SELECT * FROM staff_persons WHERE tenant_id = %s ORDER BY created_at, id",
            (tenant_id,),
        )
        return [_person(r) for r in rows]

    # --- passkeys -------------------------------------------------------------------------------------

    async def add_passkey(self, passkey: Passkey) -> None:
        await self._run(
            passkey.tenant_id,
            "adding a passkey",
            "INSERT INTO staff_passkeys (tenant_id, id, person_id, public_key, sign_count, label,"
            " created_at, last_used_at, removed_at, seal) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                passkey.tenant_id,
                passkey.id,
                passkey.person_id,
                passkey.public_key,
                passkey.sign_count,
                passkey.label,
                passkey.created_at,
                passkey.last_used_at,
                passkey.removed_at,
                passkey.seal,
            ),
        )

    async def passkey(self, tenant_id: str, credential_id: str) -> Passkey | None:
        row = await self._one(
            tenant_id,
            "reading a passkey",
            "SELECT * FROM staff_passkeys WHERE tenant_id = %s AND id = %s",
            (tenant_id, credential_id),
        )
        return None if row is None else _passkey(row)

    async def passkeys(self, tenant_id: str, person_id: str | None = None) -> list[Passkey]:
        rows = await self._all(
            tenant_id,
            "listing passkeys",
            "SELECT * FROM staff_passkeys WHERE tenant_id = %s AND (%s::text IS NULL OR person_id = %s)"
            " ORDER BY created_at, id",
            (tenant_id, person_id, person_id),
        )
        return [_passkey(r) for r in rows]

    async def update_passkey(self, passkey: Passkey) -> None:
        await self._run(
            passkey.tenant_id,
            "updating a passkey",
            "UPDATE staff_passkeys SET sign_count = %s, label = %s, last_used_at = %s, removed_at = %s,"
            " seal = %s WHERE tenant_id = %s AND id = %s",
            (
                passkey.sign_count,
                passkey.label,
                passkey.last_used_at,
                passkey.removed_at,
                passkey.seal,
                passkey.tenant_id,
                passkey.id,
            ),
        )

    # --- sessions -------------------------------------------------------------------------------------

    async def add_session(self, session: Session) -> None:
        await self._run(
            session.tenant_id,
            "opening a session",
            "INSERT INTO staff_sessions (id, tenant_id, mac, person_id, credential_kind, credential_id,"
            " created_at, expires_at, last_seen_at, revoked_at, revoked_reason, seal)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                session.id,
                session.tenant_id,
                session.mac,
                session.person_id,
                session.credential_kind.value,
                session.credential_id,
                session.created_at,
                session.expires_at,
                session.last_seen_at,
                session.revoked_at,
                session.revoked_reason,
                session.seal,
            ),
        )

    async def session_by_mac(self, tenant_id: str, mac: str) -> Session | None:
        row = await self._one(
            tenant_id,
            "reading a session",
            "SELECT * FROM staff_sessions WHERE tenant_id = %s AND mac = %s",
            (tenant_id, mac),
        )
        return None if row is None else _session(row)

    async def session_and_person(self, tenant_id: str, mac: str) -> tuple[Session, Person | None] | None:
        # one round trip on the path every cookie request takes
        row = await self._one(
            tenant_id,
            "reading a session",
            "SELECT s.*, to_jsonb(p) AS person FROM staff_sessions s"
            " LEFT JOIN staff_persons p ON p.tenant_id = s.tenant_id AND p.id = s.person_id"
            " WHERE s.tenant_id = %s AND s.mac = %s",
            (tenant_id, mac),
        )
        if row is None:
            return None
        return _session(row), _person_json(row["person"])

    async def sessions(self, tenant_id: str, person_id: str | None = None) -> list[Session]:
        rows = await self._all(
            tenant_id,
            "listing sessions",
            "SELECT * FROM staff_sessions WHERE tenant_id = %s AND (%s::text IS NULL OR person_id = %s)"
            " ORDER BY created_at DESC, id",
            (tenant_id, person_id, person_id),
        )
        return [_session(r) for r in rows]

    async def touch_session(self, tenant_id: str, session_id: str, at: datetime) -> None:
        await self._run(
            tenant_id,
            "touching a session",
            "UPDATE staff_sessions SET last_seen_at = GREATEST(last_seen_at, %s)"
            " WHERE tenant_id = %s AND id = %s",
            (at, tenant_id, session_id),
        )

    async def update_session(self, session: Session) -> None:
        await self._run(
            session.tenant_id,
            "updating a session",
            "UPDATE staff_sessions SET revoked_at = %s, revoked_reason = %s, seal = %s"
            " WHERE tenant_id = %s AND id = %s",
            (session.revoked_at, session.revoked_reason, session.seal, session.tenant_id, session.id),
        )

    # --- personal tokens ------------------------------------------------------------------------------

    async def add_token(self, token: PersonalToken) -> None:
        await self._run(
            token.tenant_id,
            "issuing a personal token",
            "INSERT INTO personal_tokens (id, tenant_id, person_id, mac, label, scopes, created_at,"
            " expires_at, last_used_at, revoked_at, seal) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                token.id,
                token.tenant_id,
                token.person_id,
                token.mac,
                token.label,
                json.dumps(sorted(token.scopes)),
                token.created_at,
                token.expires_at,
                token.last_used_at,
                token.revoked_at,
                token.seal,
            ),
        )

    async def token_by_mac(self, tenant_id: str, mac: str) -> PersonalToken | None:
        row = await self._one(
            tenant_id,
            "reading a personal token",
            "SELECT * FROM personal_tokens WHERE tenant_id = %s AND mac = %s",
            (tenant_id, mac),
        )
        return None if row is None else _token(row)

    async def token_and_person(self, tenant_id: str, mac: str) -> tuple[PersonalToken, Person | None] | None:
        row = await self._one(
            tenant_id,
            "reading a personal token",
            "SELECT t.*, to_jsonb(p) AS person FROM personal_tokens t"
            " LEFT JOIN staff_persons p ON p.tenant_id = t.tenant_id AND p.id = t.person_id"
            " WHERE t.tenant_id = %s AND t.mac = %s",
            (tenant_id, mac),
        )
        if row is None:
            return None
        return _token(row), _person_json(row["person"])

    async def tokens(self, tenant_id: str, person_id: str | None = None) -> list[PersonalToken]:
        rows = await self._all(
            tenant_id,
            "listing personal tokens",
            "SELECT * FROM personal_tokens WHERE tenant_id = %s AND (%s::text IS NULL OR person_id = %s)"
            " ORDER BY created_at DESC, id",
            (tenant_id, person_id, person_id),
        )
        return [_token(r) for r in rows]

    async def update_token(self, token: PersonalToken) -> None:
        await self._run(
            token.tenant_id,
            "updating a personal token",
            "UPDATE personal_tokens SET last_used_at = %s, revoked_at = %s, seal = %s"
            " WHERE tenant_id = %s AND id = %s",
            (token.last_used_at, token.revoked_at, token.seal, token.tenant_id, token.id),
        )

    # --- grants and challenges --------------------------------------------------------------------------

    async def add_grant(self, grant: Grant) -> None:
        await self._run(
            grant.tenant_id,
            "creating a one-time link",
            "INSERT INTO identity_grants (id, tenant_id, kind, mac, person_id, created_by, created_at,"
            " expires_at, used_at, seal) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                grant.id,
                grant.tenant_id,
                grant.kind.value,
                grant.mac,
                grant.person_id,
                grant.created_by,
                grant.created_at,
                grant.expires_at,
                grant.used_at,
                grant.seal,
            ),
        )

    async def grant_by_mac(self, tenant_id: str, kind: GrantKind, mac: str) -> Grant | None:
        row = await self._one(
            tenant_id,
            "reading a one-time link",
            "SELECT * FROM identity_grants WHERE tenant_id = %s AND kind = %s AND mac = %s",
            (tenant_id, kind.value, mac),
        )
        return None if row is None else _grant(row)

    async def use_grant(self, tenant_id: str, grant_id: str, at: datetime) -> bool:
        changed = await self._run(
            tenant_id,
            "using a one-time link",
            "UPDATE identity_grants SET used_at = %s WHERE tenant_id = %s AND id = %s AND used_at IS NULL",
            (at, tenant_id, grant_id),
        )
        return changed == 1

    async def grants(self, tenant_id: str, person_id: str) -> list[Grant]:
        rows = await self._all(
            tenant_id,
            "listing one-time links",
            "SELECT * FROM identity_grants WHERE tenant_id = %s AND person_id = %s ORDER BY created_at DESC",
            (tenant_id, person_id),
        )
        return [_grant(r) for r in rows]

    async def add_challenge(self, challenge: Challenge) -> None:
        await self._run(
            challenge.tenant_id,
            "storing a passkey challenge",
            "INSERT INTO webauthn_challenges (id, tenant_id, purpose, challenge, person_id, grant_id,"
            " expires_at, used_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                challenge.id,
                challenge.tenant_id,
                challenge.purpose,
                challenge.challenge,
                challenge.person_id,
                challenge.grant_id,
                challenge.expires_at,
                challenge.used_at,
            ),
        )

    async def purge_challenges(self, tenant_id: str, before: datetime) -> int:
        return await self._run(
            tenant_id,
            "forgetting expired passkey challenges",
            "DELETE FROM webauthn_challenges WHERE tenant_id = %s AND expires_at < %s",
            (tenant_id, before),
        )

    async def take_challenge(self, tenant_id: str, challenge_id: str, at: datetime) -> Challenge | None:
        row = await self._one(
            tenant_id,
            "using a passkey challenge",
            "UPDATE webauthn_challenges SET used_at = %s"
            " WHERE tenant_id = %s AND id = %s AND used_at IS NULL AND expires_at > %s RETURNING *",
            (at, tenant_id, challenge_id, at),
        )
        return None if row is None else _challenge(row)
