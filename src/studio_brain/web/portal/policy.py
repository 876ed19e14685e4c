"""Portal policy paths: the global kill switch and exemptions (the gateway decides and audits)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from studio_brain.web.api.policy import exemption_lifetime
from studio_brain.web.api.shapes import exemption_json, kill_switch_json
from studio_brain.web.deps import Gateway, StaffCaller
from studio_brain.web.portal.common import Desk, ReasonBody, portal_router

router = portal_router()


class KillSwitchBody(BaseModel):
    enabled: bool
    rationale: str = Field(default="", max_length=20_000)


class KillSwitchResponse(BaseModel):
    ok: bool = True
    killSwitch: dict[str, Any]


@router.post(
    "/capabilities/policy/kill-switch", response_model=KillSwitchResponse, summary="Global kill switch"
)
async def kill_switch(body: KillSwitchBody, caller: StaffCaller, gateway: Gateway) -> KillSwitchResponse:
    await gateway.set_kill_switch(caller.principal, enabled=body.enabled, rationale=body.rationale)
    return KillSwitchResponse(killSwitch=kill_switch_json(await gateway.kill_switch(caller.principal)))


class PortalExemptionBody(BaseModel):
    capabilityId: str = Field(min_length=1, max_length=200)
    ownerUid: str | None = Field(default=None, min_length=1, max_length=512)
    justification: str = Field(default="", max_length=20_000)
    expiresAt: datetime | None = None


class ExemptionResponse(BaseModel):
    ok: bool = True
    exemption: dict[str, Any]


@router.post(
    "/capabilities/policy/exemptions",
    status_code=201,
    response_model=ExemptionResponse,
    summary="Create exemption",
)
async def create_exemption(
    body: PortalExemptionBody, caller: StaffCaller, gateway: Gateway, desk: Desk
) -> ExemptionResponse:
    exemption = await gateway.create_exemption(
        caller.principal,
        capability_id=body.capabilityId,
        justification=body.justification,
        lifetime=exemption_lifetime(body.expiresAt, desk.now()),
        actor_id=body.ownerUid,
    )
    return ExemptionResponse(exemption=exemption_json(exemption))


@router.post(
    "/capabilities/policy/exemptions/{exemption_id}/revoke",
    response_model=ExemptionResponse,
    summary="Revoke",
)
async def revoke_exemption(
    exemption_id: str, body: ReasonBody, caller: StaffCaller, gateway: Gateway
) -> ExemptionResponse:
    exemption = await gateway.revoke_exemption(caller.principal, exemption_id, body.reason)
    return ExemptionResponse(exemption=exemption_json(exemption))
