"""Credentials of persons once they exist: server-side sessions, personal API tokens, one-time login links
and CLI login codes — issued, verified at every use, revoked. (Staff accounts and passkeys:
``services/identity.py``.)

Every secret is 256 (CLI codes: 160) random bits handed out once; the store keeps only a keyed MAC of it
and a seal over the row, so neither a database reader nor a database writer without the key in
STUDIO_BRAIN_HOME can present, mint, extend or revive one.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from studio_brain.domain.credentials import (
    PERSONAL_TOKEN_PREFIX,
    Grant,
    PersonalToken,
    Session,
)
from studio_brain.domain.errors import (
    InputInvalid,
    NotFound,
    Unauthenticated,
)
from studio_brain.domain.identity import (
    DEFAULT_PERSONAL_SCOPES,
    PERSONAL_SCOPES,
    AuthMethod,
    CredentialKind,
    GrantKind,
    Person,
    Principal,
    SessionTimes,
    break_glass_principal,
)
from studio_brain.domain.reasons import ReasonCode
from studio_brain.domain.record_ledger import GRANT, PERSONAL_TOKEN, SESSION
from studio_brain.logging import get_logger
from studio_brain.services.identity_core import IdentityCore

log = get_logger(__name__)

#: sessions are touched at most this often, so a page view is not a write every time
TOUCH_EVERY = timedelta(seconds=60)
MAX_TOKEN_LIFETIME = timedelta(days=90)
CLI_CODE_PREFIX = "sbc_"
LOGIN_LINK_PREFIX = "sbl_"


@dataclass(frozen=True, kw_only=True, slots=True)
class IssuedToken:
    """A personal token just minted: ``raw`` is shown once and never stored."""

    token: PersonalToken
    raw: str


@dataclass(frozen=True, kw_only=True, slots=True)
class OpenedSession:
    """A session just opened: ``raw`` goes into the cookie and nowhere else."""

    session: Session
    raw: str
    principal: Principal


class CredentialService:
    """Sessions, personal tokens, login links and CLI codes."""

    def __init__(
        self, core: IdentityCore, *, times: SessionTimes, login_link_ttl: timedelta, cli_code_ttl: timedelta
    ) -> None:
        self._core = core
        self.times = times
        self.login_link_ttl = login_link_ttl
        self.cli_code_ttl = cli_code_ttl

    def __repr__(self) -> str:
        return f"CredentialService(tenant_id={self._core.tenant_id!r})"

    @property
    def tenant_id(self) -> str:
        return self._core.tenant_id

    # --- sessions ---------------------------------------------------------------------------------

    async def open_session(
        self,
        person: Person | None,
        *,
        kind: CredentialKind,
        credential_id: str,
        request_id: str | None = None,
    ) -> OpenedSession:
        """A new server-side session for ``person`` (None: break-glass); audited as ``identity.session.opened``."""
        core = self._core
        raw = secrets.token_urlsafe(32)
        now = core.clock.now()
        draft = Session(
            id=core.ids.new_id(),
            tenant_id=self.tenant_id,
            mac=core.secret_mac("session", raw),
            person_id=None if person is None else person.id,
            credential_kind=kind,
            credential_id=credential_id,
            created_at=now,
            expires_at=now + self.times.lifetime,
            last_seen_at=now,
            seal="",
        )
        session = replace(draft, seal=core.seal(draft.sealed_fields()))
        await core.store.add_session(session)
        principal = self._session_principal(session, person)
        await core.audit(
            principal,
            "identity.session.opened",
            target="identity",
            rationale="signed in to the cockpit",
            details={"sessionId": session.id, "expiresAt": session.expires_at.isoformat()},
            request_id=request_id,
        )
        return OpenedSession(session=session, raw=raw, principal=principal)

    def _session_principal(self, session: Session, person: Person | None) -> Principal:
        if person is None:
            return replace(
                break_glass_principal(self.tenant_id, via=AuthMethod.SESSION),
                credential_id=session.credential_id,
            )
        return person.principal(
            via=AuthMethod.SESSION, kind=session.credential_kind, credential_id=session.credential_id
        )

    async def session(self, raw: str) -> tuple[Session, Principal] | None:
        """The live session behind a cookie value; None when unknown, ended, expired, idle or tampered."""
        core = self._core
        if not raw or len(raw) > 200:
            return None
        found = await core.store.session_and_person(self.tenant_id, core.secret_mac("session", raw))
        if found is None:
            return None
        session, row_person = found
        if await core.refused_if_tampered(
            SESSION,
            session.id,
            session.sealed_fields(),
            session.seal,
            what="session",
            ended=session.revoked_at is not None,
            action="identity.session.use",
            details={"sessionId": session.id},
        ):
            return None
        now = core.clock.now()
        if session.revoked_at is not None or not self.times.alive(
            created_at=session.created_at, last_seen_at=session.last_seen_at, now=now
        ):
            return None
        person = None
        if session.person_id is not None:
            person = await core.checked_person(row_person, session.person_id)
            if person is None:
                return None
        if now - session.last_seen_at >= TOUCH_EVERY:
            await core.store.touch_session(self.tenant_id, session.id, now)
        return session, self._session_principal(session, person)

    def form_token(self, raw: str) -> str:
        """The cockpit's per-session form (CSRF) token: a MAC of the session id under the identity key."""
        return self._core.secret_mac("csrf", raw) if raw else ""

    async def principal_for_session(self, raw: str) -> Principal | None:
        found = await self.session(raw)
        return None if found is None else found[1]

    async def _end(self, session: Session, reason: str) -> Session:
        core = self._core
        ended = replace(session, revoked_at=core.clock.now(), revoked_reason=reason[:200])
        ended = replace(ended, seal=core.seal(ended.sealed_fields()))
        await core.store.update_session(ended)
        await core.mark(core.ended_mark(SESSION, session.id))
        return ended

    async def sign_out(self, raw: str, *, request_id: str | None = None) -> bool:
        """End the session behind a cookie now (logout). False when there was no live one."""
        found = await self.session(raw)
        if found is None:
            return False
        session, principal = found
        await self._end(session, "signed out")
        await self._core.audit(
            principal,
            "identity.session.ended",
            target="identity",
            rationale="signed out",
            details={"sessionId": session.id},
            request_id=request_id,
        )
        return True

    async def sessions(self, principal: Principal, person_id: str | None = None) -> list[Session]:
        await self._require_owner_or_self(principal, person_id, "identity.session.list")
        return await self._core.store.sessions(self.tenant_id, person_id)

    async def revoke_session(self, principal: Principal, session_id: str, reason: str) -> Session:
        sessions = {s.id: s for s in await self._core.store.sessions(self.tenant_id)}
        session = sessions.get(session_id)
        if session is None:
            raise NotFound(f"no session {session_id}")
        await self._require_owner_or_self(principal, session.person_id, "identity.session.revoke")
        ended = await self._end(session, reason or "revoked")
        await self._core.audit(
            principal,
            "identity.session.revoked",
            target="identity",
            rationale=reason or "revoked",
            details={"sessionId": session_id, "personId": session.person_id},
        )
        return ended

    async def revoke_sessions_of(self, principal: Principal, person_id: str | None, reason: str) -> int:
        """End every live session of one person (``None``: every break-glass session)."""
        await self._require_owner_or_self(principal, person_id, "identity.session.revoke")
        count = 0
        for session in await self._core.store.sessions(self.tenant_id):
            if session.person_id == person_id and session.revoked_at is None:
                await self._end(session, reason)
                count += 1
        await self._core.audit(
            principal,
            "identity.sessions.revoked",
            target="identity",
            rationale=reason,
            details={"personId": person_id, "count": count},
        )
        return count

    async def _require_owner_or_self(self, principal: Principal, person_id: str | None, action: str) -> None:
        if principal.is_break_glass and person_id is None:
            return  # the break-glass operator may end break-glass sessions (never a person's)
        if principal.person_id is not None and (principal.is_owner or principal.person_id == person_id):
            return
        raise await self._core.refuse_denied(
            principal, action, ReasonCode.OWNER_REQUIRED, "this needs an owner (or yourself)"
        )

    # --- personal tokens --------------------------------------------------------------------------

    async def issue_token(
        self,
        person: Person,
        *,
        label: str,
        scopes: frozenset[str] = DEFAULT_PERSONAL_SCOPES,
        lifetime: timedelta = timedelta(days=30),
        by: Principal | None = None,
    ) -> IssuedToken:
        core = self._core
        unknown = scopes - PERSONAL_SCOPES
        if unknown or not scopes:
            raise InputInvalid(f"personal token scopes are {', '.join(sorted(PERSONAL_SCOPES))}")
        if not timedelta(minutes=1) <= lifetime <= MAX_TOKEN_LIFETIME:
            raise InputInvalid("a personal token lives between one minute and 90 days")
        raw = PERSONAL_TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = core.clock.now()
        draft = PersonalToken(
            id=core.ids.new_id(),
            tenant_id=self.tenant_id,
            person_id=person.id,
            mac=core.secret_mac("personal-token", raw),
            label=(label.strip() or "cli")[:80],
            scopes=scopes,
            created_at=now,
            expires_at=now + lifetime,
            seal="",
        )
        token = replace(draft, seal=core.seal(draft.sealed_fields()))
        await core.store.add_token(token)
        actor = by or person.principal(
            via=AuthMethod.CLI, kind=CredentialKind.PERSONAL_TOKEN, credential_id=token.id
        )
        await core.audit(
            actor,
            "identity.token.issued",
            target="identity",
            rationale=f"personal token {token.label}",
            details={
                "tokenId": token.id,
                "personId": person.id,
                "scopes": sorted(scopes),
                "expiresAt": token.expires_at.isoformat(),
            },
        )
        return IssuedToken(token=token, raw=raw)

    async def verify_token(self, raw: str) -> Principal | None:
        """The person a personal token belongs to; None when unknown, revoked, expired, tampered or removed."""
        core = self._core
        if not raw.startswith(PERSONAL_TOKEN_PREFIX) or len(raw) > 200:
            return None
        found = await core.store.token_and_person(self.tenant_id, core.secret_mac("personal-token", raw))
        if found is None:
            return None
        token, row_person = found
        if await core.refused_if_tampered(
            PERSONAL_TOKEN,
            token.id,
            token.sealed_fields(),
            token.seal,
            what="personal token",
            ended=token.revoked_at is not None,
            action="identity.token.use",
            details={"tokenId": token.id},
        ):
            return None
        now = core.clock.now()
        if not token.usable(now):
            return None
        person = await core.checked_person(row_person, token.person_id)
        if person is None:
            return None
        if token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY:
            await core.store.update_token(replace(token, last_used_at=now))
        return person.principal(
            via=AuthMethod.CLI,
            kind=CredentialKind.PERSONAL_TOKEN,
            credential_id=token.id,
            scopes=token.scopes,
        )

    async def tokens(self, principal: Principal, person_id: str | None = None) -> list[PersonalToken]:
        await self._require_owner_or_self(principal, person_id, "identity.token.list")
        return await self._core.store.tokens(self.tenant_id, person_id)

    async def _revoke(self, token: PersonalToken) -> PersonalToken:
        core = self._core
        revoked = replace(token, revoked_at=core.clock.now())
        revoked = replace(revoked, seal=core.seal(revoked.sealed_fields()))
        await core.store.update_token(revoked)
        await core.mark(core.ended_mark(PERSONAL_TOKEN, token.id))
        return revoked

    async def revoke_token(self, principal: Principal, token_id: str, reason: str) -> PersonalToken:
        token = next((t for t in await self._core.store.tokens(self.tenant_id) if t.id == token_id), None)
        if token is None:
            raise NotFound(f"no personal token {token_id}")
        await self._require_owner_or_self(principal, token.person_id, "identity.token.revoke")
        revoked = await self._revoke(token)
        await self._core.audit(
            principal,
            "identity.token.revoked",
            target="identity",
            rationale=reason or "revoked",
            details={"tokenId": token.id, "personId": token.person_id},
        )
        return revoked

    async def revoke_tokens_of(self, person_id: str) -> int:
        count = 0
        for token in await self._core.store.tokens(self.tenant_id, person_id):
            if token.revoked_at is None:
                await self._revoke(token)
                count += 1
        return count

    # --- one-time grants: login links and CLI codes ------------------------------------------------

    async def new_grant(
        self,
        kind: GrantKind,
        *,
        person_id: str | None,
        by: Principal,
        ttl: timedelta,
        prefix: str,
        size: int = 32,
    ) -> tuple[Grant, str]:
        core = self._core
        raw = prefix + secrets.token_urlsafe(size)
        now = core.clock.now()
        draft = Grant(
            id=core.ids.new_id(),
            tenant_id=self.tenant_id,
            kind=kind,
            mac=core.secret_mac(f"grant:{kind.value}", raw),
            person_id=person_id,
            created_by=by.actor_id,
            created_at=now,
            expires_at=now + ttl,
            seal="",
        )
        grant = replace(draft, seal=core.seal(draft.sealed_fields()))
        await core.store.add_grant(grant)
        return grant, raw

    async def redeem_grant(self, kind: GrantKind, raw: str, *, consume: bool = True) -> Grant | None:
        """The grant behind ``raw``, marked used (once, across restarts); None when unknown/used/expired."""
        core = self._core
        if not raw or len(raw) > 200:
            return None
        grant = await core.store.grant_by_mac(
            self.tenant_id, kind, core.secret_mac(f"grant:{kind.value}", raw)
        )
        if grant is None:
            return None
        if await core.refused_if_tampered(
            GRANT,
            grant.id,
            grant.sealed_fields(),
            grant.seal,
            what="one-time link",
            ended=grant.used_at is not None,
            action=f"identity.{kind.value}.use",
            details={"grantId": grant.id},
        ):
            return None
        now = core.clock.now()
        if grant.used_at is not None or now >= grant.expires_at:
            await core.refuse_unauthenticated(
                f"identity.{kind.value}.use",
                ReasonCode.LINK_USED if grant.used_at is not None else ReasonCode.LINK_EXPIRED,
                "the one-time link was already used"
                if grant.used_at is not None
                else "the one-time link expired",
                details={"grantId": grant.id},
            )
            return None
        if consume and not await self.use_grant(grant.id, now):
            return None
        return grant

    async def use_grant(self, grant_id: str, at: datetime) -> bool:
        """Mark a one-time grant used (the database decides a race); the ledger then keeps it used."""
        core = self._core
        if not await core.store.use_grant(self.tenant_id, grant_id, at):
            return False
        await core.mark(core.ended_mark(GRANT, grant_id))
        return True

    async def issue_login_link(self, principal: Principal) -> str:
        """A one-time, minutes-long link opening a *break-glass* cockpit session (read, invite, kill switch ON).

        Only the break-glass operator (admin token, i.e. the studio machine) creates one; persons sign in
        with their passkeys."""
        if not principal.is_break_glass:
            raise await self._core.refuse_denied(
                principal,
                "identity.login_link.create",
                ReasonCode.BREAK_GLASS_REQUIRED,
                "login links are the break-glass way in; persons sign in with a passkey",
            )
        grant, raw = await self.new_grant(
            GrantKind.LOGIN_LINK,
            person_id=None,
            by=principal,
            ttl=self.login_link_ttl,
            prefix=LOGIN_LINK_PREFIX,
        )
        await self._core.audit(
            principal,
            "identity.login_link.created",
            target="identity",
            rationale="break-glass login link",
            details={"grantId": grant.id, "expiresAt": grant.expires_at.isoformat()},
        )
        return raw

    async def redeem_login_link(self, raw: str, *, request_id: str | None = None) -> OpenedSession | None:
        grant = await self.redeem_grant(GrantKind.LOGIN_LINK, raw)
        if grant is None:
            return None
        return await self.open_session(
            None,
            kind=CredentialKind.ADMIN_TOKEN,
            credential_id=f"login-link:{grant.id}",
            request_id=request_id,
        )

    async def issue_cli_code(self, principal: Principal) -> str:
        """A one-time code the signed-in person types into ``studio-brain login`` (minutes-long)."""
        if (
            principal.person_id is None
            or principal.is_break_glass
            or principal.credential_kind is not CredentialKind.PASSKEY  # a token must not mint a wider one
        ):
            raise await self._core.refuse_denied(
                principal,
                "identity.cli_code.create",
                ReasonCode.PERSON_REQUIRED,
                "only a person signed in with a passkey gets a CLI code",
            )
        grant, raw = await self.new_grant(
            GrantKind.CLI_CODE,
            person_id=principal.person_id,
            by=principal,
            ttl=self.cli_code_ttl,
            prefix=CLI_CODE_PREFIX,
            size=20,
        )
        await self._core.audit(
            principal,
            "identity.cli_code.created",
            target="identity",
            rationale="one-time CLI login code",
            details={"grantId": grant.id},
        )
        return raw

    async def redeem_cli_code(self, code: str, *, label: str) -> IssuedToken:
        grant = await self.redeem_grant(GrantKind.CLI_CODE, code.strip())
        if grant is None or grant.person_id is None:
            raise Unauthenticated(
                "the code is unknown, expired or already used; show a new one in the cockpit",
                reason_code=ReasonCode.LOGIN_CODE_INVALID,
            )
        person = await self._core.active_person(grant.person_id)
        if person is None:
            raise Unauthenticated("this staff account is not active", reason_code=ReasonCode.PERSON_REMOVED)
        return await self.issue_token(person, label=label)
