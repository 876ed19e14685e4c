"""Proposals: the lifecycle state machine (a transition table), approvals, and the approval binding hash.

    draft → pending_approval → approved → executing → executed | failed | outcome_unknown
    outcome_unknown → executed | failed, once reconciliation proves which (never runs again)
    plus rejected, expired, cancelled (terminal), and pending_approval → executing under an exemption.

A proposal's full record (:func:`to_record`) travels in the metadata of every audit event about it, so
the proposals table can be rebuilt from the audit log alone (:func:`from_record`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from studio_brain.domain.audit import ActorType, ApprovalState
from studio_brain.domain.errors import Conflict
from studio_brain.domain.hashing import canonical_json, sha256_hex
from studio_brain.domain.records import MacKey

MIN_RATIONALE_LENGTH = 10


class Status(StrEnum):
    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    EXECUTING = "executing"
    EXECUTED = "executed"
    FAILED = "failed"
    OUTCOME_UNKNOWN = "outcome_unknown"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @property
    def portal_status(self) -> str:
        """The Portal knows draft|pending_approval|approved|rejected|executed only."""
        return _PORTAL_STATUS[self]

    @property
    def portal_note(self) -> str | None:
        """Why ``portal_status`` is only the nearest Portal status (None when it says it all)."""
        return _PORTAL_NOTE.get(self)


class Event(StrEnum):
    SUBMIT = "submit"
    #: submitting a draft of a capability that needs no approval
    SUBMIT_UNGATED = "submit_ungated"
    APPROVE_PARTIAL = "approve_partial"
    APPROVE = "approve"
    REJECT = "reject"
    CANCEL = "cancel"
    EXPIRE = "expire"
    START = "start"
    START_EXEMPT = "start_exempt"
    SUCCEED = "succeed"
    FAIL = "fail"
    LOSE_TRACK = "lose_track"
    #: an unknown outcome proven afterwards (the target shows the effect, or refused it)
    RECONCILE_EXECUTED = "reconcile_executed"
    RECONCILE_FAILED = "reconcile_failed"


S, E = Status, Event
TRANSITIONS: dict[tuple[Status, Event], Status] = {
    (S.DRAFT, E.SUBMIT): S.PENDING_APPROVAL,
    (S.DRAFT, E.SUBMIT_UNGATED): S.APPROVED,
    (S.DRAFT, E.CANCEL): S.CANCELLED,
    (S.PENDING_APPROVAL, E.APPROVE_PARTIAL): S.PENDING_APPROVAL,
    (S.PENDING_APPROVAL, E.APPROVE): S.APPROVED,
    (S.PENDING_APPROVAL, E.REJECT): S.REJECTED,
    (S.PENDING_APPROVAL, E.CANCEL): S.CANCELLED,
    (S.PENDING_APPROVAL, E.EXPIRE): S.EXPIRED,
    (S.PENDING_APPROVAL, E.START_EXEMPT): S.EXECUTING,
    (S.APPROVED, E.START): S.EXECUTING,
    (S.APPROVED, E.START_EXEMPT): S.EXECUTING,
    (S.APPROVED, E.CANCEL): S.CANCELLED,
    (S.APPROVED, E.EXPIRE): S.EXPIRED,
    (S.EXECUTING, E.SUCCEED): S.EXECUTED,
    (S.EXECUTING, E.FAIL): S.FAILED,
    (S.EXECUTING, E.LOSE_TRACK): S.OUTCOME_UNKNOWN,
    (S.OUTCOME_UNKNOWN, E.RECONCILE_EXECUTED): S.EXECUTED,
    (S.OUTCOME_UNKNOWN, E.RECONCILE_FAILED): S.FAILED,
}
del S, E

#: no way out. ``outcome_unknown`` is not among them: reconciliation may still prove what happened
TERMINAL = frozenset(
    {
        Status.EXECUTED,
        Status.FAILED,
        Status.REJECTED,
        Status.EXPIRED,
        Status.CANCELLED,
    }
)
#: once a proposal reached one of these, it has (or may have) acted: it never runs again
HAS_RUN = frozenset({Status.EXECUTING, Status.EXECUTED, Status.FAILED, Status.OUTCOME_UNKNOWN})

_PORTAL_STATUS = {
    Status.DRAFT: "draft",
    Status.PENDING_APPROVAL: "pending_approval",
    Status.APPROVED: "approved",
    Status.EXECUTING: "approved",
    Status.EXECUTED: "executed",
    # approved and never executed: nobody rejected it (issue 13); the note says what happened
    Status.FAILED: "approved",
    Status.OUTCOME_UNKNOWN: "approved",
    Status.REJECTED: "rejected",
    Status.EXPIRED: "rejected",
    Status.CANCELLED: "rejected",
}

#: what the Portal's nearest status leaves out, in words (shown as ``statusReason`` / ``preview.statusNote``)
_PORTAL_NOTE = {
    Status.EXECUTING: "executing: approved and running on the device now; not executed yet",
    Status.FAILED: "execution failed: approved, but the action did not happen (see error); it never runs again",
    Status.OUTCOME_UNKNOWN: (
        "outcome unknown: the device may have acted; check it before proposing the action again"
    ),
    Status.EXPIRED: "expired: the approval window passed before it ran",
    Status.CANCELLED: "cancelled before it ran",
}


def proposal_phrase(status: Status) -> str:
    """ "an executed proposal", "a pending_approval proposal": refusal messages read as English."""
    article = "an" if status.value[:1] in "aeiou" else "a"
    return f"{article} {status.value} proposal"


def next_status(current: Status, event: Event) -> Status:
    """The status after ``event``; raises Conflict for a transition the table does not allow."""
    try:
        return TRANSITIONS[(current, event)]
    except KeyError:
        raise Conflict(f"{proposal_phrase(current)} cannot {event.value}") from None


def can(current: Status, event: Event) -> bool:
    return (current, event) in TRANSITIONS


@dataclass(frozen=True, kw_only=True, slots=True)
class Approval:
    approver_id: str
    approver_type: ActorType
    at: datetime
    rationale: str
    #: :func:`binding_hash` of the proposal as the approver saw it
    binding: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Proposal:
    id: str
    tenant_id: str
    capability_id: str
    registry_version: str
    target: str
    mode: str
    status: Status
    requested_by: str
    requester_type: ActorType
    input: dict[str, Any]
    input_hash: str
    predicted_effects: list[Any]
    predicted_effects_hash: str
    rationale: str
    correlation_id: str
    request_id: str
    created_at: datetime
    updated_at: datetime
    idempotency_key: str | None = None
    approvals: tuple[Approval, ...] = ()
    approval_state: ApprovalState = ApprovalState.REQUIRED
    approved_at: datetime | None = None
    approval_expires_at: datetime | None = None
    exemption_id: str | None = None
    decided_by: str | None = None
    decision_rationale: str | None = None
    execution_key: str | None = None
    executed_by: str | None = None
    execution_started_at: datetime | None = None
    execution_finished_at: datetime | None = None
    output_hash: str | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    #: bumped by every change; the store refuses a save whose version moved underneath it
    version: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def transition(self, event: Event, *, at: datetime, **changes: Any) -> Proposal:
        """A copy in the next state, with ``changes`` applied and the version bumped."""
        return replace(
            self, status=next_status(self.status, event), updated_at=at, version=self.version + 1, **changes
        )

    def binding(self, key: MacKey | None = None) -> str:
        """What an approval of this proposal binds to (keyed with the brain's ``key``: see binding_hash)."""
        return binding_hash(
            input_hash=self.input_hash,
            capability_id=self.capability_id,
            registry_version=self.registry_version,
            tenant_id=self.tenant_id,
            predicted_effects_hash=self.predicted_effects_hash,
            key=key,
        )


def binding_hash(
    *,
    input_hash: str,
    capability_id: str,
    registry_version: str,
    tenant_id: str,
    predicted_effects_hash: str,
    key: MacKey | None = None,
) -> str:
    """What an approval binds to: the exact input, capability, registry version, tenant and effects.

    With the brain's ``key`` (issue 12) it is an HMAC-SHA256 of that canonical JSON, so nobody without the
    key (a database writer) can compute the binding of a swapped input; without, the plain SHA-256.
    """
    payload = {
        "inputHash": input_hash,
        "capabilityId": capability_id,
        "registryVersion": registry_version,
        "tenantId": tenant_id,
        "predictedEffectsHash": predicted_effects_hash,
    }
    if key is None:
        return sha256_hex(payload)
    return key.mac(BINDING_DOMAIN + canonical_json(payload))


#: what a keyed binding's MAC covers is prefixed with this (never the same bytes as another record's MAC)
BINDING_DOMAIN = b"studio-brain.approval-binding/1\n"


def execution_key_for(proposal_id: str, input_hash: str) -> str:
    """The idempotency key the connector receives when the caller gave none: derived from the proposal."""
    return "prop-" + sha256_hex({"proposalId": proposal_id, "inputHash": input_hash})[:40]


# --- records (JSON) for audit metadata and rebuild -------------------------------------------------


def _ts(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _dt(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


def to_record(p: Proposal) -> dict[str, Any]:
    """Every field of the proposal as JSON (lossless: :func:`from_record` gives back an equal value)."""
    return {
        "id": p.id,
        "tenantId": p.tenant_id,
        "capabilityId": p.capability_id,
        "registryVersion": p.registry_version,
        "target": p.target,
        "mode": p.mode,
        "status": p.status.value,
        "requestedBy": p.requested_by,
        "requesterType": p.requester_type.value,
        "input": p.input,
        "inputHash": p.input_hash,
        "predictedEffects": p.predicted_effects,
        "predictedEffectsHash": p.predicted_effects_hash,
        "rationale": p.rationale,
        "correlationId": p.correlation_id,
        "requestId": p.request_id,
        "createdAt": _ts(p.created_at),
        "updatedAt": _ts(p.updated_at),
        "idempotencyKey": p.idempotency_key,
        "approvals": [
            {
                "approverId": a.approver_id,
                "approverType": a.approver_type.value,
                "at": _ts(a.at),
                "rationale": a.rationale,
                "binding": a.binding,
            }
            for a in p.approvals
        ],
        "approvalState": p.approval_state.value,
        "approvedAt": _ts(p.approved_at),
        "approvalExpiresAt": _ts(p.approval_expires_at),
        "exemptionId": p.exemption_id,
        "decidedBy": p.decided_by,
        "decisionRationale": p.decision_rationale,
        "executionKey": p.execution_key,
        "executedBy": p.executed_by,
        "executionStartedAt": _ts(p.execution_started_at),
        "executionFinishedAt": _ts(p.execution_finished_at),
        "outputHash": p.output_hash,
        "result": p.result,
        "error": p.error,
        "version": p.version,
        "extra": p.extra,
    }


def from_record(r: dict[str, Any]) -> Proposal:
    created = _dt(r["createdAt"])
    updated = _dt(r["updatedAt"])
    assert created is not None
    assert updated is not None
    return Proposal(
        id=r["id"],
        tenant_id=r["tenantId"],
        capability_id=r["capabilityId"],
        registry_version=r["registryVersion"],
        target=r["target"],
        mode=r["mode"],
        status=Status(r["status"]),
        requested_by=r["requestedBy"],
        requester_type=ActorType(r["requesterType"]),
        input=r["input"],
        input_hash=r["inputHash"],
        predicted_effects=r["predictedEffects"],
        predicted_effects_hash=r["predictedEffectsHash"],
        rationale=r["rationale"],
        correlation_id=r["correlationId"],
        request_id=r["requestId"],
        created_at=created,
        updated_at=updated,
        idempotency_key=r["idempotencyKey"],
        approvals=tuple(
            Approval(
                approver_id=a["approverId"],
                approver_type=ActorType(a["approverType"]),
                at=_dt(a["at"]) or created,
                rationale=a["rationale"],
                binding=a["binding"],
            )
            for a in r["approvals"]
        ),
        approval_state=ApprovalState(r["approvalState"]),
        approved_at=_dt(r["approvedAt"]),
        approval_expires_at=_dt(r["approvalExpiresAt"]),
        exemption_id=r["exemptionId"],
        decided_by=r["decidedBy"],
        decision_rationale=r["decisionRationale"],
        execution_key=r["executionKey"],
        executed_by=r["executedBy"],
        execution_started_at=_dt(r["executionStartedAt"]),
        execution_finished_at=_dt(r["executionFinishedAt"]),
        output_hash=r["outputHash"],
        result=r["result"],
        error=r["error"],
        version=int(r["version"]),
        extra=r.get("extra") or {},
    )
