"""What every gateway policy decision returns (:class:`Decision`, ``allow`` / ``refuse``) and the checks on the
caller that every stage shares: who may act as staff, what a break-glass or personal token may do.

Part of the gateway policy (:mod:`studio_brain.domain.policy` re-exports it); pure like the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from studio_brain.domain.audit import ActorType, ApprovalState
from studio_brain.domain.capabilities import Capability
from studio_brain.domain.identity import Principal, credential_allows
from studio_brain.domain.reasons import ReasonCode


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


def approval_state_for(capability: Capability) -> ApprovalState:
    return ApprovalState.REQUIRED if capability.requires_approval else ApprovalState.NOT_APPLICABLE


def may_act_as_staff(principal: Principal) -> bool:
    return principal.actor_type in (ActorType.STAFF, ActorType.HUMAN) and principal.is_staff


def credential_refusal(
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
