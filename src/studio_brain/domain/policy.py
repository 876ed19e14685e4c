"""The gateway policy: pure decisions with a closed set of reason codes (design D8, seed §4, §8, §10).

Every function here takes facts (a verified Principal, a Proposal, a Capability, the kill switch state,
counters read under a lock by the caller) and returns a :class:`Decision`. Nothing here reads the clock,
the database or the network, so every rule is a row in a decision table test. Checks run in a fixed order
and the first refusal wins; for execution the order is the one the seed asks for: kill switch → tenant →
approval (or exemption) → rate limit → cooldown → one in-flight execution per target.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from studio_brain.domain.audit import ActorType, ApprovalState
from studio_brain.domain.capabilities import Capability, validate_input
from studio_brain.domain.connectors import ConnectorMode
from studio_brain.domain.identity import BREAK_GLASS_ID, Principal, credential_allows
from studio_brain.domain.proposals import HAS_RUN, MIN_RATIONALE_LENGTH, Proposal, Status, proposal_phrase
from studio_brain.domain.reasons import ReasonCode as ReasonCode  # the one set, re-exported
from studio_brain.domain.write_policy import describe_windows, persons_involved, window_open


@dataclass(frozen=True, kw_only=True, slots=True)
class Decision:
    allowed: bool
    reason_code: ReasonCode
    approval_state: ApprovalState
    detail: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "reasonCode": self.reason_code.value,
            "approvalState": self.approval_state.value,
            "detail": self.detail,
        }


def allow(state: ApprovalState, detail: str = "") -> Decision:
    return Decision(allowed=True, reason_code=ReasonCode.ALLOWED, approval_state=state, detail=detail)


def refuse(code: ReasonCode, detail: str, state: ApprovalState = ApprovalState.NOT_APPLICABLE) -> Decision:
    return Decision(allowed=False, reason_code=code, approval_state=state, detail=detail)


@dataclass(frozen=True, kw_only=True, slots=True)
class KillSwitch:
    """Global and per-capability switches. ``unreadable``: the state could not be read — treat as on."""

    global_on: bool = False
    capabilities: frozenset[str] = frozenset()
    unreadable: bool = False

    def blocks(self, capability: Capability) -> bool:
        if not capability.is_write:
            return False
        return self.unreadable or self.global_on or capability.id in self.capabilities


@dataclass(frozen=True, kw_only=True, slots=True)
class Exemption:
    """A narrow, reasoned, expiring waiver of approval for one capability in one tenant."""

    id: str
    tenant_id: str
    capability_id: str
    justification: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    target: str | None = None
    actor_id: str | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at

    def covers(self, *, tenant_id: str, capability: Capability, actor_id: str, now: datetime) -> bool:
        return (
            self.active(now)
            and self.tenant_id == tenant_id
            and self.capability_id == capability.id
            and (self.target is None or self.target == capability.target.value)
            and (self.actor_id is None or self.actor_id == actor_id)
        )


def exemption_may_apply(*, proposal: Proposal, capability: Capability | None, now: datetime) -> bool:
    """Whether an exemption could matter to executing ``proposal`` now: the capability allows them and
    no current approval already covers the run (callers skip reading exemptions otherwise)."""
    if capability is None or not capability.exemptable:
        return False
    approval_current = (
        proposal.status is Status.APPROVED
        and proposal.approval_expires_at is not None
        and now < proposal.approval_expires_at
    )
    return not approval_current


def applicable_exemption(
    candidates: Iterable[Exemption], *, proposal: Proposal, capability: Capability | None, now: datetime
) -> Exemption | None:
    """The exemption execute and dry-run both hand to :func:`decide_execute`: the first of ``candidates``
    covering the proposal's tenant, capability, target and requester now — or None when none may apply."""
    if capability is None or not exemption_may_apply(proposal=proposal, capability=capability, now=now):
        return None
    return next(
        (
            e
            for e in candidates
            if e.covers(
                tenant_id=proposal.tenant_id, capability=capability, actor_id=proposal.requested_by, now=now
            )
        ),
        None,
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class ConnectorFacts:
    """What the execution runner knows about the connector for the capability's target."""

    present: bool
    mode: ConnectorMode = ConnectorMode.READ_ONLY


def _approval_state_for(capability: Capability) -> ApprovalState:
    return ApprovalState.REQUIRED if capability.requires_approval else ApprovalState.NOT_APPLICABLE


def _may_act_as_staff(principal: Principal) -> bool:
    return principal.actor_type in (ActorType.STAFF, ActorType.HUMAN) and principal.is_staff


def _credential_refusal(
    principal: Principal, need: str, state: ApprovalState = ApprovalState.NOT_APPLICABLE
) -> Decision | None:
    """Issue 11: the break-glass admin token is not a person (it reads, invites and turns the kill switch
    on; it never approves); a personal token acts only within its scopes (``need``)."""
    if principal.is_break_glass:
        if need == "approve":
            return refuse(
                ReasonCode.ADMIN_TOKEN_CANNOT_APPROVE,
                "the admin token is a break-glass credential, not a person: it never approves",
                state,
            )
        return refuse(
            ReasonCode.BREAK_GLASS_NOT_ALLOWED,
            "the admin token only reads, invites staff and turns the kill switch on; sign in as a person",
            state,
        )
    if not credential_allows(principal, need):
        return refuse(
            ReasonCode.PERSONAL_TOKEN_SCOPE_MISSING, f"this personal token lacks the scope {need!r}", state
        )
    return None


# --- create -----------------------------------------------------------------------------------------


def decide_create(
    *,
    principal: Principal,
    capability: Capability | None,
    input: Any,
    rationale: str,
    kill: KillSwitch,
) -> Decision:
    """May ``principal`` propose running ``capability`` with ``input``?"""
    if capability is None:
        return refuse(ReasonCode.CAPABILITY_UNKNOWN, "no such capability in the registry")
    state = _approval_state_for(capability)
    if kill.blocks(capability):
        return refuse(ReasonCode.KILL_SWITCH_ACTIVE, "the kill switch blocks new write proposals", state)
    if principal.actor_type is ActorType.AGENT:
        if not principal.has_scope(capability.propose_scope()):
            return refuse(
                ReasonCode.DELEGATION_SCOPE_MISSING, f"agent lacks scope {capability.propose_scope()}", state
            )
    elif principal.actor_type is not ActorType.SYSTEM and not principal.is_staff:
        return refuse(ReasonCode.ACTOR_NOT_ELIGIBLE, "only staff, the system or scoped agents propose", state)
    elif (refused := _credential_refusal(principal, "propose", state)) is not None:
        return refused
    if len(rationale.strip()) < MIN_RATIONALE_LENGTH or "\x00" in rationale:
        return refuse(
            ReasonCode.RATIONALE_REQUIRED,
            f"rationale must be at least {MIN_RATIONALE_LENGTH} characters (no NUL)",
            state,
        )
    if "\x00" in rationale:
        return refuse(ReasonCode.INPUT_INVALID, "rationale contains a NUL character", state)
    errors = validate_input(capability.input_schema, input)
    if errors:
        return refuse(ReasonCode.INPUT_INVALID, "; ".join(errors[:10]), state)
    return allow(state)


def decide_submit(*, principal: Principal, proposal: Proposal) -> Decision:
    if principal.tenant_id != proposal.tenant_id:
        return refuse(ReasonCode.TENANT_MISMATCH, "the proposal belongs to another tenant")
    if principal.actor_id != proposal.requested_by and not principal.is_staff:
        return refuse(ReasonCode.ACTOR_NOT_ELIGIBLE, "only the requester or staff submit a draft")
    if (refused := _credential_refusal(principal, "propose")) is not None:
        return refused
    if proposal.status is not Status.DRAFT:
        return refuse(
            ReasonCode.INVALID_TRANSITION, f"{proposal_phrase(proposal.status)} cannot be submitted"
        )
    return allow(proposal.approval_state)


# --- approve / reject / cancel ------------------------------------------------------------------------


def decide_approve(
    *,
    principal: Principal,
    proposal: Proposal,
    capability: Capability | None,
    registry_version: str,
    kill: KillSwitch,
    rationale: str,
) -> Decision:
    required = ApprovalState.REQUIRED
    if principal.tenant_id != proposal.tenant_id:
        return refuse(ReasonCode.TENANT_MISMATCH, "the proposal belongs to another tenant", required)
    if capability is None:
        return refuse(ReasonCode.CAPABILITY_UNKNOWN, "the capability left the registry", required)
    if kill.blocks(capability):
        return refuse(ReasonCode.KILL_SWITCH_ACTIVE, "the kill switch blocks approvals of writes", required)
    if not _may_act_as_staff(principal):
        return refuse(
            ReasonCode.APPROVER_NOT_ELIGIBLE, "only staff people approve; agents never do", required
        )
    if (refused := _credential_refusal(principal, "approve", required)) is not None:
        return refused
    if proposal.status in HAS_RUN:
        return refuse(ReasonCode.ALREADY_EXECUTED, "the proposal has already run", required)
    if proposal.status is not Status.PENDING_APPROVAL:
        return refuse(
            ReasonCode.INVALID_TRANSITION, f"{proposal_phrase(proposal.status)} cannot be approved", required
        )
    # persons, not credentials: every credential of one person (passkeys, tokens, a linked Firebase
    # account) yields the same person id, so two passkeys of one person are still one approver
    if principal.person == proposal.requested_by:
        return refuse(
            ReasonCode.SELF_APPROVAL_FORBIDDEN, "the requester cannot approve their own proposal", required
        )
    if any(a.approver_id == principal.person for a in proposal.approvals):
        return refuse(
            ReasonCode.APPROVER_NOT_ELIGIBLE, "each approval must come from a different person", required
        )
    if proposal.registry_version != registry_version:
        return refuse(
            ReasonCode.APPROVAL_PAYLOAD_MISMATCH,
            "the registry changed since the proposal was made; propose again",
            required,
        )
    if len(rationale.strip()) < MIN_RATIONALE_LENGTH or "\x00" in rationale:
        return refuse(
            ReasonCode.RATIONALE_REQUIRED,
            f"rationale must be at least {MIN_RATIONALE_LENGTH} characters (no NUL)",
            required,
        )
    complete = len(proposal.approvals) + 1 >= capability.approvals_required and (
        not capability.two_person
        or len(
            persons_involved(
                requested_by=proposal.requested_by,
                requester_type=proposal.requester_type,
                approvers=[*(a.approver_id for a in proposal.approvals), principal.actor_id],
            )
        )
        >= 2
    )
    return allow(
        ApprovalState.APPROVED if complete else required, "approved" if complete else "approval recorded"
    )


def decide_reject(*, principal: Principal, proposal: Proposal, rationale: str) -> Decision:
    if principal.tenant_id != proposal.tenant_id:
        return refuse(ReasonCode.TENANT_MISMATCH, "the proposal belongs to another tenant")
    if not _may_act_as_staff(principal):
        return refuse(ReasonCode.APPROVER_NOT_ELIGIBLE, "only staff people reject; agents never do")
    if (refused := _credential_refusal(principal, "approve")) is not None:
        return refused
    if proposal.status in HAS_RUN:
        return refuse(ReasonCode.ALREADY_EXECUTED, "the proposal has already run")
    if proposal.status not in (Status.PENDING_APPROVAL, Status.DRAFT):
        return refuse(ReasonCode.INVALID_TRANSITION, f"{proposal_phrase(proposal.status)} cannot be rejected")
    if len(rationale.strip()) < MIN_RATIONALE_LENGTH or "\x00" in rationale:
        return refuse(
            ReasonCode.RATIONALE_REQUIRED,
            f"rationale must be at least {MIN_RATIONALE_LENGTH} characters (no NUL)",
        )
    return allow(ApprovalState.REJECTED)


def decide_cancel(*, principal: Principal, proposal: Proposal, rationale: str) -> Decision:
    if principal.tenant_id != proposal.tenant_id:
        return refuse(ReasonCode.TENANT_MISMATCH, "the proposal belongs to another tenant")
    if principal.actor_id != proposal.requested_by and not _may_act_as_staff(principal):
        return refuse(ReasonCode.ACTOR_NOT_ELIGIBLE, "only the requester or staff cancel a proposal")
    if (refused := _credential_refusal(principal, "propose")) is not None:
        return refused
    if proposal.status in HAS_RUN:
        return refuse(ReasonCode.ALREADY_EXECUTED, "the proposal has already run")
    if proposal.status not in (Status.DRAFT, Status.PENDING_APPROVAL, Status.APPROVED):
        return refuse(
            ReasonCode.INVALID_TRANSITION, f"{proposal_phrase(proposal.status)} cannot be cancelled"
        )
    if len(rationale.strip()) < MIN_RATIONALE_LENGTH or "\x00" in rationale:
        return refuse(
            ReasonCode.RATIONALE_REQUIRED,
            f"rationale must be at least {MIN_RATIONALE_LENGTH} characters (no NUL)",
        )
    return allow(proposal.approval_state)


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
    state = _approval_state_for(capability)
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
    elif (refused := _credential_refusal(principal, "execute", state)) is not None:
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
    if not _may_act_as_staff(principal):
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


# --- exemptions and kill switch -----------------------------------------------------------------------


def decide_exemption(
    *,
    principal: Principal,
    capability: Capability | None,
    justification: str,
    lifetime: timedelta,
) -> Decision:
    if capability is None:
        return refuse(ReasonCode.CAPABILITY_UNKNOWN, "no such capability in the registry")
    if not _may_act_as_staff(principal):
        return refuse(ReasonCode.ACTOR_NOT_ELIGIBLE, "only staff people create exemptions")
    if (refused := _credential_refusal(principal, "admin")) is not None:
        return refused
    if capability.is_high_risk:
        return refuse(
            ReasonCode.EXEMPTION_FORBIDDEN,
            f"{capability.risk.value}-risk / {capability.risk_class.value} capabilities are never exempt",
        )
    if capability.exemption_policy is None:
        return refuse(ReasonCode.EXEMPTION_FORBIDDEN, "the registry allows no exemption for this capability")
    if len(justification.strip()) < MIN_RATIONALE_LENGTH or "\x00" in justification:
        return refuse(
            ReasonCode.RATIONALE_REQUIRED,
            f"justification must be at least {MIN_RATIONALE_LENGTH} characters (no NUL)",
        )
    if (
        lifetime.total_seconds() <= 0
        or lifetime.total_seconds() > capability.exemption_policy.max_lifetime_seconds
    ):
        hours = capability.exemption_policy.max_lifetime_seconds // 3600
        return refuse(ReasonCode.INPUT_INVALID, f"an exemption lasts more than 0 and at most {hours} hours")
    return allow(ApprovalState.EXEMPT)


def decide_staff_action(*, principal: Principal, rationale: str) -> Decision:
    """Kill switch changes, exemption revocation, rate-limit resets, agent tokens: staff people only."""
    if not _may_act_as_staff(principal):
        return refuse(ReasonCode.ACTOR_NOT_ELIGIBLE, "only staff people may do this")
    if (refused := _credential_refusal(principal, "admin")) is not None:
        return refused
    return _reasoned(rationale)


def _reasoned(rationale: str) -> Decision:
    if len(rationale.strip()) < MIN_RATIONALE_LENGTH or "\x00" in rationale:
        return refuse(
            ReasonCode.RATIONALE_REQUIRED,
            f"a reason of at least {MIN_RATIONALE_LENGTH} characters is required",
        )
    return allow(ApprovalState.NOT_APPLICABLE)


def decide_kill_switch(*, principal: Principal, enabled: bool, rationale: str) -> Decision:
    """Anyone on staff may stop everything — the break-glass admin token too; only a person (with the
    ``admin`` scope on a personal token) turns a switch back off."""
    if enabled and principal.is_break_glass:
        return _reasoned(rationale)
    return decide_staff_action(principal=principal, rationale=rationale)


def kill_switch_from(rows: Mapping[str, bool]) -> KillSwitch:
    """Build the switch from stored scope → enabled rows (``*`` is the global switch)."""
    return KillSwitch(
        global_on=rows.get("*", False),
        capabilities=frozenset(scope for scope, on in rows.items() if on and scope != "*"),
    )


# --- stored policy records ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class KillSwitchEntry:
    scope: str
    enabled: bool
    rationale: str
    updated_by: str
    updated_at: datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class RateBucket:
    bucket: str
    window_start: datetime
    count: int


@dataclass(frozen=True, kw_only=True, slots=True)
class AgentToken:
    """A stored agent token: only the hash of its secret is kept. ``repr`` shows no secret."""

    id: str
    tenant_id: str
    agent_id: str
    token_hash: str
    scopes: frozenset[str]
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at
