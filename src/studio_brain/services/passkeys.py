"""Passkey ceremonies (WebAuthn): enrolment from a one-time invite or by a signed-in person, sign-in,
removal. The ``webauthn`` library (``adapters/webauthn.py``) checks challenge, origin, RP id, signature and
sign counter; this service stores each challenge and lets it be used once, and audits every refusal that
concerns one of this studio's passkeys (a replayed or cloned assertion, a phishing origin) before refusing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from studio_brain.domain.credentials import Challenge, Passkey
from studio_brain.domain.errors import NotFound, Unauthenticated
from studio_brain.domain.identity import (
    AuthMethod,
    CredentialKind,
    GrantKind,
    Person,
    PersonStatus,
    Principal,
)
from studio_brain.domain.reasons import ReasonCode
from studio_brain.domain.record_ledger import PASSKEY
from studio_brain.ports.identity import PasskeyVerifier
from studio_brain.services.credentials import CredentialService, OpenedSession
from studio_brain.services.identity_core import IdentityCore

CHALLENGE_TTL = timedelta(minutes=5)
MAX_PASSKEY_LABEL = 60


@dataclass(frozen=True, kw_only=True, slots=True)
class Ceremony:
    """A WebAuthn ceremony begun: the browser gets ``options`` and sends back ``challenge_id``."""

    challenge_id: str
    options: str
    person: Person | None = None


class PasskeyService:
    """The passkeys of one tenant's persons."""

    def __init__(
        self, core: IdentityCore, *, credentials: CredentialService, verifier: PasskeyVerifier
    ) -> None:
        self._core = core
        self._credentials = credentials
        self._verifier = verifier

    def __repr__(self) -> str:
        return f"PasskeyService(tenant_id={self._core.tenant_id!r})"

    @property
    def tenant_id(self) -> str:
        return self._core.tenant_id

    async def passkeys_of(self, person_id: str) -> list[Passkey]:
        return [k for k in await self._core.store.passkeys(self.tenant_id, person_id) if k.removed_at is None]

    # --- passkeys: enrolment --------------------------------------------------------------------------

    async def _challenge(self, purpose: str, *, person_id: str | None, grant_id: str | None) -> Challenge:
        core = self._core
        # challenges are cheap to ask for (the sign-in page is public): forget expired ones as we go
        await core.store.purge_challenges(self.tenant_id, core.clock.now())
        challenge = Challenge(
            id=core.ids.new_id(),
            tenant_id=self.tenant_id,
            purpose=purpose,
            challenge=secrets.token_bytes(32),
            person_id=person_id,
            grant_id=grant_id,
            expires_at=core.clock.now() + CHALLENGE_TTL,
        )
        await core.store.add_challenge(challenge)
        return challenge

    async def invited_person(self, raw_invite: str) -> Person | None:
        """Who an invite is for, without using it (the enrolment page greets them by name)."""
        grant = await self._credentials.redeem_grant(GrantKind.INVITE, raw_invite, consume=False)
        if grant is None or grant.person_id is None:
            return None
        person = await self._core.store.person(self.tenant_id, grant.person_id)
        if person is None or person.status is PersonStatus.REMOVED or not self._core.person_intact(person):
            return None
        return person

    async def begin_enrolment(self, raw_invite: str) -> Ceremony:
        grant = await self._credentials.redeem_grant(GrantKind.INVITE, raw_invite, consume=False)
        person = await self.invited_person(raw_invite) if grant is not None else None
        if grant is None or person is None:
            raise Unauthenticated(
                "this invite is unknown, expired or already used", reason_code=ReasonCode.INVITE_INVALID
            )
        return await self._registration(person, grant_id=grant.id)

    async def begin_adding_passkey(self, principal: Principal) -> Ceremony:
        """A signed-in person registers another passkey (several per person)."""
        if principal.person_id is None or principal.is_break_glass:
            raise await self._core.refuse_denied(
                principal,
                "identity.passkey.add",
                ReasonCode.PERSON_REQUIRED,
                "only a signed-in person adds a passkey",
            )
        person = await self._core.active_person(principal.person_id)
        if person is None:
            raise Unauthenticated("this staff account is not active", reason_code=ReasonCode.PERSON_REMOVED)
        return await self._registration(person, grant_id=None)

    async def _registration(self, person: Person, *, grant_id: str | None) -> Ceremony:
        challenge = await self._challenge("register", person_id=person.id, grant_id=grant_id)
        options = self._verifier.registration_options(
            challenge=challenge.challenge,
            user_id=person.id,
            user_name=person.display_name,
            exclude=[k.id for k in await self.passkeys_of(person.id)],
        )
        return Ceremony(challenge_id=challenge.id, options=options, person=person)

    async def finish_registration(
        self, challenge_id: str, response: str, *, label: str = "", principal: Principal | None = None
    ) -> tuple[Passkey, OpenedSession | None]:
        """Verify and store the new passkey. From an invite: the invite is used, the person becomes active
        and a session opens. From a signed-in person: ``principal`` must be that person."""
        core = self._core
        challenge = await core.store.take_challenge(self.tenant_id, challenge_id, core.clock.now())
        if challenge is None or challenge.purpose != "register" or challenge.person_id is None:
            raise await core.refuse_unauthenticated(
                "identity.passkey.enrol",
                ReasonCode.WEBAUTHN_CHALLENGE_REPLAYED,
                "this passkey challenge is unknown, expired or was used already; start again",
                audit=False,  # names none of our records: logged, not audited
            )
        if challenge.grant_id is None and (principal is None or principal.person_id != challenge.person_id):
            raise await core.refuse_unauthenticated(
                "identity.passkey.enrol",
                ReasonCode.WEBAUTHN_CHALLENGE_MISMATCH,
                "this challenge belongs to another person",
            )
        person = await core.store.person(self.tenant_id, challenge.person_id)
        if person is None or person.status is PersonStatus.REMOVED or not core.person_intact(person):
            raise await core.refuse_unauthenticated(
                "identity.passkey.enrol", ReasonCode.PERSON_REMOVED, "this staff account is not active"
            )
        try:
            registered = self._verifier.verify_registration(response=response, challenge=challenge.challenge)
        except Unauthenticated as err:
            raise await core.refuse_unauthenticated(
                "identity.passkey.enrol", err.reason_code, err.message, details={"personId": person.id}
            ) from err
        if challenge.grant_id is not None and not await self._credentials.use_grant(
            challenge.grant_id, core.clock.now()
        ):
            raise await core.refuse_unauthenticated(
                "identity.passkey.enrol",
                ReasonCode.INVITE_INVALID,
                "this invite was used already",
                details={"personId": person.id},
            )
        if await core.store.passkey(self.tenant_id, registered.credential_id) is not None:
            raise await core.refuse_unauthenticated(
                "identity.passkey.enrol",
                ReasonCode.PASSKEY_ALREADY_REGISTERED,
                "this passkey is registered already",
            )
        now = core.clock.now()
        passkey = Passkey(
            id=registered.credential_id,
            tenant_id=self.tenant_id,
            person_id=person.id,
            public_key=registered.public_key,
            sign_count=registered.sign_count,
            label=(" ".join(label.split())[:MAX_PASSKEY_LABEL] or "passkey"),
            created_at=now,
        )
        passkey = replace(passkey, seal=core.seal(passkey.sealed_fields()))
        await core.store.add_passkey(passkey)
        if person.status is PersonStatus.INVITED:
            person = await core.save_person(replace(person, status=PersonStatus.ACTIVE))
        actor = person.principal(
            via=AuthMethod.SESSION, kind=CredentialKind.PASSKEY, credential_id=passkey.id
        )
        await core.audit(
            actor,
            "identity.passkey.enrolled",
            target="identity",
            rationale=f"passkey {passkey.label}",
            details={
                "personId": person.id,
                "passkeyId": passkey.id,
                "viaInvite": challenge.grant_id is not None,
            },
        )
        opened = None
        if challenge.grant_id is not None:
            opened = await self._credentials.open_session(
                person, kind=CredentialKind.PASSKEY, credential_id=passkey.id
            )
        return passkey, opened

    async def remove_passkey(self, principal: Principal, passkey_id: str, reason: str) -> Passkey:
        """An owner, or the person themself, removes one passkey (sessions it opened end too)."""
        core = self._core
        passkey = await core.store.passkey(self.tenant_id, passkey_id)
        if passkey is None or passkey.removed_at is not None:
            raise NotFound(f"no passkey {passkey_id}")
        if not (principal.person_id == passkey.person_id or (principal.is_owner and principal.person_id)):
            raise await core.refuse_denied(
                principal,
                "identity.passkey.remove",
                ReasonCode.OWNER_REQUIRED,
                "only an owner or its person removes a passkey",
            )
        removed = await self.store_removed(passkey, core.clock.now())
        for session in await core.store.sessions(self.tenant_id, passkey.person_id):
            if session.credential_id == passkey.id and session.revoked_at is None:
                await self._credentials.revoke_session(principal, session.id, "passkey removed")
        await core.audit(
            principal,
            "identity.passkey.removed",
            target="identity",
            rationale=reason or "removed",
            details={"personId": passkey.person_id, "passkeyId": passkey.id},
        )
        return removed

    async def store_removed(self, passkey: Passkey, at: datetime) -> Passkey:
        """Store a passkey's removal, sealed; the record ledger then keeps it removed."""
        core = self._core
        removed = replace(passkey, removed_at=at)
        removed = replace(removed, seal=core.seal(removed.sealed_fields()))
        await core.store.update_passkey(removed)
        await core.mark(core.ended_mark(PASSKEY, passkey.id))
        return removed

    # --- passkeys: sign-in ----------------------------------------------------------------------------

    async def begin_sign_in(self) -> Ceremony:
        """A challenge for any of this studio's passkeys (discoverable credentials: no user name asked)."""
        challenge = await self._challenge("authenticate", person_id=None, grant_id=None)
        return Ceremony(
            challenge_id=challenge.id,
            options=self._verifier.authentication_options(challenge=challenge.challenge, allow=[]),
        )

    async def finish_sign_in(
        self, challenge_id: str, response: str, *, request_id: str | None = None
    ) -> OpenedSession:
        core = self._core
        # Refusals are audited when they concern one of this studio's passkeys (a replayed or cloned
        # assertion, a phishing origin); a response naming no registered passkey is only logged, so an
        # anonymous caller cannot fill the audit log with garbage.
        credential_id = self._verifier.credential_id_of(response)
        passkey = await core.store.passkey(self.tenant_id, credential_id)
        challenge = await core.store.take_challenge(self.tenant_id, challenge_id, core.clock.now())
        if passkey is None or passkey.removed_at is not None:
            raise await core.refuse_unauthenticated(
                "identity.sign_in",
                ReasonCode.PASSKEY_UNKNOWN,
                "this passkey is not registered here (or was removed)",
                audit=False,
            )
        # a passkey row the brain did not write — a key added to someone's account, a key moved to
        # another person, a removed key written back — signs no one in (issue 12)
        if not passkey.seal:
            tampered: str | None = (
                "this passkey has no seal: enrolled before passkeys were sealed (migration 0016) or added"
                " outside the brain; enrol it again from a new invite"
            )
        else:
            tampered = core.tampered(
                PASSKEY, passkey.id, passkey.sealed_fields(), passkey.seal, what="passkey", ended=False
            )
        if tampered is not None:
            raise await core.refuse_unauthenticated(
                "identity.sign_in",
                ReasonCode.RECORD_TAMPERED,
                tampered,
                details={"passkeyId": passkey.id, "personId": passkey.person_id},
            )
        if challenge is None or challenge.purpose != "authenticate":
            raise await core.refuse_unauthenticated(
                "identity.sign_in",
                ReasonCode.WEBAUTHN_CHALLENGE_REPLAYED,
                "this sign-in challenge is unknown, expired or was used already; start again",
                details={"passkeyId": passkey.id, "personId": passkey.person_id},
            )
        person = await core.active_person(passkey.person_id)
        if person is None:
            raise await core.refuse_unauthenticated(
                "identity.sign_in",
                ReasonCode.PERSON_REMOVED,
                "this staff account is not active",
                details={"passkeyId": passkey.id, "personId": passkey.person_id},
            )
        try:
            asserted = self._verifier.verify_authentication(
                response=response,
                challenge=challenge.challenge,
                public_key=passkey.public_key,
                sign_count=passkey.sign_count,
            )
        except Unauthenticated as err:
            raise await core.refuse_unauthenticated(
                "identity.sign_in",
                err.reason_code,
                err.message,
                details={
                    "passkeyId": passkey.id,
                    "personId": person.id,
                    "storedSignCount": passkey.sign_count,
                },
            ) from err
        # the counter and last use are not sealed (Passkey.sealed_fields says why): the seal stays valid
        await core.store.update_passkey(
            replace(passkey, sign_count=asserted.new_sign_count, last_used_at=core.clock.now())
        )
        return await self._credentials.open_session(
            person, kind=CredentialKind.PASSKEY, credential_id=passkey.id, request_id=request_id
        )
