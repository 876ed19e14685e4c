"""The gateway policy at execution: may this approved (or exempt) proposal run now — kill switch, tenant,
approval or exemption, write windows and budgets, rate limit, cooldown, one in-flight run per target — and
may an unknown outcome be reconciled.

Part of the gateway policy (:mod:`studio_brain.domain.policy` re-exports it); pure like the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from studio_brain.domain.audit import ActorType, ApprovalState
from studio_brain.domain.capabilities import Capability
from studio_brain.domain.connectors import ConnectorMode
from studio_brain.domain.identity import BREAK_GLASS_ID, Principal
from studio_brain.domain.policy_decision import (
    Decision,
    allow,
    approval_state_for,
    credential_refusal,
    may_act_as_staff,
    refuse,
)
from studio_brain.domain.policy_records import Exemption, KillSwitch
from studio_brain.domain.proposals import HAS_RUN, MIN_RATIONALE_LENGTH, Proposal, Status, proposal_phrase
from studio_brain.domain.reasons import ReasonCode
from studio_brain.domain.write_policy import describe_windows, persons_involved, window_open


@dataclass(frozen=True, kw_only=True, slots=True)
class ConnectorFacts:
    """What the execution runner knows about the connector for the capability's target."""

    present: bool
    mode: ConnectorMode = ConnectorMode.READ_ONLY


# --- execute ------------------------------------------------------------------------------------------


def decide_execute(
    *,
    principal: Principal,
    proposal: Proposal,
    capability: Capability | None,
    kill: KillSwitch,
    current_input_hash: str,
    current_binding: str,
    exemption: Exemption | None,
    connector: ConnectorFacts,
    now: datetime,
    local_now: datetime | None = None,
) -> Decision:
    """Everything that can be decided before counters: kill switch → tenant → state → actor → approval
    (or exemption) → connector → the write window (``local_now``: the studio's local time; None skips
    it). ``current_*`` are recomputed by the caller from the stored input and the registry in force now,
    so a changed input or registry fails the binding check."""
    if capability is None:
        return refuse(ReasonCode.CAPABILITY_UNKNOWN, "the capability left the registry")
    state = approval_state_for(capability)
    if kill.blocks(capability):
        return refuse(ReasonCode.KILL_SWITCH_ACTIVE, "the kill switch blocks execution of writes", state)
    if principal.tenant_id != proposal.tenant_id:
        return refuse(ReasonCode.TENANT_MISMATCH, "the proposal belongs to another tenant", state)
    if proposal.status in HAS_RUN:
        return refuse(
            ReasonCode.ALREADY_EXECUTED, f"the proposal already ran ({proposal.status.value})", state
        )
    if proposal.status not in (Status.APPROVED, Status.PENDING_APPROVAL):
        return refuse(ReasonCode.INVALID_TRANSITION, f"{proposal_phrase(proposal.status)} cannot run", state)
    if principal.actor_type is ActorType.AGENT:
        if capability.is_write:
            return refuse(ReasonCode.ACTOR_NOT_ELIGIBLE, "agents never execute writes", state)
        if not principal.has_scope(capability.read_scope()):
            return refuse(
                ReasonCode.DELEGATION_SCOPE_MISSING, f"agent lacks scope {capability.read_scope()}", state
            )
    elif not principal.is_staff and not (
        principal.actor_type is ActorType.SYSTEM and not capability.is_write
    ):
        return refuse(ReasonCode.ACTOR_NOT_ELIGIBLE, "only staff execute writes", state)
    elif (refused := credential_refusal(principal, "execute", state)) is not None:
        return refused
    approval = _approval_decision(
        proposal=proposal,
        capability=capability,
        current_input_hash=current_input_hash,
        current_binding=current_binding,
        exemption=exemption,
        principal=principal,
        now=now,
    )
    if not approval.allowed:
        return approval
    if not connector.present:
        return refuse(
            ReasonCode.ADAPTER_MISSING,
            f"no connector serves target {capability.target.value} yet",
            approval.approval_state,
        )
    if capability.is_write and connector.mode is ConnectorMode.READ_ONLY:
        return refuse(
            ReasonCode.CONNECTOR_READ_ONLY,
            f"the {capability.target.value} connector is configured read-only",
            approval.approval_state,
        )
    if capability.is_write and local_now is not None and not window_open(capability.allowed_hours, local_now):
        return refuse(
            ReasonCode.WRITE_WINDOW_CLOSED,
            f"{capability.id} may run only {describe_windows(capability.allowed_hours)} studio time "
            f"(it is {local_now:%H:%M})",
            approval.approval_state,
        )
    return approval


def decide_reconcile(
    *,
    principal: Principal,
    proposal: Proposal,
    capability: Capability | None,
    kill: KillSwitch,
    current_input_hash: str,
    connector: ConnectorFacts,
    can_reconcile: bool,
    rationale: str,
) -> Decision:
    """May ``principal`` settle an unknown outcome now? Reconciling may send the same request again with
    the same key (the target writes at most once), so it is gated like a write: kill switch → tenant →
    staff person with a reason → state (only ``outcome_unknown``) → the stored input unchanged →
    a connector that can prove outcomes, in read-write mode. The approval's lifetime is not re-checked:
    it was spent on the first attempt, which this completes."""
    state = proposal.approval_state
    if capability is None:
        return refuse(ReasonCode.CAPABILITY_UNKNOWN, "the capability left the registry", state)
    if kill.blocks(capability):
        return refuse(ReasonCode.KILL_SWITCH_ACTIVE, "the kill switch blocks re-sending writes", state)
    if principal.tenant_id != proposal.tenant_id:
        return refuse(ReasonCode.TENANT_MISMATCH, "the proposal belongs to another tenant", state)
    if not may_act_as_staff(principal):
        return refuse(ReasonCode.ACTOR_NOT_ELIGIBLE, "only staff people reconcile an outcome", state)
    if len(rationale.strip()) < MIN_RATIONALE_LENGTH or "\x00" in rationale:
        return refuse(
            ReasonCode.RATIONALE_REQUIRED,
            f"a reason of at least {MIN_RATIONALE_LENGTH} characters is required",
            state,
        )
    if proposal.status is not Status.OUTCOME_UNKNOWN:
        return refuse(
            ReasonCode.INVALID_TRANSITION,
            f"only an outcome_unknown proposal is reconciled; this one is {proposal.status.value}",
            state,
        )
    if current_input_hash != proposal.input_hash:
        return refuse(
            ReasonCode.APPROVAL_PAYLOAD_MISMATCH, "the stored input no longer matches its hash", state
        )
    if not connector.present or not can_reconcile:
        return refuse(
            ReasonCode.ADAPTER_MISSING,
            f"the {capability.target.value} connector cannot prove outcomes; check the target by hand",
            state,
        )
    if connector.mode is ConnectorMode.READ_ONLY:
        return refuse(
            ReasonCode.CONNECTOR_READ_ONLY,
            f"the {capability.target.value} connector is configured read-only",
            state,
        )
    return allow(state, "reconcile")


def decide_write_budget(
    *, capability: Capability, budget: int | None, token_taken: bool, state: ApprovalState
) -> Decision:
    """The tenant's daily budget of cloud writes (``[writePolicy] dailyCloudWriteBudget``): decided after
    the write window and before the capability's own rate limit; ``token_taken`` is whether the day's
    bucket still had room (counted atomically by the caller)."""
    if not capability.is_cloud_write or budget is None or token_taken:
        return allow(state)
    return refuse(
        ReasonCode.WRITE_BUDGET_EXHAUSTED,
        f"this studio's budget of {budget} cloud writes per day is spent; it resets at local midnight",
        state,
    )


def _approval_decision(
    *,
    proposal: Proposal,
    capability: Capability,
    current_input_hash: str,
    current_binding: str,
    exemption: Exemption | None,
    principal: Principal,
    now: datetime,
) -> Decision:
    if current_input_hash != proposal.input_hash:
        return refuse(
            ReasonCode.APPROVAL_PAYLOAD_MISMATCH,
            "the stored input no longer matches its hash",
            ApprovalState.REQUIRED,
        )
    if not capability.requires_approval:
        return allow(ApprovalState.NOT_APPLICABLE)
    exempt = (
        exemption is not None
        and capability.exemptable
        and exemption.covers(
            tenant_id=proposal.tenant_id, capability=capability, actor_id=proposal.requested_by, now=now
        )
    )
    if proposal.status is Status.APPROVED:
        if any(a.binding != current_binding for a in proposal.approvals):
            return refuse(
                ReasonCode.APPROVAL_PAYLOAD_MISMATCH,
                "the approval was given for a different input, registry version, tenant or effects",
                ApprovalState.APPROVED,
            )
        # the break-glass id never counts (approvals it recorded before issue 11 included)
        approvers = {a.approver_id for a in proposal.approvals} - {proposal.requested_by, BREAK_GLASS_ID}
        if len(approvers) < capability.approvals_required:
            return refuse(
                ReasonCode.APPROVAL_REQUIRED, "not enough distinct approvers", ApprovalState.REQUIRED
            )
        people = persons_involved(
            requested_by=proposal.requested_by, requester_type=proposal.requester_type, approvers=approvers
        )
        if capability.two_person and len(people) < 2:
            return refuse(
                ReasonCode.APPROVAL_REQUIRED,
                f"a {capability.risk.value}-risk write needs two distinct people; "
                "a proposal drafted by an agent or the brain needs a second approver",
                ApprovalState.REQUIRED,
            )
        if proposal.approval_expires_at is None or now >= proposal.approval_expires_at:
            if exempt:
                return allow(ApprovalState.EXEMPT, f"exemption {exemption.id if exemption else ''}")
            return refuse(
                ReasonCode.APPROVAL_EXPIRED, "the approval has expired; approve again", ApprovalState.APPROVED
            )
        return allow(ApprovalState.APPROVED)
    if exempt:
        return allow(ApprovalState.EXEMPT, f"exemption {exemption.id if exemption else ''}")
    return refuse(
        ReasonCode.APPROVAL_REQUIRED,
        "this write needs an approval (or an active exemption)",
        ApprovalState.REQUIRED,
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class Throttle:
    """Counters read under the target's lock: whether a rate token was taken, the cooldown, in-flight runs."""

    rate_token_taken: bool
    last_started_at: datetime | None
    in_flight: int


def decide_throttle(
    *, capability: Capability, throttle: Throttle, now: datetime, state: ApprovalState
) -> Decision:
    """Rate limit → cooldown per target → one in-flight execution per target (exclusive capabilities)."""
    if not throttle.rate_token_taken:
        return rate_limited(capability, state)
    return decide_target_free(
        capability=capability,
        last_started_at=throttle.last_started_at,
        in_flight=throttle.in_flight,
        now=now,
        state=state,
    )


def rate_limited(capability: Capability, state: ApprovalState) -> Decision:
    """The refusal when a rate-limit bucket of ``capability`` is full."""
    return refuse(
        ReasonCode.RATE_LIMITED,
        f"limit of {capability.rate_limit.per_hour}/hour (burst {capability.rate_limit.burst}/minute) reached",
        state,
    )


def decide_target_free(
    *,
    capability: Capability,
    last_started_at: datetime | None,
    in_flight: int,
    now: datetime,
    state: ApprovalState,
) -> Decision:
    """The part of :func:`decide_throttle` after the rate limit: cooldown per target, then one in-flight
    execution per target. The execution runner decides it before counting a rate token, so that the
    token is counted (and its bucket rows locked) only at the end of the transaction."""
    if (
        capability.cooldown_seconds
        and last_started_at is not None
        and now < last_started_at + timedelta(seconds=capability.cooldown_seconds)
    ):
        return refuse(
            ReasonCode.COOLDOWN_ACTIVE,
            f"target {capability.target.value} is cooling down ({capability.cooldown_seconds}s between runs)",
            state,
        )
    if capability.exclusive and in_flight > 0:
        return refuse(
            ReasonCode.TARGET_BUSY, f"target {capability.target.value} is executing another proposal", state
        )
    return allow(state)
