"""Portal ops paths: the ops audit rows, degraded mode entries and the scorecard (``services/portal.py``
decides and audits; this module only shapes)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from studio_brain.domain.audit import AuditQuery
from studio_brain.web.deps import StaffCaller, iso
from studio_brain.web.portal.common import Desk, Limit, OkResponse, RowsResponse, portal_event, portal_router

router = portal_router()


@router.get("/ops/audit", response_model=RowsResponse, summary="Operations audit events (action ops.*)")
async def ops_audit(caller: StaffCaller, desk: Desk, limit: int = Limit) -> RowsResponse:
    rows = await desk.newest_events(
        caller.tenant_id, AuditQuery(action_prefix="ops", newest_first=True), limit
    )
    return RowsResponse(rows=[portal_event(e) for e in rows])


class DegradedBody(BaseModel):
    status: Literal["entered", "exited"]
    mode: str = Field(min_length=1, max_length=100)
    reason: str | None = Field(default=None, max_length=2000)
    rationale: str | None = Field(default=None, max_length=5000)


@router.post("/ops/degraded", response_model=OkResponse, summary="Record entering or leaving a degraded mode")
async def ops_degraded(body: DegradedBody, caller: StaffCaller, desk: Desk) -> OkResponse:
    await desk.record_degraded(
        caller.principal,
        status=body.status,
        mode=body.mode,
        reason=body.reason,
        rationale=body.rationale,
        request_id=caller.request_id,
    )
    return OkResponse()


class ScorecardResponse(BaseModel):
    ok: bool = True
    scorecard: dict[str, Any]


@router.get("/ops/scorecard", response_model=ScorecardResponse, summary="Operational scorecard")
async def ops_scorecard(caller: StaffCaller, desk: Desk) -> ScorecardResponse:
    card = await desk.scorecard(caller.tenant_id)
    return ScorecardResponse(
        scorecard={
            "computedAt": iso(card.computed_at),
            "overallStatus": "ok" if card.ok else "degraded",
            "lastBreachAt": iso(card.last_breach_at),
            "metrics": [
                {
                    "key": m.key,
                    "label": m.label,
                    "value": m.value,
                    "target": m.target,
                    "status": "ok" if m.ok else "breach",
                }
                for m in card.metrics
            ],
        }
    )
