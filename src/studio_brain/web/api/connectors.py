"""GET /api/v1/connectors…: connector health (with breaker state) and device readings."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from studio_brain.domain.identity import Principal
from studio_brain.web.auth import require_staff
from studio_brain.web.deps import ConnectorHealth

router = APIRouter(prefix="/connectors", tags=["connectors"])

#: staff only: the gateway issues no connector-reading scope to agents (agents read through capabilities)
ConnectorReader = Annotated[Principal, Depends(require_staff)]


class HealthResponse(BaseModel):
    ok: bool = True
    connectors: list[dict[str, Any]]


class DevicesResponse(BaseModel):
    ok: bool = True
    readings: list[dict[str, Any]]


@router.get("/health", response_model=HealthResponse, summary="Latest health of every connector")
async def connector_health(
    principal: ConnectorReader,
    service: ConnectorHealth,
    refresh: bool = Query(
        default=False, description="check every connector now instead of the stored result"
    ),
) -> HealthResponse:
    results = await (service.check_all() if refresh else service.latest())
    return HealthResponse(connectors=[h.to_dict() for h in results])


@router.get("/devices", response_model=DevicesResponse, summary="Device readings from the connectors")
async def connector_devices(
    principal: ConnectorReader,
    service: ConnectorHealth,
    connector: str | None = Query(
        default=None, max_length=100, description="one connector id (default: all)"
    ),
) -> DevicesResponse:
    readings = await service.read_devices(connector)
    return DevicesResponse(readings=[r.to_dict() for r in readings])
