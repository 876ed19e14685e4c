"""Staff accounts: the first owner, invites, roles, removal, and the Firebase link that makes a Portal user
and a cockpit user one person — the use cases the web and CLI call (passkey ceremonies delegated).

Owners manage staff; the break-glass admin token may create the first owner and issue invites. Every
change is audited with the actor's credential. Passkey ceremonies live in ``services/passkeys.py``;
sessions, tokens and one-time links in ``services/credentials.py``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import timedelta

from studio_brain.domain.credentials import Passkey, PersonalToken, Session
from studio_brain.domain.errors import InputInvalid, NotFound
from studio_brain.domain.identity import (
    PERSON_ID_PREFIX,
    RESERVED_ACTOR_IDS,
    AuthMethod,
    CredentialKind,
    GrantKind,
    Person,
    PersonStatus,
    Principal,
    Role,
    clean_display_name,
    may_manage_staff,
    parse_roles,
    person_id_for,
)
from studio_brain.domain.reasons import ReasonCode
from studio_brain.logging import get_logger
from studio_brain.ports.identity import PasskeyVerifier
from studio_brain.services.credentials import CredentialService, OpenedSession
from studio_brain.services.identity_core import IdentityCore
from studio_brain.services.passkeys import Ceremony, PasskeyService

log = get_logger(__name__)

INVITE_PREFIX = "sbi_"


@dataclass(frozen=True, kw_only=True, slots=True)
class Invitation:
    """An invite just created: ``raw`` is the one-time enrolment secret (shown once, as a link)."""

    person: Person
    raw: str
    expires_in_minutes: int

    def url(self, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/enrol?invite={self.raw}"


class IdentityService:
    """Persons and passkeys of one tenant. ``credentials`` holds their sessions and tokens."""

    def __init__(
        self,
        core: IdentityCore,
        *,
        credentials: CredentialService,
        passkeys: PasskeyVerifier,
        invite_ttl: timedelta,
    ) -> None:
        self._core = core
        self.credentials = credentials
        self.ceremonies = PasskeyService(core, credentials=credentials, verifier=passkeys)
        self.invite_ttl = invite_ttl

    def __repr__(self) -> str:
        return f"IdentityService(tenant_id={self._core.tenant_id!r})"

    @property
    def tenant_id(self) -> str:
        return self._core.tenant_id

    # --- reading --------------------------------------------------------------------------------------

    async def persons(self) -> list[Person]:
        return await self._core.store.persons(self.tenant_id)

    async def person(self, person_id: str) -> Person:
        found = await self._core.store.person(self.tenant_id, person_id)
        if found is None:
            raise NotFound(f"no staff account {person_id}")
        return found

    async def person_or_none(self, person_id: str) -> Person | None:
        return await self._core.store.person(self.tenant_id, person_id)

    async def all_sessions(self) -> list[Session]:
        """Every session of the tenant (the Staff page; callers check the viewer is an owner)."""
        return await self._core.store.sessions(self.tenant_id)

    async def all_tokens(self) -> list[PersonalToken]:
        return await self._core.store.tokens(self.tenant_id)

    async def owners_exist(self) -> bool:
        return any(p.is_owner and p.status is not PersonStatus.REMOVED for p in await self.persons())

    async def passkeys_of(self, person_id: str) -> list[Passkey]:
        return await self.ceremonies.passkeys_of(person_id)

    # --- staff accounts -------------------------------------------------------------------------------

    async def _check(self, principal: Principal, action: str) -> None:
        refusal = may_manage_staff(principal, action=action, owners_exist=await self.owners_exist())
        if refusal is not None:
            words = {
                ReasonCode.OWNER_REQUIRED: "only an owner manages staff accounts",
                ReasonCode.BREAK_GLASS_NOT_ALLOWED: "the admin token may only create the first owner and "
                "issue invites",
                ReasonCode.FIRST_OWNER_EXISTS: "an owner exists already; ask them to invite you",
            }.get(refusal, refusal.value)
            raise await self._core.refuse_denied(principal, f"identity.{action}", refusal, words)

    async def create_first_owner(self, principal: Principal, name: str) -> Invitation:
        """The break-glass way to start: an owner account and its enrolment invite. Refused once one exists."""
        await self._check(principal, "create_first_owner")
        return await self._new_person(principal, name, frozenset({Role.OWNER, Role.STAFF}))

    async def invite(self, principal: Principal, name: str, roles: list[str]) -> Invitation:
        """A new person (``invited``) and a one-time, short-lived enrolment invite. Owners (or break-glass)."""
        await self._check(principal, "invite")
        try:
            parsed = parse_roles(roles)
        except ValueError as err:
            raise InputInvalid(str(err)) from None
        if Role.OWNER in parsed and principal.is_break_glass and await self.owners_exist():
            raise await self._core.refuse_denied(
                principal,
                "identity.invite",
                ReasonCode.OWNER_REQUIRED,
                "only an owner invites another owner",
            )
        return await self._new_person(principal, name, parsed)

    async def _new_person(self, principal: Principal, name: str, roles: frozenset[Role]) -> Invitation:
        try:
            display = clean_display_name(name)
        except ValueError as err:
            raise InputInvalid(f"name: {err}") from None
        core = self._core
        person = core.seal_person(
            Person(
                id=person_id_for(display, secrets.token_hex(3)),
                tenant_id=self.tenant_id,
                display_name=display,
                roles=roles,
                status=PersonStatus.INVITED,
                created_by=principal.actor_id,
                created_at=core.clock.now(),
            )
        )
        await core.store.add_person(person)
        await core.audit(
            principal,
            "identity.person.created",
            target="identity",
            rationale=f"staff account for {display}",
            details={"personId": person.id, "roles": sorted(r.value for r in roles)},
        )
        return await self._invite_for(principal, person)

    async def _invite_for(self, principal: Principal, person: Person) -> Invitation:
        grant, raw = await self.credentials.new_grant(
            GrantKind.INVITE, person_id=person.id, by=principal, ttl=self.invite_ttl, prefix=INVITE_PREFIX
        )
        await self._core.audit(
            principal,
            "identity.invite.created",
            target="identity",
            rationale=f"enrolment invite for {person.display_name}",
            details={"personId": person.id, "grantId": grant.id, "expiresAt": grant.expires_at.isoformat()},
        )
        return Invitation(
            person=person, raw=raw, expires_in_minutes=int(self.invite_ttl.total_seconds() // 60)
        )

    async def reinvite(self, principal: Principal, person_id: str) -> Invitation:
        """A new enrolment invite for an existing person (a new device, a lost passkey)."""
        await self._check(principal, "invite")
        person = await self.person(person_id)
        if person.status is PersonStatus.REMOVED:
            raise InputInvalid(f"{person.display_name} was removed; invite them as a new person")
        return await self._invite_for(principal, person)

    async def set_roles(self, principal: Principal, person_id: str, roles: list[str]) -> Person:
        await self._check(principal, "set_roles")
        person = await self.person(person_id)
        try:
            parsed = parse_roles(roles)
        except ValueError as err:
            raise InputInvalid(str(err)) from None
        if person.is_owner and Role.OWNER not in parsed and await self._last_owner(person):
            raise await self._core.refuse_denied(
                principal, "identity.set_roles", ReasonCode.LAST_OWNER, "the studio keeps one owner at least"
            )
        changed = await self._core.save_person(replace(person, roles=parsed))
        await self._core.audit(
            principal,
            "identity.person.roles_changed",
            target="identity",
            rationale=f"roles of {person.display_name}",
            details={
                "personId": person.id,
                "roles": sorted(r.value for r in parsed),
                "before": sorted(r.value for r in person.roles),
            },
        )
        return changed

    async def _last_owner(self, person: Person) -> bool:
        owners = [p for p in await self.persons() if p.is_owner and p.status is PersonStatus.ACTIVE]
        return [p.id for p in owners] == [person.id]

    async def remove(self, principal: Principal, person_id: str, reason: str) -> Person:
        """Remove a person: their sessions and tokens end at once, their passkeys stop working."""
        await self._check(principal, "remove")
        person = await self.person(person_id)
        if person.is_owner and await self._last_owner(person):
            raise await self._core.refuse_denied(
                principal, "identity.remove", ReasonCode.LAST_OWNER, "the studio keeps one owner at least"
            )
        core = self._core
        now = core.clock.now()
        removed = await core.save_person(
            replace(person, status=PersonStatus.REMOVED, removed_at=now, removed_by=principal.actor_id)
        )
        sessions = await self.credentials.revoke_sessions_of(principal, person.id, "staff account removed")
        tokens = await self.credentials.revoke_tokens_of(person.id)
        for key in await self.passkeys_of(person.id):
            if key.removed_at is None:
                await self.ceremonies.store_removed(key, now)
        await core.audit(
            principal,
            "identity.person.removed",
            target="identity",
            rationale=reason or "removed",
            details={"personId": person.id, "sessionsEnded": sessions, "tokensRevoked": tokens},
        )
        log.warning("identity.person.removed", person_id=person.id, sessions=sessions, tokens=tokens)
        return removed

    async def link_firebase(self, principal: Principal, person_id: str, uid: str | None) -> Person:
        """Link (or with ``None`` unlink) the person's Firebase uid: Portal and cockpit are then one person."""
        await self._check(principal, "link_firebase")
        person = await self.person(person_id)
        clean = None if uid is None else uid.strip()
        if clean is not None and (not clean or len(clean) > 128 or not clean.isprintable()):
            raise InputInvalid("a Firebase uid is 1..128 printable characters")
        if clean is not None:
            other = await self._core.store.person_by_firebase_uid(self.tenant_id, clean)
            if other is not None and other.id != person.id:
                raise InputInvalid(f"that Firebase uid is linked to {other.display_name} already")
        changed = await self._core.save_person(replace(person, firebase_uid=clean))
        await self._core.audit(
            principal,
            "identity.person.firebase_linked",
            target="identity",
            rationale=f"Firebase link of {person.display_name}",
            details={"personId": person.id, "firebaseUid": clean},
        )
        return changed

    async def firebase_principal(self, verified: Principal) -> Principal:
        """A verified Firebase principal as the person it is linked to (roles from the staff account);
        unlinked, the Firebase account is its own person (the Portal path keeps working)."""
        uid = verified.actor_id
        person = await self._core.store.person_by_firebase_uid(self.tenant_id, uid)
        if person is None:
            if uid.startswith(PERSON_ID_PREFIX) or uid in RESERVED_ACTOR_IDS:
                # an unlinked uid shaped like one of our ids would approve *as* that person (or as the
                # brain): whoever can choose Firebase uids must not be able to choose ours
                raise await self._core.refuse_unauthenticated(
                    "identity.firebase.use",
                    ReasonCode.AUTH_TOKEN_INVALID,
                    "this Firebase uid looks like a Studio Brain id; an owner must link it to a staff account",
                    details={"firebaseUid": uid[:128]},
                )
            return replace(
                verified, person_id=uid, credential_kind=CredentialKind.FIREBASE, credential_id=uid
            )
        if not self._core.person_intact(person) or not person.active:
            raise await self._core.refuse_unauthenticated(
                "identity.firebase.use",
                ReasonCode.PERSON_REMOVED,
                "this Firebase account's staff account is not active",
                details={"personId": person.id},
            )
        return person.principal(via=AuthMethod.FIREBASE, kind=CredentialKind.FIREBASE, credential_id=uid)

    # --- passkeys (services/passkeys.py) ---------------------------------------------------------------

    async def invited_person(self, raw_invite: str) -> Person | None:
        return await self.ceremonies.invited_person(raw_invite)

    async def begin_enrolment(self, raw_invite: str) -> Ceremony:
        return await self.ceremonies.begin_enrolment(raw_invite)

    async def begin_adding_passkey(self, principal: Principal) -> Ceremony:
        return await self.ceremonies.begin_adding_passkey(principal)

    async def finish_registration(
        self, challenge_id: str, response: str, *, label: str = "", principal: Principal | None = None
    ) -> tuple[Passkey, OpenedSession | None]:
        return await self.ceremonies.finish_registration(
            challenge_id, response, label=label, principal=principal
        )

    async def remove_passkey(self, principal: Principal, passkey_id: str, reason: str) -> Passkey:
        return await self.ceremonies.remove_passkey(principal, passkey_id, reason)

    async def begin_sign_in(self) -> Ceremony:
        return await self.ceremonies.begin_sign_in()

    async def finish_sign_in(
        self, challenge_id: str, response: str, *, request_id: str | None = None
    ) -> OpenedSession:
        return await self.ceremonies.finish_sign_in(challenge_id, response, request_id=request_id)
