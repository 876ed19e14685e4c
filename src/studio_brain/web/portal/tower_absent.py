"""Control Tower paths for concepts this brain does not have — partner briefs, agent rooms, service
actions, agent runs — answered in the Portal's calm, empty shapes, or with the 404/503/400 its own server
gives when there is nothing there (``shared/reference/control-tower.md`` §1). Nothing here acts."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from studio_brain.domain.errors import InputInvalid, NotFound
from studio_brain.web.portal.common import portal_router

router = portal_router("control-tower")


@router.get("/control-tower/partner/latest", summary="Partner brief (none here)")
async def partner_latest() -> dict[str, Any]:
    return {"ok": True, "partner": None, "checkins": []}


class CheckinBody(BaseModel):
    action: str = Field(pattern="^(ack|snooze|pause|redirect|why_this|continue)$")
    note: str | None = Field(default=None, max_length=2000)
    snoozeMinutes: int | None = Field(default=None, ge=0, le=10_080)


#: the Portal's own server answers these with 503 "partner brief is unavailable" when it has no partner
#: brief (control-tower.md); this brain never has one, so it gives the same answer — documented, so a
#: client (and the fuzz run) can tell it from a failure
_NO_PARTNER: dict[int | str, dict[str, Any]] = {
    503: {"description": "No partner brief on this brain: the Portal's own answer, on purpose"}
}


@router.post(
    "/control-tower/partner/checkins",
    summary="Partner check-in (no partner here: 503)",
    responses=_NO_PARTNER,
)
async def partner_checkin(body: CheckinBody) -> JSONResponse:
    return JSONResponse({"ok": False, "message": "partner brief is unavailable", "partner": None}, 503)


class OpenLoopBody(BaseModel):
    status: str = Field(pattern="^(delegated|paused|resolved)$")
    note: str | None = Field(default=None, max_length=2000)


@router.post(
    "/control-tower/partner/open-loops/{loop_id}",
    summary="Partner open loop (none here: 503)",
    responses=_NO_PARTNER,
)
async def partner_open_loop(loop_id: str, body: OpenLoopBody) -> JSONResponse:
    return JSONResponse({"ok": False, "message": "partner brief is unavailable", "partner": None}, 503)


@router.get("/control-tower/rooms/{room_id}", summary="A room (this brain has none: 404)")
async def room(room_id: str) -> dict[str, Any]:
    raise NotFound(f"room {room_id} not found")


@router.get("/control-tower/rooms/{room_id}/attach-command", summary="Attach to a room (none here: 404)")
async def room_attach(room_id: str) -> dict[str, Any]:
    raise NotFound(f"room {room_id} not found")


class SendBody(BaseModel):
    text: str = Field(default="", max_length=20_000)


@router.post("/control-tower/rooms/{room_id}/send", summary="Send to a room (none here: 404)")
async def room_send(room_id: str, body: SendBody) -> dict[str, Any]:
    if not body.text.strip():
        raise InputInvalid("text is required")
    raise NotFound(f"room {room_id} not found")


class PinBody(BaseModel):
    rationale: str = Field(default="", max_length=2000)


@router.post("/control-tower/rooms/{room_id}/{operation}", summary="Pin or unpin a room (none here: 404)")
async def room_pin(room_id: str, operation: str, body: PinBody) -> dict[str, Any]:
    if operation not in ("pin", "unpin"):
        raise NotFound(f"no such room operation: {operation}")
    raise NotFound(f"room {room_id} not found")


class NewRoomBody(BaseModel):
    name: str = Field(min_length=1, max_length=200)


@router.post("/control-tower/rooms", summary="Create a room (this brain runs no agent rooms)")
async def create_room(body: NewRoomBody) -> JSONResponse:
    return JSONResponse(
        {"ok": False, "message": "this brain runs no agent rooms; nothing was started"}, status_code=400
    )


class ServiceActionBody(BaseModel):
    action: str = Field(min_length=1, max_length=100)


@router.post(
    "/control-tower/services/{service_id}/actions",
    summary="A service action (none offered: 400, nothing runs)",
)
async def service_action(service_id: str, body: ServiceActionBody) -> JSONResponse:
    return JSONResponse(
        {
            "ok": False,
            "message": f"{service_id} offers no actions here; use a proposal (Capabilities) to change anything",
        },
        status_code=400,
    )


@router.get("/agent-runtime/runs/{run_id}", summary="An agent run (this brain runs none: 404)")
async def agent_run(run_id: str) -> dict[str, Any]:
    raise NotFound(f"No runtime detail found for {run_id}.")
