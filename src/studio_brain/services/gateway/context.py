"""What every part of the gateway shares: its collaborators (:class:`GatewayContext`), the subject of an
audit row, drafting audit rows, auditing a refusal, the fail-closed kill switch read and cross-tenant
detection. The parts (proposals, execution, admin, agent tokens, rebuild) are each given one context."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from typing import Any, NoReturn

from studio_brain.domain.audit import AuditDraft
from studio_brain.domain.capabilities import Registry
from studio_brain.domain.errors import InputInvalid, NotFound, PolicyRefused, StorageError
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.identity import Principal
from studio_brain.domain.policy import Decision, KillSwitch, ReasonCode, kill_switch_from, refuse
from studio_brain.domain.proposals import Approval, Proposal, to_record
from studio_brain.domain.records import Keyring
from studio_brain.logging import get_logger
from studio_brain.ports.audit import EventStore
from studio_brain.ports.clock import Clock, IdFactory
from studio_brain.ports.gateway import ConnectorDirectory, GatewayStore, GatewayTransaction
from studio_brain.ports.journal import ExecutionJournal
from studio_brain.services.refusal_windows import RefusalWindows

log = get_logger(__name__)

MAX_PAGE = 500


def check_page(limit: int) -> None:
    """Refuse a page size outside 1..MAX_PAGE (every listing of the gateway)."""
    if not 1 <= limit <= MAX_PAGE:
        raise InputInvalid(f"limit must be between 1 and {MAX_PAGE}")


class NotVisible(Exception):
    """Internal: the proposal is not visible in the caller's tenant (resolved by ``missing``)."""


class Refusal(Exception):
    """Internal: leaves a transaction (rolling it back) carrying the decision to audit."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.detail)
        self.decision = decision


@dataclass(frozen=True, kw_only=True, slots=True)
class Subject:
    """What an audit row about a decision names."""

    action: str
    capability_id: str | None
    target: str
    input_hash: str
    correlation_id: str
    request_id: str
    proposal_id: str | None = None
    rationale: str = ""


def _new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(kw_only=True, slots=True)
class GatewayContext:
    """The collaborators of the gateway's parts, and the audit/refusal helpers they share."""

    store: GatewayStore
    registry: Registry
    connectors: ConnectorDirectory
    clock: Clock
    ids: IdFactory
    #: the tenant whose transaction looks agent tokens up (tokens name their own tenant)
    tenant_id: str
    events: EventStore | None = None
    token_source: Callable[[], str] = _new_token
    #: the studio's timezone: write windows (``allowedHours``) and the daily cloud-write budget are local
    zone: tzinfo = UTC
    #: issue 13: device outcomes kept on local disk until the database has them (None: memory only)
    journal: ExecutionJournal | None = None
    #: issue 13: how long an execution keeps retrying to record its outcome before it answers 503
    #: (the outcome then waits in the journal for the recovery job)
    outcome_retry_seconds: float = 30.0
    #: issue 12: the brain's MAC keys; approvals bind with an HMAC (None: plain SHA-256, tests)
    keyring: Keyring | None = None
    #: targets some capability keeps a cooldown on: only these need their last start recorded
    cooled_targets: frozenset[str] = field(init=False)
    #: issue 12 item 8: one caller's repeated refusals become one counted row per window
    refusals: RefusalWindows = field(init=False)

    def __post_init__(self) -> None:
        self.cooled_targets = frozenset(
            c.target.value for c in self.registry.capabilities.values() if c.cooldown_seconds
        )
        self.refusals = RefusalWindows(self.clock)

    # --- approval bindings (keyed, issue 12) ---------------------------------------------------------

    def binding(self, proposal: Proposal) -> str:
        """What an approval of ``proposal`` binds to now (keyed with the current key)."""
        return proposal.binding(None if self.keyring is None else self.keyring.current)

    def binding_to_check(self, proposal: Proposal, approvals: tuple[Approval, ...]) -> str:
        """``proposal``'s binding under the key its approvals were made with (any key of the keyring, so a
        key rotation does not void pending approvals); the current key's when none matches."""
        if self.keyring is not None and approvals:
            for key_id in self.keyring.key_ids:
                candidate = proposal.binding(self.keyring.keys[key_id])
                if all(a.binding == candidate for a in approvals):
                    return candidate
        return self.binding(proposal)

    # --- audit helpers -------------------------------------------------------------------------------

    def draft(
        self,
        principal: Principal,
        subject: Subject,
        decision: Decision,
        *,
        action: str | None = None,
        proposal: Proposal | None = None,
        output_hash: str | None = None,
        extra: dict[str, Any] | None = None,
        tenant_id: str | None = None,
    ) -> AuditDraft:
        """The audit row about ``decision`` on ``subject`` (the proposal's newest record travels in it)."""
        metadata: dict[str, Any] = {
            "decision": decision.as_json(),
            "attempted": subject.action,
            # issue 11: how the actor authenticated (credential kind and id, never the secret)
            "credential": principal.credential(),
        }
        if subject.proposal_id is not None:
            metadata["proposalId"] = subject.proposal_id
        if proposal is not None:
            metadata["proposal"] = to_record(proposal)
        if extra:
            metadata.update(extra)
        return AuditDraft(
            tenant_id=tenant_id or principal.tenant_id,
            actor_type=principal.actor_type,
            actor_id=principal.actor_id,
            action=action or subject.action,
            target=subject.target,
            # a NUL cannot be stored; the refusal is still audited, with the character replaced
            rationale=(subject.rationale.strip() or decision.detail or subject.action).replace(
                "\x00", "\ufffd"
            ),
            approval_state=decision.approval_state,
            input_hash=subject.input_hash,
            request_id=subject.request_id,
            correlation_id=subject.correlation_id,
            capability_id=subject.capability_id,
            output_hash=output_hash,
            metadata=metadata,
        )

    async def audit_refusal(
        self, principal: Principal, subject: Subject, decision: Decision, *, tenant_id: str | None = None
    ) -> NoReturn:
        """Audit a refusal in its own transaction, then raise ``PolicyRefused`` with its reason code.

        The first refusal per caller, attempted action and reason code in a window is audited at once; the
        rest of the window are counted into one row (:mod:`~studio_brain.services.refusal_windows`)."""
        draft = self.draft(
            principal, subject, decision, action="capability.decision.refused", tenant_id=tenant_id
        )
        await self.audit_refused(
            draft,
            attempted=subject.action,
            reason=decision.reason_code,
            sample=subject.proposal_id or subject.capability_id or subject.target,
        )
        log.info(
            "capability.refused",
            reason_code=decision.reason_code.value,
            attempted=subject.action,
            capability_id=subject.capability_id,
            proposal_id=subject.proposal_id,
            actor_id=principal.actor_id,
            tenant_id=principal.tenant_id,
        )
        raise PolicyRefused(decision.reason_code, decision.detail)

    async def audit_refused(
        self, draft: AuditDraft, *, attempted: str, reason: ReasonCode, sample: str = ""
    ) -> None:
        """Audit the refusal row ``draft`` through the refusal windows: written now when it opens its
        window (per tenant of the row, actor, attempted action and reason), else counted into one row."""
        key = (draft.tenant_id, draft.actor_type, draft.actor_id, attempted, reason)
        first, due = self.refusals.admit(key, draft, sample=sample)
        await self.write_refusals([*due, *([first] if first is not None else [])])

    async def write_refusals(self, drafts: list[AuditDraft]) -> None:
        """Audit refusal rows, one transaction per tenant (closed windows may be another tenant's)."""
        for tenant in dict.fromkeys(d.tenant_id for d in drafts):
            async with self.store.transaction(tenant) as tx:
                for row in drafts:
                    if row.tenant_id == tenant:
                        await tx.audit(row)

    async def flush_refusals(self) -> None:
        """Audit the counts of every open refusal window now (at shutdown, and in tests)."""
        await self.write_refusals(self.refusals.drain())

    async def kill(self, tx: GatewayTransaction) -> KillSwitch:
        """The kill switch as stored; an unreadable switch counts as on (fail closed)."""
        try:
            entries = await tx.kill_switch_entries()
        except StorageError:
            log.warning("capability.killswitch.unreadable")
            return KillSwitch(unreadable=True)
        return kill_switch_from({e.scope: e.enabled for e in entries})

    def subject(
        self,
        action: str,
        proposal: Proposal,
        *,
        request_id: str | None,
        rationale: str = "",
    ) -> Subject:
        return Subject(
            action=action,
            capability_id=proposal.capability_id,
            target=proposal.target,
            input_hash=proposal.input_hash,
            correlation_id=proposal.correlation_id,
            request_id=request_id or self.ids.new_id(),
            proposal_id=proposal.id,
            rationale=rationale,
        )

    def staff_subject(
        self, action: str, inputs: dict[str, Any], rationale: str, *, capability_id: str | None = None
    ) -> Subject:
        """The subject of an administrative act on the gateway itself (fresh correlation/request ids)."""
        return Subject(
            action=action,
            capability_id=capability_id,
            target="gateway",
            input_hash=sha256_hex(inputs),
            correlation_id=self.ids.new_id(),
            request_id=self.ids.new_id(),
            rationale=rationale,
        )

    async def missing(
        self, principal: Principal, proposal_id: str, action: str, request_id: str | None
    ) -> NoReturn:
        """Not visible in the caller's tenant: TENANT_MISMATCH (audited in both tenants) or NotFound."""
        owner = await self.store.proposal_tenant(proposal_id)
        if owner is None or owner == principal.tenant_id:
            raise NotFound(f"no proposal {proposal_id}")
        subject = Subject(
            action=action,
            capability_id=None,
            target="gateway",
            input_hash=sha256_hex({"proposalId": proposal_id}),
            correlation_id=request_id or self.ids.new_id(),
            request_id=request_id or self.ids.new_id(),
            proposal_id=proposal_id,
            rationale="cross-tenant attempt",
        )
        decision = refuse(ReasonCode.TENANT_MISMATCH, "the proposal belongs to another tenant")
        # the owning tenant's log records the attempt too (the actor's tenant is named in the row), in
        # the owner's own windows: a caller probing another tenant's ids cannot flood that tenant's log
        await self.audit_refused(
            self.draft(
                principal,
                subject,
                decision,
                action="capability.decision.refused",
                tenant_id=owner,
                extra={"actorTenantId": principal.tenant_id},
            ),
            attempted=action,
            reason=decision.reason_code,
            sample=proposal_id,
        )
        await self.audit_refusal(principal, subject, decision)
