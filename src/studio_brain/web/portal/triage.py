"""Reports' trust-and-safety triage paths (``/api/trust-safety/triage/…``), answered from the brain's view
of ``communityReports`` (``services/triage.py``): read-only; feedback is audited."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, Query
from pydantic import BaseModel, Field

from studio_brain.services.triage import RULES_VERSION, TriageDesk, suggest
from studio_brain.web.deps import BrainDep, StaffCaller
from studio_brain.web.portal.common import OkResponse, portal_router

router = portal_router("trust-safety")


async def get_triage(brain: BrainDep) -> TriageDesk:
    return TriageDesk(events=brain.events, state_store=brain.state_store)


Triage = Annotated[TriageDesk, Depends(get_triage)]


class StatsResponse(BaseModel):
    ok: bool = True
    stats: dict[str, Any]


@router.get("/trust-safety/triage/stats", response_model=StatsResponse, summary="Triage feedback figures")
async def triage_stats(
    caller: StaffCaller,
    triage: Triage,
    limit: int = Query(default=500, ge=1, le=5000, description="newest feedback rows counted"),
) -> StatsResponse:
    stats = await triage.stats(caller.tenant_id, limit)
    return StatsResponse(
        stats={
            "accepted": stats.accepted,
            "rejected": stats.rejected,
            "mismatchRatePct": stats.mismatch_rate_pct,
            "reports": {
                "open": stats.reports_open,
                "highSeverity": stats.high_severity,
                "snapshotDate": stats.snapshot_date.isoformat() if stats.snapshot_date else None,
            },
        }
    )


class SuggestBody(BaseModel):
    reportId: str = Field(min_length=1, max_length=200)
    targetType: str | None = Field(default=None, max_length=100)
    targetTitle: str = Field(default="", max_length=2000)
    note: str = Field(default="", max_length=5000)


class SuggestResponse(BaseModel):
    ok: bool = True
    reportId: str
    suggestion: dict[str, Any]


@router.post(
    "/trust-safety/triage/suggest", response_model=SuggestResponse, summary="A suggestion (read-only)"
)
async def triage_suggest(body: SuggestBody) -> SuggestResponse:
    found = suggest(body.targetTitle, body.note)
    return SuggestResponse(
        reportId=body.reportId,
        suggestion={
            "severity": found.severity,
            "category": found.category,
            "reasonCode": found.reason_code,
            "confidence": found.confidence,
            "provenance": list(found.provenance),
            "model": {"provider": "studio-brain", "version": RULES_VERSION},
            "suggestionOnly": True,
        },
    )


class FeedbackBody(BaseModel):
    reportId: str = Field(min_length=1, max_length=200)
    decision: Literal["accepted", "rejected"]
    mismatch: bool = False
    suggestedSeverity: str | None = Field(default=None, max_length=50)
    suggestedCategory: str | None = Field(default=None, max_length=100)
    suggestedReasonCode: str | None = Field(default=None, max_length=100)
    finalSeverity: str | None = Field(default=None, max_length=50)
    finalCategory: str | None = Field(default=None, max_length=100)
    finalReasonCode: str | None = Field(default=None, max_length=100)


@router.post("/trust-safety/triage/feedback", response_model=OkResponse, summary="Feedback (audited)")
async def triage_feedback(body: FeedbackBody, caller: StaffCaller, triage: Triage) -> OkResponse:
    detail = body.model_dump(exclude={"reportId", "decision"})
    await triage.feedback(
        caller.principal,
        report_id=body.reportId,
        decision=body.decision,
        detail=detail,
        request_id=caller.request_id,
    )
    return OkResponse()
