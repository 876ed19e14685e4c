"""The gateway policy: pure decisions with a closed set of reason codes (design D8, seed §4, §8, §10).

Every function here takes facts (a verified Principal, a Proposal, a Capability, the kill switch state,
counters read under a lock by the caller) and returns a :class:`Decision`. Nothing here reads the clock,
the database or the network, so every rule is a row in a decision table test. Checks run in a fixed order
and the first refusal wins; for execution the order is the one the seed asks for: kill switch → tenant →
approval (or exemption) → rate limit → cooldown → one in-flight execution per target.

This module holds the decisions by stage for create, submit, approve, reject, cancel and the staff actions
(exemptions, kill switch), and is the one import path for the whole policy. Its parts: ``policy_decision``
(``Decision``, ``allow``/``refuse``, the shared caller checks), ``policy_records`` (kill switch, exemptions,
rate buckets, agent tokens as values) and ``policy_execution`` (execute, reconcile, throttles).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from studio_brain.domain.audit import ActorType, ApprovalState
from studio_brain.domain.capabilities import Capability, validate_input
from studio_brain.domain.identity import Principal
from studio_brain.domain.policy_decision import (
    Decision,
    allow,
    approval_state_for,
    credential_refusal,
    may_act_as_staff,
    refuse,
)
from studio_brain.domain.policy_execution import (
    ConnectorFacts,
    Throttle,
    decide_execute,
    decide_reconcile,
    decide_target_free,
    decide_throttle,
    decide_write_budget,
    rate_limited,
)
from studio_brain.domain.policy_records import (
    AgentToken,
    Exemption,
    KillSwitch,
    KillSwitchEntry,
    RateBucket,
    applicable_exemption,
    exemption_may_apply,
    kill_switch_from,
)
from studio_brain.domain.proposals import HAS_RUN, MIN_RATIONALE_LENGTH, Proposal, Status, proposal_phrase
from studio_brain.domain.reasons import ReasonCode
from studio_brain.domain.write_policy import persons_involved

#: the policy's public names, wherever they are defined (the stage modules are parts of this one)
__all__ = [
    "AgentToken",
    "ConnectorFacts",
    "Decision",
    "Exemption",
    "KillSwitch",
    "KillSwitchEntry",
    "RateBucket",
    "ReasonCode",
    "Throttle",
    "allow",
    "applicable_exemption",
    "decide_approve",
    "decide_cancel",
    "decide_create",
    "decide_execute",
    "decide_exemption",
    "decide_kill_switch",
    "decide_reconcile",
    "decide_reject",
    "decide_staff_action",
    "decide_submit",
    "decide_target_free",
    "decide_throttle",
    "decide_write_budget",
    "exemption_may_apply",
    "kill_switch_from",
    "rate_limited",
    "refuse",
]


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
    state = approval_state_for(capability)
    if kill.blocks(capability):
        return refuse(ReasonCode.KILL_SWITCH_ACTIVE, "the kill switch blocks new write proposals", state)
    if principal.actor_type is ActorType.AGENT:
        if not principal.has_scope(capability.propose_scope()):
            return refuse(
                ReasonCode.DELEGATION_SCOPE_MISSING, f"agent lacks scope {capability.propose_scope()}", state
            )
    elif principal.actor_type is not ActorType.SYSTEM and not principal.is_staff:
        return refuse(ReasonCode.ACTOR_NOT_ELIGIBLE, "only staff, the system or scoped agents propose", state)
    elif (refused := credential_refusal(principal, "propose", state)) is not None:
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
    if (refused := credential_refusal(principal, "propose")) is not None:
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
    if not may_act_as_staff(principal):
        return refuse(
            ReasonCode.APPROVER_NOT_ELIGIBLE, "only staff people approve; agents never do", required
        )
    if (refused := credential_refusal(principal, "approve", required)) is not None:
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
    if not may_act_as_staff(principal):
        return refuse(ReasonCode.APPROVER_NOT_ELIGIBLE, "only staff people reject; agents never do")
    if (refused := credential_refusal(principal, "approve")) is not None:
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
    if principal.actor_id != proposal.requested_by and not may_act_as_staff(principal):
        return refuse(ReasonCode.ACTOR_NOT_ELIGIBLE, "only the requester or staff cancel a proposal")
    if (refused := credential_refusal(principal, "propose")) is not None:
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
    if not may_act_as_staff(principal):
        return refuse(ReasonCode.ACTOR_NOT_ELIGIBLE, "only staff people create exemptions")
    if (refused := credential_refusal(principal, "admin")) is not None:
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
    if not may_act_as_staff(principal):
        return refuse(ReasonCode.ACTOR_NOT_ELIGIBLE, "only staff people may do this")
    if (refused := credential_refusal(principal, "admin")) is not None:
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
