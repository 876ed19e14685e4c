"""Proposals: propose, read, list, and the approval-side transitions (submit, approve, reject, cancel).

Every call takes the verified :class:`Principal`; the tenant comes from it, never from input. A state
change and its audit event commit in ONE transaction; a refusal rolls the change back, is audited in
its own transaction, and raises ``PolicyRefused``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from studio_brain.domain.audit import ApprovalState
from studio_brain.domain.caller_ids import scoped_id
from studio_brain.domain.errors import CanonicalisationError, InputInvalid, NotFound
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.identity import Principal
from studio_brain.domain.policy import (
    Decision,
    KillSwitch,
    ReasonCode,
    decide_approve,
    decide_cancel,
    decide_create,
    decide_reject,
    decide_submit,
    refuse,
)
from studio_brain.domain.proposals import Approval, Event, Proposal, Status
from studio_brain.ports.gateway import ProposalFilter
from studio_brain.services.gateway.context import (
    GatewayContext,
    NotVisible,
    Refusal,
    Subject,
    check_page,
    log,
)
from studio_brain.services.gateway.effects import predict_effects

#: the key in ``Proposal.extra`` of the effects the requester claimed (shown as such, never bound to)
CLAIMED_EFFECTS = "claimedEffects"


@dataclass(frozen=True, kw_only=True, slots=True)
class Created:
    proposal: Proposal
    decision: Decision
    #: True when an earlier proposal with the same idempotency key and payload was returned
    replayed: bool = False


class Proposals:
    """The proposal use cases (see docs/gateway.md)."""

    def __init__(self, ctx: GatewayContext) -> None:
        self._ctx = ctx

    async def create_proposal(
        self,
        principal: Principal,
        capability_id: str,
        input: Any,
        rationale: str,
        *,
        predicted_effects: list[Any] | None = None,
        idempotency_key: str | None = None,
        correlation_id: str | None = None,
        request_id: str | None = None,
        as_draft: bool = False,
    ) -> Created:
        """Propose running a capability. Refusals: CAPABILITY_UNKNOWN, KILL_SWITCH_ACTIVE,
        DELEGATION_SCOPE_MISSING, ACTOR_NOT_ELIGIBLE, RATIONALE_REQUIRED, INPUT_INVALID, IDEMPOTENCY_KEY_REUSED."""
        request_id = request_id or self._ctx.ids.new_id()
        correlation_id = correlation_id or request_id
        if idempotency_key is not None:
            idempotency_key = scoped_id(principal, idempotency_key)
        rationale = rationale if isinstance(rationale, str) else ""
        capability = self._ctx.registry.get(capability_id)
        try:
            input_hash = sha256_hex(input)
        except CanonicalisationError as err:
            input_hash = sha256_hex({"unhashableInput": str(err)})
            input = None
        subject = Subject(
            action="capability.proposal.create",
            capability_id=capability_id if capability else None,
            target=capability.target.value if capability else "gateway",
            input_hash=input_hash,
            correlation_id=correlation_id,
            request_id=request_id,
            rationale=rationale,
        )
        # a first decision without the kill switch, before any dry-run; the transaction that inserts
        # decides again with the switch read in it
        decision = decide_create(
            principal=principal, capability=capability, input=input, rationale=rationale, kill=KillSwitch()
        )
        if decision.allowed and not isinstance(input, dict):
            decision = refuse(
                ReasonCode.INPUT_INVALID, "input must be a JSON object", decision.approval_state
            )
        if not decision.allowed or capability is None or not isinstance(input, dict):
            await self._ctx.audit_refusal(principal, subject, decision)
        # Predicted effects are the server's (issue 12): always the connector's dry run, and what approvals
        # bind to. A requester's own claim is kept beside them as "claimedEffects", never in their place.
        effects, extra = await predict_effects(
            self._ctx.connectors, principal.tenant_id, capability, input, request_id
        )
        if predicted_effects is not None:
            try:
                sha256_hex(predicted_effects)
            except CanonicalisationError as err:
                raise InputInvalid(f"predicted effects: {err.message}") from err
            extra = {**extra, CLAIMED_EFFECTS: list(predicted_effects)}
        effects_hash = sha256_hex(effects)
        now = self._ctx.clock.now()
        if as_draft:
            status = Status.DRAFT
        elif capability.requires_approval:
            status = Status.PENDING_APPROVAL
        else:
            status = Status.APPROVED
        proposal = Proposal(
            id=self._ctx.ids.new_id(),
            tenant_id=principal.tenant_id,
            capability_id=capability.id,
            registry_version=self._ctx.registry.version,
            target=capability.target.value,
            mode=capability.mode.value,
            status=status,
            requested_by=principal.actor_id,
            requester_type=principal.actor_type,
            input=dict(input),
            input_hash=input_hash,
            predicted_effects=list(effects),
            predicted_effects_hash=effects_hash,
            rationale=rationale.strip(),
            correlation_id=correlation_id,
            request_id=request_id,
            created_at=now,
            updated_at=now,
            idempotency_key=idempotency_key,
            approval_state=ApprovalState.REQUIRED
            if capability.requires_approval
            else ApprovalState.NOT_APPLICABLE,
            extra=extra,
        )
        try:
            async with self._ctx.store.transaction(principal.tenant_id) as tx:
                # decided inside the transaction that inserts, so the kill switch read is current
                decision = decide_create(
                    principal=principal,
                    capability=capability,
                    input=input,
                    rationale=rationale,
                    kill=await self._ctx.kill(tx),
                )
                if not decision.allowed:
                    raise Refusal(decision)
                if idempotency_key is not None:
                    # scoped to the requester: another caller's key never finds (or replays) this one's
                    earlier = await tx.proposal_by_key("idempotency_key", idempotency_key)
                    if earlier is not None:
                        if earlier.capability_id == capability.id and earlier.input_hash == input_hash:
                            return Created(proposal=earlier, decision=decision, replayed=True)
                        raise Refusal(
                            refuse(
                                ReasonCode.IDEMPOTENCY_KEY_REUSED,
                                "this idempotency key was used for a different proposal",
                                decision.approval_state,
                            )
                        )
                await tx.insert_and_audit(
                    proposal,
                    self._ctx.draft(
                        principal,
                        replace(subject, proposal_id=proposal.id),
                        decision,
                        action="capability.proposal.created",
                        proposal=proposal,
                    ),
                )
        except Refusal as refused:
            await self._ctx.audit_refusal(principal, subject, refused.decision)
        log.info(
            "capability.proposal.created",
            proposal_id=proposal.id,
            capability_id=capability.id,
            status=status.value,
        )
        return Created(proposal=proposal, decision=decision)

    async def get(self, principal: Principal, proposal_id: str) -> Proposal:
        async with self._ctx.store.transaction(principal.tenant_id) as tx:
            proposal = await tx.get_proposal(proposal_id)
        if proposal is None:
            raise NotFound(f"no proposal {proposal_id}")
        return proposal

    async def list_proposals(
        self, principal: Principal, where: ProposalFilter | None = None
    ) -> list[Proposal]:
        where = where or ProposalFilter()
        check_page(where.limit)
        async with self._ctx.store.transaction(principal.tenant_id) as tx:
            return await tx.list_proposals(where)

    async def _decide_and_change(
        self,
        principal: Principal,
        proposal_id: str,
        action: str,
        rationale: str,
        request_id: str | None,
        decide: Callable[[Proposal, KillSwitch], Decision],
        change: Callable[[Proposal, Decision, datetime], tuple[Proposal, str]],
    ) -> Proposal:
        """The shape of submit/approve/reject/cancel: lock, decide, transition + audit in one transaction."""
        subject: Subject | None = None
        try:
            async with self._ctx.store.transaction(principal.tenant_id) as tx:
                proposal = await tx.get_proposal(proposal_id, lock=True, with_kill_switch=True)
                if proposal is None:
                    raise NotVisible
                subject = self._ctx.subject(action, proposal, request_id=request_id, rationale=rationale)
                decision = decide(proposal, await self._ctx.kill(tx))
                if not decision.allowed:
                    raise Refusal(decision)
                now = self._ctx.clock.now()
                changed, event_action = change(proposal, decision, now)
                await tx.update_and_audit(
                    changed,
                    self._ctx.draft(principal, subject, decision, action=event_action, proposal=changed),
                )
        except NotVisible:
            await self._ctx.missing(principal, proposal_id, action, request_id)
        except Refusal as refused:
            assert subject is not None  # set before any decision is made
            await self._ctx.audit_refusal(principal, subject, refused.decision)
        log.info(
            event_action, proposal_id=proposal_id, actor_id=principal.actor_id, status=changed.status.value
        )
        return changed

    async def submit(
        self, principal: Principal, proposal_id: str, *, request_id: str | None = None
    ) -> Proposal:
        """draft → pending_approval (or approved, for capabilities that need no approval)."""

        def change(p: Proposal, d: Decision, now: datetime) -> tuple[Proposal, str]:
            cap = self._ctx.registry.get(p.capability_id)
            event = Event.SUBMIT if cap is None or cap.requires_approval else Event.SUBMIT_UNGATED
            return p.transition(event, at=now), "capability.proposal.submitted"

        return await self._decide_and_change(
            principal,
            proposal_id,
            "capability.proposal.submit",
            "",
            request_id,
            lambda p, _k: decide_submit(principal=principal, proposal=p),
            change,
        )

    async def approve(
        self, principal: Principal, proposal_id: str, rationale: str, *, request_id: str | None = None
    ) -> Proposal:
        """Record an approval. Refusals: TENANT_MISMATCH, CAPABILITY_UNKNOWN, KILL_SWITCH_ACTIVE,
        APPROVER_NOT_ELIGIBLE, ALREADY_EXECUTED, INVALID_TRANSITION, SELF_APPROVAL_FORBIDDEN,
        APPROVAL_PAYLOAD_MISMATCH, RATIONALE_REQUIRED."""

        def decide(p: Proposal, kill: KillSwitch) -> Decision:
            return decide_approve(
                principal=principal,
                proposal=p,
                capability=self._ctx.registry.get(p.capability_id),
                registry_version=self._ctx.registry.version,
                kill=kill,
                rationale=rationale,
            )

        def change(p: Proposal, d: Decision, now: datetime) -> tuple[Proposal, str]:
            cap = self._ctx.registry.get(p.capability_id)
            assert cap is not None  # decide_approve refused otherwise
            approvals = (
                *p.approvals,
                Approval(
                    # the person, never the credential: two passkeys of one person are one approver
                    approver_id=principal.person,
                    approver_type=principal.actor_type,
                    at=now,
                    rationale=rationale.strip(),
                    binding=self._ctx.binding(p),
                ),
            )
            if d.approval_state is ApprovalState.APPROVED:
                first = min(a.at for a in approvals)
                return (
                    p.transition(
                        Event.APPROVE,
                        at=now,
                        approvals=approvals,
                        approval_state=ApprovalState.APPROVED,
                        approved_at=now,
                        approval_expires_at=first + timedelta(seconds=cap.approval_ttl_seconds),
                    ),
                    "capability.proposal.approved",
                )
            return (
                p.transition(Event.APPROVE_PARTIAL, at=now, approvals=approvals),
                "capability.proposal.approval_recorded",
            )

        return await self._decide_and_change(
            principal, proposal_id, "capability.proposal.approve", rationale, request_id, decide, change
        )

    async def reject(
        self, principal: Principal, proposal_id: str, rationale: str, *, request_id: str | None = None
    ) -> Proposal:
        def change(p: Proposal, d: Decision, now: datetime) -> tuple[Proposal, str]:
            return (
                p.transition(
                    Event.REJECT,
                    at=now,
                    approval_state=ApprovalState.REJECTED,
                    decided_by=principal.actor_id,
                    decision_rationale=rationale.strip(),
                ),
                "capability.proposal.rejected",
            )

        return await self._decide_and_change(
            principal,
            proposal_id,
            "capability.proposal.reject",
            rationale,
            request_id,
            lambda p, _k: decide_reject(principal=principal, proposal=p, rationale=rationale),
            change,
        )

    async def cancel(
        self, principal: Principal, proposal_id: str, rationale: str, *, request_id: str | None = None
    ) -> Proposal:
        def change(p: Proposal, d: Decision, now: datetime) -> tuple[Proposal, str]:
            return (
                p.transition(
                    Event.CANCEL, at=now, decided_by=principal.actor_id, decision_rationale=rationale.strip()
                ),
                "capability.proposal.cancelled",
            )

        return await self._decide_and_change(
            principal,
            proposal_id,
            "capability.proposal.cancel",
            rationale,
            request_id,
            lambda p, _k: decide_cancel(principal=principal, proposal=p, rationale=rationale),
            change,
        )
