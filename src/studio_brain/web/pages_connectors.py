"""The cockpit's Connectors page: stored health, circuit breakers, and live device readings."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from studio_brain.bootstrap import Brain
from studio_brain.logging import get_logger
from studio_brain.services.connectors import ConnectorHealthService
from studio_brain.web.pages_common import (
    TEMPLATES,
    Flash,
    PageContext,
    StaffForm,
    StaffPage,
    brain_of,
    redirect_with,
    render,
)

log = get_logger(__name__)

router = APIRouter(include_in_schema=False)

_HEALTH_TONES = {"healthy": "ok", "degraded": "warn", "down": "bad", "not_configured": "muted"}
_BREAKER_TONES = {"closed": "ok", "half_open": "warn", "open": "bad"}
_BREAKER_WORDS = {
    "closed": "Calls flow normally.",
    "half_open": "Recovering: one trial call is let through to see whether the device is back.",
    "open": "Paused after repeated failures; calls are refused until the cool-down ends.",
}
TEMPLATES.env.globals["health_tone"] = lambda status: _HEALTH_TONES.get(status, "muted")
TEMPLATES.env.globals["breaker_tone"] = lambda state: _BREAKER_TONES.get(state, "muted")
TEMPLATES.env.globals["breaker_words"] = lambda state: _BREAKER_WORDS.get(state, "")


def _connectors(brain: Brain) -> ConnectorHealthService | None:
    return brain.connector_health


def _connectors_unavailable(request: Request, page: PageContext) -> HTMLResponse:
    return render(
        request,
        "connectors.html",
        page=page,
        title="Connectors",
        nav="connectors",
        unavailable=True,
        what="Connector health",
        why="This brain was started without its connector service.",
    )


@router.get("/connectors", response_class=HTMLResponse)
async def connectors_page(request: Request, page: StaffPage) -> Response:
    service = _connectors(brain_of(request))
    if service is None:
        return _connectors_unavailable(request, page)
    health = await service.latest()
    # devices are read live from each device, which can take seconds: htmx loads them after the page;
    # without JavaScript the link asks for them in the page itself
    readings = await service.read_devices() if request.query_params.get("devices") == "1" else None
    flashes = [Flash(text="Health checked just now.", tone="ok")] if request.query_params.get("done") else []
    return render(
        request,
        "connectors.html",
        page=page,
        title="Connectors",
        nav="connectors",
        health=health,
        readings=readings,
        flashes=flashes,
    )


@router.get("/connectors/devices", response_class=HTMLResponse)
async def connector_devices(request: Request, page: StaffPage) -> Response:
    service = _connectors(brain_of(request))
    if service is None:
        return _connectors_unavailable(request, page)
    readings = await service.read_devices()
    return render(request, "_devices.html", page=page, title="Devices", readings=readings)


@router.post("/connectors/check")
async def connectors_check(request: Request, posted: StaffForm) -> Response:
    page, _ = posted
    service = _connectors(brain_of(request))
    if service is None:
        return _connectors_unavailable(request, page)
    await service.check_all()
    log.info("cockpit.connectors.checked", actor_id=page.principal.actor_id)
    return redirect_with("/connectors", page, done="checked")
