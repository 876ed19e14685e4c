"""Portal proposal paths: create (the Portal's form payload), approve, reject, reopen, rollback, dry-run
and execute. The gateway decides and audits; refusals come back in the Portal's shape (409, 403 about
the caller, 400 for invalid input) carrying our reason codes."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from studio_brain.domain.errors import PolicyRefused
from studio_brain.domain.proposals import Status
from studio_brain.services.portal import portal_request_input
from studio_brain.web.api import proposals as native
from studio_brain.web.api.shapes import proposal_json
from studio_brain.web.deps import Gateway, StaffCaller
from studio_brain.web.portal.common import (
    Desk,
    PortalRefusalRoute,
    ReasonBody,
    portal_decision,
    portal_router,
    proposal_or_none,
    refusal_response,
)

router = portal_router()


class PortalCreateBody(BaseModel):
    """The Portal's payload. Identity and tenant fields are accepted but ignored: they come from the token."""

    capabilityId: str = Field(min_length=1, max_length=200)
    rationale: str = Field(default="", max_length=20_000)
    previewSummary: str | None = Field(default=None, max_length=2000)
    requestInput: dict[str, Any] = Field(default_factory=dict)
    expectedEffects: list[Any] | None = Field(default=None, max_length=200)
    actorType: str | None = Field(default=None, max_length=50)
    actorId: str | None = Field(default=None, max_length=512)
    ownerUid: str | None = Field(default=None, max_length=512)
    tenantId: str | None = Field(default=None, max_length=200)
    requestedBy: str | None = Field(default=None, max_length=512)


class PortalDecisionResponse(BaseModel):
    ok: bool = True
    decision: dict[str, Any]
    proposal: dict[str, Any] | None
    ignored: dict[str, str] = Field(
        default_factory=dict, description="fields of the request that were ignored, and why"
    )


#: top-level body fields the Portal sends that identity decides instead
_IDENTITY_FIELDS = ("actorType", "actorId", "ownerUid", "tenantId", "requestedBy")


@router.post(
    "/capabilities/proposals",
    status_code=201,
    response_model=PortalDecisionResponse,
    summary="Create a proposal (Portal payload; tenant and actor come from the token)",
)
async def create_proposal(body: PortalCreateBody, caller: StaffCaller, gateway: Gateway) -> JSONResponse:
    capability = next((c for c in gateway.capabilities() if c.id == body.capabilityId), None)
    mapped = portal_request_input(
        capability.input_schema if capability is not None else None, body.requestInput, caller.tenant_id
    )
    ignored = {
        name: "ignored: who asks comes from your verified identity"
        for name in _IDENTITY_FIELDS
        if getattr(body, name) not in (None, "")
    } | mapped.ignored
    try:
        created = await gateway.create_proposal(
            caller.principal,
            body.capabilityId,
            mapped.value,
            body.rationale,
            predicted_effects=body.expectedEffects,
            request_id=caller.request_id,
        )
    except PolicyRefused as refused:
        return refusal_response(refused, None)
    payload = PortalDecisionResponse(
        decision=portal_decision(created.decision.as_json()),
        proposal=proposal_json(created.proposal),
        ignored=ignored,
    )
    return JSONResponse(payload.model_dump(mode="json"), status_code=201)


# approve and dry-run: the Portal's body ({approvedBy, rationale}; approvedBy is ignored) and answer are the
# native API's, so the native handlers serve both paths; refusals answer in the Portal's shape
shared = portal_router(route_class=PortalRefusalRoute)
shared.add_api_route(
    "/capabilities/proposals/{proposal_id}/approve",
    native.approve,
    methods=["POST"],
    response_model=native.ProposalResponse,
    summary="Approve (staff, not the requester; the native handler)",
)
shared.add_api_route(
    "/capabilities/proposals/{proposal_id}/dry-run",
    native.dry_run,
    methods=["GET"],
    response_model=native.DryRunResponse,
    summary="Dry run (the native handler)",
)


class ProposalResponse(BaseModel):
    ok: bool = True
    proposal: dict[str, Any]


@router.post(
    "/capabilities/proposals/{proposal_id}/reject", response_model=ProposalResponse, summary="Reject"
)
async def reject(proposal_id: str, body: ReasonBody, caller: StaffCaller, gateway: Gateway) -> JSONResponse:
    try:
        proposal = await gateway.reject(
            caller.principal, proposal_id, body.reason, request_id=caller.request_id
        )
    except PolicyRefused as refused:
        return refusal_response(refused, await proposal_or_none(gateway, caller.principal, proposal_id))
    return JSONResponse({"ok": True, "proposal": proposal_json(proposal)})


@router.post(
    "/capabilities/proposals/{proposal_id}/reopen",
    response_model=ProposalResponse,
    summary="Reopen (not supported: decisions are final here; always a 409 refusal, audited)",
)
async def reopen(
    proposal_id: str, body: ReasonBody, caller: StaffCaller, gateway: Gateway, desk: Desk
) -> JSONResponse:
    proposal = await gateway.get(caller.principal, proposal_id)
    refused = await desk.refuse_unsupported(
        caller.principal, proposal, "reopen", body.reason, caller.request_id
    )
    return refusal_response(refused, proposal)


class RollbackBody(BaseModel):
    idempotencyKey: str | None = Field(default=None, max_length=200)
    reason: str = Field(default="", max_length=20_000)


@router.post(
    "/capabilities/proposals/{proposal_id}/rollback",
    summary="Roll back (not supported: propose the reverse action instead; always a 409 refusal, audited)",
)
async def rollback(
    proposal_id: str, body: RollbackBody, caller: StaffCaller, gateway: Gateway, desk: Desk
) -> JSONResponse:
    proposal = await gateway.get(caller.principal, proposal_id)
    refused = await desk.refuse_unsupported(
        caller.principal, proposal, "rollback", body.reason, caller.request_id
    )
    return refusal_response(refused, proposal)


class PortalExecuteBody(BaseModel):
    """The Portal's payload; identity, tenant and ``output`` are ignored (the connector produces output)."""

    idempotencyKey: str | None = Field(default=None, min_length=1, max_length=200)
    actorType: str | None = Field(default=None, max_length=50)
    actorId: str | None = Field(default=None, max_length=512)
    ownerUid: str | None = Field(default=None, max_length=512)
    tenantId: str | None = Field(default=None, max_length=200)
    output: Any = None


@router.post(
    "/capabilities/proposals/{proposal_id}/execute",
    response_model=PortalDecisionResponse,
    summary="Execute an approved proposal (409 refusal with decision.reasonCode; 502 when the device call failed)",
)
async def execute(
    proposal_id: str, body: PortalExecuteBody, caller: StaffCaller, gateway: Gateway
) -> JSONResponse:
    try:
        done = await gateway.execute(
            caller.principal, proposal_id, idempotency_key=body.idempotencyKey, request_id=caller.request_id
        )
    except PolicyRefused as refused:
        return refusal_response(refused, await proposal_or_none(gateway, caller.principal, proposal_id))
    payload: dict[str, Any] = {
        "ok": done.proposal.status is Status.EXECUTED,
        "proposal": proposal_json(done.proposal),
        "decision": portal_decision(done.decision.as_json()),
        "replayed": done.replayed,
    }
    if done.proposal.status is Status.EXECUTED:
        return JSONResponse(payload)
    # the policy allowed it but the device call did not succeed: the Portal must show why, not "executed"
    payload["message"] = (
        f"the device call failed: {done.proposal.error}"
        if done.proposal.status is Status.FAILED
        else "the device call's outcome is unknown; check the device before retrying"
    )
    payload["reasonCode"] = "EXECUTION_FAILED" if done.proposal.status is Status.FAILED else "OUTCOME_UNKNOWN"
    return JSONResponse(payload, status_code=502)
