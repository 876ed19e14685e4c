"""/api/v1/capabilities and /api/v1/policy…: the registry and its lint, the kill switch, exemptions and
rate buckets. Changes go through the gateway, which checks the caller and audits every decision."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from studio_brain.domain.errors import InputInvalid
from studio_brain.domain.identity import Principal
from studio_brain.web.api.shapes import (
    bucket_json,
    capability_json,
    exemption_json,
    kill_switch_json,
    violation_json,
)
from studio_brain.web.auth import require_scope, require_staff
from studio_brain.web.conditional import EncodedByVersion, etag_headers, json_bytes, not_modified
from studio_brain.web.deps import BrainDep, Gateway, StaffCaller, iso

capabilities_router = APIRouter(prefix="/capabilities", tags=["capabilities"])
policy_router = APIRouter(prefix="/policy", tags=["policy"])

CapabilityReader = Annotated[Principal, Depends(require_scope("capabilities:read"))]
Staff = Annotated[Principal, Depends(require_staff)]
#: an exemption without an explicit end lasts this long (the registry may allow less: the gateway checks)
DEFAULT_EXEMPTION_LIFETIME = timedelta(hours=24)


class CapabilitiesResponse(BaseModel):
    ok: bool = True
    registryVersion: str
    capabilities: list[dict[str, Any]]


class LintResponse(BaseModel):
    ok: bool = True
    checkedAt: str | None
    capabilitiesChecked: int
    violations: list[dict[str, Any]]


#: the encoded list of the registry version last served (issue 18: the registry changes rarely — its
#: version is the SHA-256 of its content — so the list is built and encoded once per version)
_encoded_registry = EncodedByVersion(max_keys=1)


@capabilities_router.get(
    "",
    response_model=CapabilitiesResponse,
    summary="The capability registry",
    description="Carries an ETag (the registry version); `If-None-Match` with it answers 304.",
)
async def list_capabilities(request: Request, principal: CapabilityReader, gateway: Gateway) -> Response:
    version = gateway.registry.version
    headers = etag_headers(version)
    if (unchanged := not_modified(request, headers)) is not None:
        return unchanged
    body = _encoded_registry.get("registry", version)
    if body is None:
        body = (
            CapabilitiesResponse(
                registryVersion=version, capabilities=[capability_json(c) for c in gateway.capabilities()]
            )
            .model_dump_json()
            .encode()
        )
        _encoded_registry.put("registry", version, body)
    return json_bytes(body, headers)


@capabilities_router.get("/lint", response_model=LintResponse, summary="Policy problems in the registry")
async def lint(principal: CapabilityReader, gateway: Gateway, brain: BrainDep) -> LintResponse:
    return LintResponse(
        checkedAt=iso(brain.clock.now()),
        capabilitiesChecked=len(gateway.capabilities()),
        violations=[violation_json(v) for v in gateway.lint()],
    )


class KillSwitchResponse(BaseModel):
    ok: bool = True
    killSwitch: dict[str, Any]


class KillSwitchBody(BaseModel):
    enabled: bool
    rationale: str = Field(max_length=20_000)
    capabilityId: str | None = Field(
        default=None, min_length=1, max_length=200, description="omit: the global switch"
    )


@policy_router.get("/kill-switch", response_model=KillSwitchResponse, summary="The kill switches")
async def kill_switch(principal: Staff, gateway: Gateway) -> KillSwitchResponse:
    return KillSwitchResponse(killSwitch=kill_switch_json(await gateway.kill_switch(principal)))


@policy_router.post("/kill-switch", response_model=KillSwitchResponse, summary="Turn a kill switch on or off")
async def set_kill_switch(body: KillSwitchBody, who: StaffCaller, gateway: Gateway) -> KillSwitchResponse:
    await gateway.set_kill_switch(
        who.principal, enabled=body.enabled, rationale=body.rationale, capability_id=body.capabilityId
    )
    return KillSwitchResponse(killSwitch=kill_switch_json(await gateway.kill_switch(who.principal)))


class ExemptionsResponse(BaseModel):
    ok: bool = True
    exemptions: list[dict[str, Any]]


class ExemptionResponse(BaseModel):
    ok: bool = True
    exemption: dict[str, Any]


class ExemptionBody(BaseModel):
    capabilityId: str = Field(min_length=1, max_length=200)
    justification: str = Field(max_length=20_000)
    ownerUid: str | None = Field(default=None, min_length=1, max_length=512, description="only this actor")
    target: str | None = Field(default=None, min_length=1, max_length=100)
    expiresAt: datetime | None = Field(default=None, description="default: 24 hours from now")


class ReasonBody(BaseModel):
    reason: str = Field(max_length=20_000)


def exemption_lifetime(expires_at: datetime | None, now: datetime) -> timedelta:
    if expires_at is None:
        return DEFAULT_EXEMPTION_LIFETIME
    if expires_at.tzinfo is None:
        raise InputInvalid("expiresAt needs a timezone (e.g. 2026-11-26T09:00:00Z)")
    lifetime = expires_at - now
    if lifetime <= timedelta(0):
        raise InputInvalid("expiresAt must be in the future")
    return lifetime


@policy_router.get("/exemptions", response_model=ExemptionsResponse, summary="Every exemption")
async def exemptions(principal: Staff, gateway: Gateway) -> ExemptionsResponse:
    return ExemptionsResponse(exemptions=[exemption_json(e) for e in await gateway.exemptions(principal)])


@policy_router.post(
    "/exemptions", status_code=201, response_model=ExemptionResponse, summary="Waive approval, narrowly"
)
async def create_exemption(
    body: ExemptionBody, who: StaffCaller, gateway: Gateway, brain: BrainDep
) -> ExemptionResponse:
    exemption = await gateway.create_exemption(
        who.principal,
        capability_id=body.capabilityId,
        justification=body.justification,
        lifetime=exemption_lifetime(body.expiresAt, brain.clock.now()),
        target=body.target,
        actor_id=body.ownerUid,
    )
    return ExemptionResponse(exemption=exemption_json(exemption))


@policy_router.post(
    "/exemptions/{exemption_id}/revoke", response_model=ExemptionResponse, summary="Revoke an exemption"
)
async def revoke_exemption(
    exemption_id: str,
    body: ReasonBody,
    who: StaffCaller,
    gateway: Gateway,
) -> ExemptionResponse:
    exemption = await gateway.revoke_exemption(who.principal, exemption_id, body.reason)
    return ExemptionResponse(exemption=exemption_json(exemption))


class BucketsResponse(BaseModel):
    ok: bool = True
    buckets: list[dict[str, Any]]


@policy_router.get("/rate-buckets", response_model=BucketsResponse, summary="Rate-limit counters")
async def rate_buckets(
    principal: Staff, gateway: Gateway, limit: int = Query(default=50, ge=1, le=500)
) -> BucketsResponse:
    return BucketsResponse(
        buckets=[bucket_json(b) for b in await gateway.rate_buckets(principal, limit=limit)]
    )


class ResetResponse(BaseModel):
    ok: bool = True
    bucket: str
    reset: int


@policy_router.post(
    "/rate-buckets/{bucket}/reset", response_model=ResetResponse, summary="Reset a rate bucket"
)
async def reset_rate_bucket(
    bucket: str, body: ReasonBody, who: StaffCaller, gateway: Gateway
) -> ResetResponse:
    count = await gateway.reset_rate_bucket(who.principal, bucket, body.reason)
    return ResetResponse(bucket=bucket, reset=count)
