"""What the identity services share: the store, the MAC key, sealing rows, auditing and refusing.

Every audit row an identity use case writes goes through :meth:`IdentityCore.audit` with the actor's
credential in ``metadata.credential``; refusals that name none of our records are logged, not audited.
"""

from __future__ import annotations

import hmac
from dataclasses import replace
from typing import Any

from studio_brain.domain.audit import ActorType, ApprovalState, AuditDraft
from studio_brain.domain.credentials import person_sealed_fields
from studio_brain.domain.errors import PermissionDenied, StudioBrainError, Unauthenticated
from studio_brain.domain.hashing import canonical_json, sha256_hex
from studio_brain.domain.identity import AuthMethod, Person, Principal
from studio_brain.domain.reasons import ReasonCode
from studio_brain.domain.record_ledger import PERSON, LedgerMark
from studio_brain.logging import get_logger
from studio_brain.ports import Clock, EventStore, IdFactory
from studio_brain.ports.identity import IdentityStore, SecretMac
from studio_brain.ports.record_ledger import RecordLedger
from studio_brain.services.refusal_windows import RefusalWindows

log = get_logger(__name__)


def _named_record(details: dict[str, Any] | None) -> str:
    """The record a refusal names (its id detail), for its refusal window."""
    for key in ("sessionId", "tokenId", "passkeyId", "grantId", "personId"):
        if details and details.get(key):
            return str(details[key])
    return ""


class IdentityCore:
    """What both identity services share: the store, the MAC key, sealing and auditing."""

    def __init__(
        self,
        *,
        tenant_id: str,
        store: IdentityStore,
        key: SecretMac,
        events: EventStore | None,
        clock: Clock,
        ids: IdFactory,
        ledger: RecordLedger | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.store = store
        self.key = key
        self.events = events
        self.clock = clock
        self.ids = ids
        #: what no copy of a credential row may fall below (issue 12); None only in unit tests
        self.ledger = ledger
        #: issue 12 item 8: repeated refusals become one counted row per window
        self.refusals = RefusalWindows(clock)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(tenant_id={self.tenant_id!r})"

    def secret_mac(self, purpose: str, raw: str) -> str:
        return self.key.mac(purpose, raw.encode("utf-8"))

    def seal(self, fields: dict[str, Any]) -> str:
        return self.key.mac("seal", canonical_json(fields))

    def sealed(self, fields: dict[str, Any], seal: str) -> bool:
        return hmac.compare_digest(self.seal(fields), seal)

    def seal_person(self, person: Person) -> Person:
        return replace(person, seal=self.seal(person_sealed_fields(person)))

    def tampered(
        self,
        kind: str,
        record_id: str,
        fields: dict[str, Any],
        seal: str,
        *,
        what: str,
        ended: bool,
        version: int | None = None,
    ) -> str | None:
        """Why a row cannot be trusted (None: it can): it fails its seal — written or changed outside the
        brain — or it is an older copy than the record ledger allows (an ended credential written back
        unended, a version below its floor)."""
        if not self.sealed(fields, seal):
            return f"a {what} row fails its seal"
        if self.ledger is None:
            return None
        return self.ledger.view().stale(self.tenant_id, kind, record_id, ended=ended, version=version)

    def person_tampered(self, person: Person) -> str | None:
        return self.tampered(
            PERSON,
            person.id,
            person_sealed_fields(person),
            person.seal,
            what="staff account",
            ended=False,
            version=person.version,
        )

    def person_intact(self, person: Person) -> bool:
        """Sealed by us and not an older copy written back (the record ledger's version floor)."""
        return self.person_tampered(person) is None

    async def refused_if_tampered(
        self,
        kind: str,
        record_id: str,
        fields: dict[str, Any],
        seal: str,
        *,
        what: str,
        ended: bool,
        action: str,
        details: dict[str, Any],
    ) -> bool:
        """True, after auditing RECORD_TAMPERED, when a credential row cannot be trusted (:meth:`tampered`)."""
        why = self.tampered(kind, record_id, fields, seal, what=what, ended=ended)
        if why is None:
            return False
        await self.refuse_unauthenticated(action, ReasonCode.RECORD_TAMPERED, why, details=details)
        return True

    async def mark(self, *marks: LedgerMark) -> None:
        """Raise the ledger's floors — after the database write they guard has committed."""
        if self.ledger is not None:
            await self.ledger.mark(marks)

    def ended_mark(self, kind: str, record_id: str) -> LedgerMark:
        return LedgerMark(tenant_id=self.tenant_id, kind=kind, record_id=record_id, ended=True)

    async def save_person(self, person: Person) -> Person:
        """Store a change to a staff account: the next version, sealed, then its ledger floor raised."""
        changed = self.seal_person(replace(person, version=person.version + 1))
        await self.store.update_person(changed)
        await self.mark(
            LedgerMark(tenant_id=self.tenant_id, kind=PERSON, record_id=person.id, version=changed.version)
        )
        return changed

    async def audit(
        self,
        principal: Principal | None,
        action: str,
        *,
        target: str,
        rationale: str,
        details: dict[str, Any] | None = None,
        request_id: str | None = None,
        best_effort: bool = False,
        refusal_key: tuple[str, ...] | None = None,
    ) -> None:
        """One audit row; ``details`` must never hold a secret. The credential goes in ``metadata``.

        A change that cannot be audited fails (``best_effort`` only for refusals, which stand anyway).
        ``refusal_key``: a refusal, counted in its window (issue 12 item 8: the first at once, the rest as
        one row)."""
        if self.events is None:
            return
        actor = principal or Principal(
            tenant_id=self.tenant_id, actor_type=ActorType.HUMAN, actor_id="anonymous", via=AuthMethod.SESSION
        )
        metadata: dict[str, Any] = {"credential": actor.credential(), **(details or {})}
        rid = request_id or self.ids.new_id()
        draft = AuditDraft(
            tenant_id=self.tenant_id,
            actor_type=actor.actor_type,
            actor_id=actor.actor_id,
            action=action,
            target=target,
            rationale=rationale.replace("\x00", "\ufffd")[:2000] or action,
            approval_state=ApprovalState.NOT_APPLICABLE,
            input_hash=sha256_hex({"action": action, "target": target, **(details or {})}),
            request_id=rid,
            correlation_id=rid,
            metadata=metadata,
        )
        rows = [draft]
        if refusal_key is not None:
            first, due = self.refusals.admit((actor.actor_id, *refusal_key), draft)
            rows = [*due, *([first] if first is not None else [])]
        try:
            for row in rows:
                await self.events.append(row)
        except StudioBrainError as err:
            log.warning("identity.audit.failed", action=action, error=err.message)
            if not best_effort:
                raise

    async def refuse_unauthenticated(
        self,
        action: str,
        reason_code: ReasonCode,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        audit: bool = True,
    ) -> Unauthenticated:
        """Audit a refused credential (no verified actor: the row names ``anonymous``) and return the error.

        ``audit=False`` when nothing in the attempt names one of our records: logged only (no audit flood)."""
        log.info("identity.refused", attempted=action, reason_code=reason_code)
        if not audit:
            return Unauthenticated(message, reason_code=reason_code)
        await self.audit(
            None,
            "identity.credential.refused",
            target="identity",
            rationale=message,
            details={"attempted": action, "reasonCode": reason_code.value, **(details or {})},
            best_effort=True,
            # anonymous callers: one window per attempt, reason and record named (a flood of one passkey
            # id is one counted row; a different record's refusal is its own first row)
            refusal_key=(action, reason_code.value, _named_record(details)),
        )
        return Unauthenticated(message, reason_code=reason_code)

    async def refuse_denied(
        self, principal: Principal, action: str, reason_code: ReasonCode, message: str
    ) -> PermissionDenied:
        await self.audit(
            principal,
            "identity.decision.refused",
            target="identity",
            rationale=message,
            details={"attempted": action, "reasonCode": reason_code.value},
            best_effort=True,
            refusal_key=(action, reason_code.value),
        )
        log.info("identity.refused", attempted=action, reason_code=reason_code, actor_id=principal.actor_id)
        return PermissionDenied(message, reason_code=reason_code)

    async def active_person(self, person_id: str) -> Person | None:
        """The person, when active and untampered (a tampered row is audited, then treated as absent)."""
        return await self.checked_person(await self.store.person(self.tenant_id, person_id), person_id)

    async def checked_person(self, person: Person | None, person_id: str) -> Person | None:
        """``person`` (already read), when active and untampered; a tampered row is audited."""
        if person is None:
            return None
        why = self.person_tampered(person)
        if why is not None:
            await self.refuse_unauthenticated(
                "identity.person.read", ReasonCode.RECORD_TAMPERED, why, details={"personId": person_id}
            )
            return None
        return person if person.active else None
