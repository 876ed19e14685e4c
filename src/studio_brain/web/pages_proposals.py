"""The cockpit's Proposals pages: the queue, one proposal in full, and its approve/reject/cancel/execute forms."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from studio_brain.bootstrap import Brain
from studio_brain.domain.audit import AuditEvent, AuditQuery
from studio_brain.domain.capabilities import Risk
from studio_brain.domain.errors import (
    Conflict,
    ConnectorError,
    InputInvalid,
    NotFound,
    PolicyRefused,
)
from studio_brain.domain.proposals import Event, Proposal, Status, can
from studio_brain.logging import get_logger
from studio_brain.ports.gateway import ProposalFilter
from studio_brain.services.gateway import GatewayService
from studio_brain.web import pages_view as view
from studio_brain.web.deps import get_request_id
from studio_brain.web.pages_actions import describe_proposal
from studio_brain.web.pages_common import (
    DONE_WORDS,
    MAX_RATIONALE,
    TEMPLATES,
    Flash,
    PageContext,
    Refusal,
    StaffForm,
    StaffPage,
    brain_of,
    gateway_of,
    gateway_unavailable,
    other_tenant,
    redirect_with,
    render,
)

log = get_logger(__name__)

router = APIRouter(include_in_schema=False)

PROPOSALS_PAGE_SIZE = 100
_STATUS_TONES = {
    "draft": "muted",
    "pending_approval": "warn",
    "approved": "info",
    "executing": "info",
    "executed": "ok",
    "failed": "bad",
    "outcome_unknown": "bad",
    "rejected": "muted",
    "expired": "muted",
    "cancelled": "muted",
}
_RISK_TONES = {"low": "ok", "medium": "info", "high": "warn", "critical": "bad"}
TEMPLATES.env.globals["status_tone"] = lambda status: _STATUS_TONES.get(status, "muted")
TEMPLATES.env.globals["risk_tone"] = lambda risk: _RISK_TONES.get(risk, "muted")


def _risk_of(gateway: GatewayService) -> Any:
    def risk_of(capability_id: str) -> str:
        capability = gateway.registry.get(capability_id)
        return capability.risk.value if capability is not None else "unknown"

    return risk_of


@router.get("/proposals", response_class=HTMLResponse)
async def proposals_page(request: Request, page: StaffPage) -> Response:
    gateway = gateway_of(brain_of(request))
    if gateway is None:
        return gateway_unavailable(request, page, "proposals.html", "Proposals")
    other = other_tenant(request, page, "Proposals", "proposals")
    if other is not None:
        return other
    params = request.query_params
    capabilities = gateway.capabilities()
    ids = [c.id for c in capabilities]
    statuses = [s.value for s in Status]
    risks = [r.value for r in Risk]
    filters = {
        "status": params.get("status", "") if params.get("status") in statuses else "",
        "capability": params.get("capability", "") if params.get("capability") in ids else "",
        "risk": params.get("risk", "") if params.get("risk") in risks else "",
    }
    found = await gateway.list_proposals(
        page.principal,
        ProposalFilter(
            status=Status(filters["status"]) if filters["status"] else None,
            capability_id=filters["capability"] or None,
            limit=PROPOSALS_PAGE_SIZE,
        ),
    )
    risk_of = _risk_of(gateway)
    shown = [p for p in found if not filters["risk"] or risk_of(p.capability_id) == filters["risk"]]
    return render(
        request,
        "proposals.html",
        page=page,
        title="Proposals",
        nav="proposals",
        proposals=shown,
        truncated=len(found) >= PROPOSALS_PAGE_SIZE,
        filters=filters,
        statuses=statuses,
        risks=risks,
        capability_ids=ids,
        risk_of=risk_of,
    )


async def _proposal_timeline(brain: Brain, proposal: Proposal) -> list[AuditEvent]:
    """Every audit event of the proposal's correlation, oldest first (refusals included)."""
    events = brain.events
    if events is None:
        return []
    result = await events.query(
        proposal.tenant_id, AuditQuery(correlation_id=proposal.correlation_id, limit=500)
    )
    return list(result.events)


async def _proposal_view(
    request: Request,
    page: PageContext,
    gateway: GatewayService,
    proposal_id: str,
    *,
    refusal: Refusal | None = None,
    flashes: list[Flash] | None = None,
    form: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    try:
        proposal = await gateway.get(page.principal, proposal_id)
    except NotFound:
        return render(
            request,
            "error.html",
            page=page,
            title="Proposal not found",
            nav="proposals",
            heading="Proposal not found",
            message=f"There is no proposal {proposal_id} in {page.principal.tenant_id}.",
            status_code=404,
        )
    brain = brain_of(request)
    capability = gateway.registry.get(proposal.capability_id)
    status = proposal.status
    approved_already = any(a.approver_id == page.principal.actor_id for a in proposal.approvals)
    # the gateway refuses self-approval (SELF_APPROVAL_FORBIDDEN); the page does not offer it either
    own = proposal.requested_by == page.principal.actor_id
    words = await describe_proposal(brain, proposal, capability)
    return render(
        request,
        "proposal.html",
        page=page,
        title=f"Proposal {proposal.capability_id}",
        nav="proposals",
        status_code=status_code,
        flashes=flashes,
        p=proposal,
        capability=capability,
        capability_approvals=capability.approvals_required if capability else 1,
        risk=capability.risk.value if capability else "unknown",
        binding=brain.gateway.binding(proposal),
        input_json=json.dumps(proposal.input, indent=2, sort_keys=True, ensure_ascii=False),
        result_json=json.dumps(proposal.result, indent=2, sort_keys=True, ensure_ascii=False),
        timeline=await _proposal_timeline(brain, proposal),
        refusal=refusal,
        form=form or {},
        # offer only what the state machine allows; the gateway still decides (and explains) the rest
        can_approve=can(status, Event.APPROVE)
        and not approved_already
        and not own
        and not page.principal.is_break_glass,
        own=own and can(status, Event.APPROVE),
        # issue 11: the break-glass session reads; it is told why it is not offered the approval
        break_glass=page.principal.is_break_glass and can(status, Event.APPROVE),
        can_reject=can(status, Event.REJECT),
        # issue 14: Execute is not offered where the connector would refuse it; the reason is shown
        can_execute=not words["execute_blocked"]
        and (
            status is Status.APPROVED
            or (
                status is Status.PENDING_APPROVAL
                and capability is not None
                and not capability.requires_approval
            )
        ),
        **words,
        can_cancel=can(status, Event.CANCEL) and proposal.requested_by == page.principal.actor_id,
    )


@router.get("/proposals/{proposal_id}", response_class=HTMLResponse)
async def proposal_page(request: Request, proposal_id: str, page: StaffPage) -> Response:
    gateway = gateway_of(brain_of(request))
    if gateway is None:
        return gateway_unavailable(request, page, "proposals.html", "Proposals")
    done = request.query_params.get("done", "")
    flashes = [Flash(text=DONE_WORDS[done], tone="ok")] if done in DONE_WORDS else []
    return await _proposal_view(request, page, gateway, proposal_id, flashes=flashes)


@router.post("/proposals/{proposal_id}/{action}")
async def proposal_action(request: Request, proposal_id: str, action: str, posted: StaffForm) -> Response:
    """Approve, reject, cancel or execute from the detail page; a refusal re-renders it with the reason."""
    page, fields = posted
    gateway = gateway_of(brain_of(request))
    if gateway is None:
        return gateway_unavailable(request, page, "proposals.html", "Proposals")
    if action not in {"approve", "reject", "cancel", "execute"}:
        return Response("not found", status_code=404, media_type="text/plain")
    rationale = fields.get("rationale", "")[:MAX_RATIONALE]
    request_id = get_request_id(request)
    principal = page.principal
    if action == "execute" and fields.get("confirm") != "yes":
        refusal = Refusal(code="CONFIRMATION_REQUIRED", words=view.reason_words("CONFIRMATION_REQUIRED"))
        return await _proposal_view(request, page, gateway, proposal_id, refusal=refusal, status_code=400)
    try:
        match action:
            case "approve":
                await gateway.approve(principal, proposal_id, rationale, request_id=request_id)
                done = "approved"
            case "reject":
                await gateway.reject(principal, proposal_id, rationale, request_id=request_id)
                done = "rejected"
            case "cancel":
                await gateway.cancel(principal, proposal_id, rationale, request_id=request_id)
                done = "cancelled"
            case _:
                await gateway.execute(principal, proposal_id, request_id=request_id)
                done = "executed"
    except (PolicyRefused, Conflict, InputInvalid, ConnectorError) as err:
        log.info(
            "cockpit.proposal.refused", action=action, proposal_id=proposal_id, code=Refusal.of(err).code
        )
        form = {f"rationale_{action}": rationale}
        return await _proposal_view(
            request, page, gateway, proposal_id, refusal=Refusal.of(err), form=form, status_code=409
        )
    except NotFound:
        return await _proposal_view(request, page, gateway, proposal_id)
    return redirect_with(f"/proposals/{proposal_id}", page, done=done)
