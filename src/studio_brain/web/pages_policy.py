"""The cockpit's Policy page: the kill switch (with confirmation and rationale) and exemptions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from studio_brain.domain.errors import (
    Conflict,
    InputInvalid,
    NotFound,
    PolicyRefused,
)
from studio_brain.logging import get_logger
from studio_brain.services.gateway import GatewayService
from studio_brain.web import pages_view as view
from studio_brain.web.pages_common import (
    DONE_WORDS,
    MAX_RATIONALE,
    Flash,
    PageContext,
    Refusal,
    StaffPage,
    brain_of,
    form_post,
    gateway_of,
    gateway_unavailable,
    other_tenant,
    redirect_with,
    render,
)

log = get_logger(__name__)

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class KillSwitchView:
    enabled: bool
    rationale: str = ""
    updated_by: str = ""
    updated_at: datetime | None = None


async def _policy_view(
    request: Request,
    page: PageContext,
    gateway: GatewayService,
    *,
    refusal: Refusal | None = None,
    flashes: list[Flash] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    entries = await gateway.kill_switch(page.principal)
    state = await gateway.kill_switch_state(page.principal)
    global_entry = next((e for e in entries if e.scope == "*"), None)
    kill = KillSwitchView(
        # an unreadable switch counts as on (the gateway fails closed), so the page says so too
        enabled=state.global_on or state.unreadable,
        rationale=global_entry.rationale if global_entry else "",
        updated_by=global_entry.updated_by if global_entry else "",
        updated_at=global_entry.updated_at if global_entry else None,
    )
    exemptions = sorted(await gateway.exemptions(page.principal), key=lambda x: x.created_at, reverse=True)
    return render(
        request,
        "policy.html",
        page=page,
        title="Policy",
        nav="policy",
        status_code=status_code,
        flashes=flashes,
        refusal=refusal,
        kill=kill,
        capability_switches=[e for e in entries if e.scope != "*" and e.enabled],
        exemptions=exemptions,
        exemptable=[c for c in gateway.capabilities() if c.exemptable],
        now=brain_of(request).clock.now(),
    )


@router.get("/policy", response_class=HTMLResponse)
async def policy_page(request: Request, page: StaffPage) -> Response:
    gateway = gateway_of(brain_of(request))
    if gateway is None:
        return gateway_unavailable(request, page, "policy.html", "Policy")
    other = other_tenant(request, page, "Policy", "policy")
    if other is not None:
        return other
    done = request.query_params.get("done", "")
    flashes = [Flash(text=DONE_WORDS[done], tone="ok")] if done in DONE_WORDS else []
    return await _policy_view(request, page, gateway, flashes=flashes)


async def _policy_post(
    request: Request,
) -> tuple[PageContext, Mapping[str, str], GatewayService] | HTMLResponse:
    posted = await form_post(request)
    if isinstance(posted, HTMLResponse):
        return posted
    page, fields = posted
    gateway = gateway_of(brain_of(request))
    if gateway is None:
        return gateway_unavailable(request, page, "policy.html", "Policy")
    return page, fields, gateway


@router.post("/policy/kill-switch")
async def kill_switch_post(request: Request) -> Response:
    posted = await _policy_post(request)
    if isinstance(posted, HTMLResponse):
        return posted
    page, fields, gateway = posted
    if fields.get("confirm") != "yes":
        refusal = Refusal(code="CONFIRMATION_REQUIRED", words=view.reason_words("CONFIRMATION_REQUIRED"))
        return await _policy_view(request, page, gateway, refusal=refusal, status_code=400)
    enabled = fields.get("enabled") == "on"
    try:
        await gateway.set_kill_switch(
            page.principal, enabled=enabled, rationale=fields.get("rationale", "")[:MAX_RATIONALE]
        )
    except (PolicyRefused, InputInvalid, Conflict) as err:
        return await _policy_view(request, page, gateway, refusal=Refusal.of(err), status_code=409)
    return redirect_with("/policy", page, done="killswitch-on" if enabled else "killswitch-off")


@router.post("/policy/exemptions")
async def exemption_create(request: Request) -> Response:
    posted = await _policy_post(request)
    if isinstance(posted, HTMLResponse):
        return posted
    page, fields, gateway = posted
    hours = fields.get("hours", "")
    if not hours.isdigit() or not 1 <= int(hours) <= 720:
        refusal = Refusal(code="INPUT_INVALID", words="The exemption must expire after 1 to 720 hours.")
        return await _policy_view(request, page, gateway, refusal=refusal, status_code=400)
    try:
        await gateway.create_exemption(
            page.principal,
            capability_id=fields.get("capability_id", ""),
            justification=fields.get("justification", "")[:MAX_RATIONALE],
            lifetime=timedelta(hours=int(hours)),
        )
    except (PolicyRefused, InputInvalid, Conflict) as err:
        return await _policy_view(request, page, gateway, refusal=Refusal.of(err), status_code=409)
    return redirect_with("/policy", page, done="exemption-created")


@router.post("/policy/exemptions/{exemption_id}/revoke")
async def exemption_revoke(request: Request, exemption_id: str) -> Response:
    posted = await _policy_post(request)
    if isinstance(posted, HTMLResponse):
        return posted
    page, fields, gateway = posted
    try:
        await gateway.revoke_exemption(page.principal, exemption_id, fields.get("reason", "")[:MAX_RATIONALE])
    except (PolicyRefused, InputInvalid, Conflict, NotFound) as err:
        status = 404 if isinstance(err, NotFound) else 409
        return await _policy_view(request, page, gateway, refusal=Refusal.of(err), status_code=status)
    return redirect_with("/policy", page, done="exemption-revoked")
