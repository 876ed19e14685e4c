"""What every Portal router shares: the router factory (staff only, the error responses), the Portal's
row and decision shapes, and its refusal body (``409 {ok:false, proposal, decision:{reasonCode…}}``)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from studio_brain.domain.audit import ApprovalState, AuditEvent
from studio_brain.domain.errors import NotFound, PolicyRefused
from studio_brain.domain.identity import Principal
from studio_brain.domain.proposals import Proposal
from studio_brain.services.gateway import GatewayService
from studio_brain.services.portal import PortalDesk
from studio_brain.web.api.shapes import event_json, proposal_json
from studio_brain.web.auth import require_staff
from studio_brain.web.deps import brain_of
from studio_brain.web.errors import ERROR_RESPONSES, status_for

Limit = Query(default=50, ge=1, le=10_000, description="most rows to return (no hidden cap)")


def portal_router(tag: str = "portal", *, route_class: type[APIRoute] = APIRoute) -> APIRouter:
    """A router under ``/api`` whose every path needs a staff identity."""
    return APIRouter(
        prefix="/api",
        tags=[tag],
        dependencies=[Depends(require_staff)],
        responses=ERROR_RESPONSES,
        route_class=route_class,
    )


class PortalRefusalRoute(APIRoute):
    """A route whose gateway refusals answer in the Portal's shape (:func:`refusal_response`, with the
    proposal named by the ``proposal_id`` path parameter): so a native handler can serve a Portal path."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def portal_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except PolicyRefused as refused:
                proposal = None
                proposal_id = request.path_params.get("proposal_id")
                principal = getattr(request.state, "principal", None)
                if isinstance(proposal_id, str) and isinstance(principal, Principal):
                    proposal = await proposal_or_none(brain_of(request).gateway, principal, proposal_id)
                return refusal_response(refused, proposal)

        return portal_handler


async def get_desk(request: Request) -> PortalDesk:
    brain = brain_of(request)  # the request, not BrainDep: one dependency level (web/deps.py)
    return PortalDesk(
        events=brain.events,
        state_store=brain.state_store,
        clock=brain.clock,
        snapshot_max_age_minutes=brain.settings.snapshot_max_age_minutes,
        audit_refused=brain.gateway.audit_refused,
    )


#: the Portal module's non-gateway use cases (services/portal.py)
Desk = Annotated[PortalDesk, Depends(get_desk)]


class RowsResponse(BaseModel):
    ok: bool = True
    rows: list[dict[str, Any]]


class OkResponse(BaseModel):
    ok: bool = True


class ReasonBody(BaseModel):
    reason: str = Field(max_length=20_000)


def portal_event(event: AuditEvent, *, full: bool = False) -> dict[str, Any]:
    """An audit row as the Portal reads it: its approvalState set has no ``not_applicable`` (shown as
    ``exempt``: no approval was needed); ``brainApprovalState`` keeps ours. A list row unless ``full``
    (``event_json``): the export bundle carries full rows."""
    row = event_json(event, full=full)
    row["brainApprovalState"] = row["approvalState"]
    if row["approvalState"] == ApprovalState.NOT_APPLICABLE.value:
        row["approvalState"] = ApprovalState.EXEMPT.value
    return row


def portal_decision(decision: dict[str, Any]) -> dict[str, Any]:
    """Our decision, with the Portal's approvalState set (it has no ``not_applicable``)."""
    state = decision.get("approvalState")
    return {**decision, "approvalState": "exempt" if state == "not_applicable" else state}


def refusal_response(refused: PolicyRefused, proposal: Proposal | None) -> JSONResponse:
    """The Portal's refusal shape: 409 (403 for who-is-asking refusals, 400 for invalid input) with
    decision.reasonCode."""
    body = {
        "ok": False,
        "message": refused.message,
        "reasonCode": refused.reason_code,
        "proposal": proposal_json(proposal) if proposal is not None else None,
        "decision": {
            "allowed": False,
            "reasonCode": refused.reason_code,
            "approvalState": portal_decision({"approvalState": proposal.approval_state.value})[
                "approvalState"
            ]
            if proposal is not None
            else "required",
            "detail": refused.message,
        },
    }
    status = 400 if refused.reason_code == "INPUT_INVALID" else status_for(refused)
    return JSONResponse(body, status_code=status)


async def proposal_or_none(
    gateway: GatewayService, principal: Principal, proposal_id: str
) -> Proposal | None:
    try:
        found: Proposal = await gateway.get(principal, proposal_id)
    except NotFound:
        return None
    return found
