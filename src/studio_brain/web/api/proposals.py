"""/api/v1/proposals…: list (filters, keyset pages), detail, create, submit, approve, reject, cancel,
execute, dry-run and rebuild from the audit log. Every decision is the gateway's; refusals come back as 409/403 with ``reasonCode``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from studio_brain.domain.caller_ids import scoped_id
from studio_brain.domain.errors import InputInvalid
from studio_brain.domain.identity import Principal
from studio_brain.domain.proposals import Status
from studio_brain.ports.gateway import ProposalFilter
from studio_brain.web.api.shapes import proposal_json
from studio_brain.web.auth import require_scope
from studio_brain.web.deps import CallerDep, Gateway

router = APIRouter(prefix="/proposals", tags=["proposals"])

ProposalReader = Annotated[Principal, Depends(require_scope("proposals:read"))]
#: the gateway's own page limit
MAX_PAGE = 500


class ProposalResponse(BaseModel):
    ok: bool = True
    proposal: dict[str, Any]


class ProposalListResponse(BaseModel):
    ok: bool = True
    proposals: list[dict[str, Any]]
    nextCursor: str | None = Field(description="pass as `before` for the next (older) page; null at the end")


class DecisionView(BaseModel):
    """A policy decision: allowed or not, its reason code and the approval state it leaves."""

    allowed: bool
    reasonCode: str
    approvalState: str
    detail: str = ""


class DecisionResponse(BaseModel):
    ok: bool = True
    proposal: dict[str, Any]
    decision: DecisionView
    replayed: bool = False


class CreateBody(BaseModel):
    capabilityId: str = Field(min_length=1, max_length=200)
    input: dict[str, Any] = Field(default_factory=dict)
    rationale: str = Field(max_length=20_000)
    predictedEffects: list[Any] | None = Field(default=None, max_length=200)
    idempotencyKey: str | None = Field(default=None, min_length=1, max_length=200)
    correlationId: str | None = Field(default=None, min_length=1, max_length=200)
    draft: bool = Field(default=False, description="create as a draft, to submit later")


class RationaleBody(BaseModel):
    rationale: str = Field(max_length=20_000)


class ExecuteBody(BaseModel):
    idempotencyKey: str | None = Field(default=None, min_length=1, max_length=200)


def _cursor(value: str | None) -> tuple[datetime, str] | None:
    if value is None:
        return None
    at, sep, proposal_id = value.partition("|")
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        when = None
    if not sep or when is None or when.tzinfo is None or not proposal_id:
        raise InputInvalid("before: not a cursor from a previous page")
    return when, proposal_id


@router.get("", response_model=ProposalListResponse, summary="Proposals, newest first, with filters")
async def list_proposals(
    principal: ProposalReader,
    gateway: Gateway,
    status: Status | None = Query(default=None),
    capability_id: str | None = Query(default=None, alias="capabilityId", max_length=200),
    requested_by: str | None = Query(default=None, alias="requestedBy", max_length=512),
    before: str | None = Query(default=None, max_length=300, description="nextCursor of the previous page"),
    limit: int = Query(default=50, ge=1, le=MAX_PAGE),
) -> ProposalListResponse:
    rows = await gateway.list_proposals(
        principal,
        ProposalFilter(
            status=status,
            capability_id=capability_id,
            requested_by=requested_by,
            before=_cursor(before),
            limit=limit,
        ),
    )
    last = rows[-1] if len(rows) == limit else None
    return ProposalListResponse(
        proposals=[proposal_json(p) for p in rows],
        nextCursor=f"{last.created_at.isoformat()}|{last.id}" if last is not None else None,
    )


@router.post("", status_code=201, response_model=DecisionResponse, summary="Propose running a capability")
async def create_proposal(body: CreateBody, who: CallerDep, gateway: Gateway) -> JSONResponse:
    created = await gateway.create_proposal(
        who.principal,
        body.capabilityId,
        body.input,
        body.rationale,
        predicted_effects=body.predictedEffects,
        idempotency_key=body.idempotencyKey,
        # a caller's own correlation id lives in its namespace: it cannot join another caller's timeline
        correlation_id=scoped_id(who.principal, body.correlationId) if body.correlationId else None,
        request_id=who.request_id,
        as_draft=body.draft,
    )
    payload = DecisionResponse(
        proposal=proposal_json(created.proposal),
        decision=created.decision.as_json(),
        replayed=created.replayed,
    )
    return JSONResponse(payload.model_dump(mode="json"), status_code=200 if created.replayed else 201)


@router.get("/{proposal_id}", response_model=ProposalResponse, summary="One proposal")
async def get_proposal(proposal_id: str, principal: ProposalReader, gateway: Gateway) -> ProposalResponse:
    proposal = await gateway.get(principal, proposal_id)
    return ProposalResponse(proposal=proposal_json(proposal, binding=gateway.binding(proposal)))


@router.post("/{proposal_id}/submit", response_model=ProposalResponse, summary="Submit a draft for approval")
async def submit(proposal_id: str, who: CallerDep, gateway: Gateway) -> ProposalResponse:
    proposal = await gateway.submit(who.principal, proposal_id, request_id=who.request_id)
    return ProposalResponse(proposal=proposal_json(proposal))


@router.post(
    "/{proposal_id}/approve", response_model=ProposalResponse, summary="Approve (staff, not the requester)"
)
async def approve(
    proposal_id: str, body: RationaleBody, who: CallerDep, gateway: Gateway
) -> ProposalResponse:
    proposal = await gateway.approve(who.principal, proposal_id, body.rationale, request_id=who.request_id)
    return ProposalResponse(proposal=proposal_json(proposal))


@router.post("/{proposal_id}/reject", response_model=ProposalResponse, summary="Reject with a rationale")
async def reject(proposal_id: str, body: RationaleBody, who: CallerDep, gateway: Gateway) -> ProposalResponse:
    proposal = await gateway.reject(who.principal, proposal_id, body.rationale, request_id=who.request_id)
    return ProposalResponse(proposal=proposal_json(proposal))


@router.post("/{proposal_id}/cancel", response_model=ProposalResponse, summary="Cancel before it runs")
async def cancel(proposal_id: str, body: RationaleBody, who: CallerDep, gateway: Gateway) -> ProposalResponse:
    proposal = await gateway.cancel(who.principal, proposal_id, body.rationale, request_id=who.request_id)
    return ProposalResponse(proposal=proposal_json(proposal))


@router.post(
    "/{proposal_id}/execute",
    response_model=DecisionResponse,
    summary="Run an approved proposal, exactly once",
)
async def execute(proposal_id: str, body: ExecuteBody, who: CallerDep, gateway: Gateway) -> DecisionResponse:
    done = await gateway.execute(
        who.principal, proposal_id, idempotency_key=body.idempotencyKey, request_id=who.request_id
    )
    return DecisionResponse(
        ok=done.proposal.status is Status.EXECUTED,
        proposal=proposal_json(done.proposal),
        decision=done.decision.as_json(),
        replayed=done.replayed,
    )


@router.post(
    "/{proposal_id}/reconcile",
    response_model=DecisionResponse,
    summary="Prove an unknown outcome (the same key again, or the target read back); staff, audited",
)
async def reconcile(
    proposal_id: str, body: RationaleBody, who: CallerDep, gateway: Gateway
) -> DecisionResponse:
    """Issue 15: an ``outcome_unknown`` cloud write settled as ``executed`` or ``failed`` once proven."""
    done = await gateway.reconcile(who.principal, proposal_id, body.rationale, request_id=who.request_id)
    return DecisionResponse(
        ok=done.proposal.status is Status.EXECUTED,
        proposal=proposal_json(done.proposal),
        decision=done.decision.as_json(),
        replayed=done.replayed,
    )


class RebuildResponse(BaseModel):
    ok: bool = True
    proposalsRebuilt: int = Field(description="proposals restored from the audit log")


@router.post(
    "/rebuild",
    response_model=RebuildResponse,
    summary="Rebuild the proposals table from the audit log (staff; audited)",
)
async def rebuild(body: RationaleBody, who: CallerDep, gateway: Gateway) -> RebuildResponse:
    """Issue 13: what ``studio-brain rebuild --proposals`` does, over HTTP."""
    count = await gateway.rebuild_proposals(who.principal, body.rationale)
    return RebuildResponse(proposalsRebuilt=count)


class DryRunView(BaseModel):
    proposalId: str
    capabilityId: str
    supported: bool = Field(
        description="the connector simulated the call (else: the effects predicted at creation)"
    )
    mode: str = Field(description="the capability's dry-run support: simulated | native | unsupported")
    predictedEffects: list[Any]
    decision: DecisionView


class DryRunResponse(BaseModel):
    ok: bool = True
    proposalId: str
    dryRun: DryRunView


@router.get("/{proposal_id}/dry-run", response_model=DryRunResponse, summary="What executing would do now")
async def dry_run(
    proposal_id: str,
    _reader: ProposalReader,
    who: CallerDep,
    gateway: Gateway,
) -> DryRunResponse:
    """Needs ``proposals:read`` like every other read of a proposal (staff always)."""
    result = await gateway.dry_run(who.principal, proposal_id, request_id=who.request_id)
    return DryRunResponse(proposalId=proposal_id, dryRun=result)
