"""The paths the Monsoon Fire Portal's staff cockpit calls, in its shapes (``docs/api.md``, "Portal paths").

Every path needs a staff identity. The cockpit loads fifteen GETs at once and one failure blanks it, so
each GET answers 200 on the happy path; features this brain does not have (intake, support ops, memory)
answer empty. Our richer proposal statuses map onto the Portal's five; refusals come back as the Portal
expects (``409 {ok:false, proposal, decision:{reasonCode…}}``) carrying our reason codes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from studio_brain.bootstrap import Brain
from studio_brain.domain.audit import ApprovalState, AuditDraft, AuditEvent, AuditQuery
from studio_brain.domain.errors import NotFound
from studio_brain.domain.hashing import sha256_hex
from studio_brain.web.auth import require_staff
from studio_brain.web.deps import Caller, events, get_brain, iso, staff_caller
from studio_brain.web.errors import ERROR_RESPONSES

router = APIRouter(
    prefix="/api", tags=["portal"], dependencies=[Depends(require_staff)], responses=ERROR_RESPONSES
)

Limit = Query(default=50, ge=1, le=10_000, description="most rows to return (no hidden cap)")


def audit_row(event: AuditEvent) -> dict[str, Any]:
    """An audit event in the Portal's ``AuditEvent`` shape (plus seq, hashes and ids for the curious)."""
    return {
        "id": event.id,
        "seq": event.seq,
        "at": iso(event.at),
        "actorType": event.actor_type.value,
        "actorId": event.actor_id,
        "action": event.action,
        "rationale": event.rationale,
        "target": event.target,
        "capabilityId": event.capability_id,
        "approvalState": event.approval_state.value,
        "inputHash": event.input_hash,
        "outputHash": event.output_hash,
        "requestId": event.request_id,
        "correlationId": event.correlation_id,
        "metadata": event.metadata,
        "hash": event.hash,
    }


class RowsResponse(BaseModel):
    ok: bool = True
    rows: list[dict[str, Any]]


# --- features this brain does not have: empty, as the Portal contract allows ------------------------


class SupportQueueResponse(BaseModel):
    ok: bool = True
    summary: dict[str, Any]
    recentCases: list[dict[str, Any]]


class MemoryCasesResponse(BaseModel):
    ok: bool = True
    rows: list[dict[str, Any]]
    latestVerificationRuns: list[dict[str, Any]]


@router.get("/intake/review-queue", response_model=RowsResponse, summary="Intake review queue (none here)")
async def intake_queue(limit: int = Limit) -> RowsResponse:
    return RowsResponse(rows=[])


class IntakeOverride(BaseModel):
    decision: str = Field(max_length=100)
    reasonCode: str = Field(max_length=100)
    rationale: str = Field(max_length=5000)


@router.post(
    "/intake/review-queue/{intake_id}/override",
    responses={404: {"description": "this brain has no intake queue"}},
    summary="Override an intake decision (no intake queue here: always 404)",
)
async def intake_override(intake_id: str, body: IntakeOverride) -> dict[str, Any]:
    raise NotFound("this brain has no intake review queue; intake cases live in the Portal")


@router.get("/support-ops/queue", response_model=SupportQueueResponse, summary="Support ops (none here)")
async def support_queue(limit: int = Query(default=20, ge=1, le=1000)) -> SupportQueueResponse:
    return SupportQueueResponse(summary={"open": 0, "total": 0}, recentCases=[])


@router.get("/support-ops/dead-letters", response_model=RowsResponse, summary="Support ops (none here)")
async def support_dead_letters(limit: int = Query(default=10, ge=1, le=1000)) -> RowsResponse:
    return RowsResponse(rows=[])


@router.get("/memory/review-cases", response_model=MemoryCasesResponse, summary="Memory review (none here)")
async def memory_cases(limit: int = Query(default=20, ge=1, le=1000)) -> MemoryCasesResponse:
    return MemoryCasesResponse(rows=[], latestVerificationRuns=[])


# --- ops: audit, degraded mode, scorecard ------------------------------------------------------------


@router.get("/ops/audit", response_model=RowsResponse, summary="Operations audit events (action ops.*)")
async def ops_audit(
    caller: Caller = Depends(staff_caller), brain: Brain = Depends(get_brain), limit: int = Limit
) -> RowsResponse:
    page = await events(brain).query(
        caller.tenant_id, AuditQuery(action_prefix="ops", newest_first=True, limit=limit)
    )
    return RowsResponse(rows=[audit_row(e) for e in page.events])


class DegradedBody(BaseModel):
    status: Literal["entered", "exited"]
    mode: str = Field(min_length=1, max_length=100)
    reason: str | None = Field(default=None, max_length=2000)
    rationale: str | None = Field(default=None, max_length=5000)


class OkResponse(BaseModel):
    ok: bool = True


@router.post("/ops/degraded", response_model=OkResponse, summary="Record entering or leaving a degraded mode")
async def ops_degraded(
    body: DegradedBody, caller: Caller = Depends(staff_caller), brain: Brain = Depends(get_brain)
) -> OkResponse:
    payload = body.model_dump()
    await events(brain).append(
        AuditDraft(
            tenant_id=caller.tenant_id,
            actor_type=caller.principal.actor_type,
            actor_id=caller.principal.actor_id,
            action=f"ops.degraded.{body.status}",
            target="local",
            rationale=body.rationale or body.reason or f"degraded mode {body.mode} {body.status}",
            approval_state=ApprovalState.NOT_APPLICABLE,
            input_hash=sha256_hex(payload),
            request_id=caller.request_id,
            correlation_id=caller.request_id,
            metadata={"mode": body.mode, "reason": body.reason, "via": "portal"},
        )
    )
    return OkResponse()


class ScorecardResponse(BaseModel):
    ok: bool = True
    scorecard: dict[str, Any]


@router.get("/ops/scorecard", response_model=ScorecardResponse, summary="Operational scorecard")
async def ops_scorecard(
    caller: Caller = Depends(staff_caller), brain: Brain = Depends(get_brain)
) -> ScorecardResponse:
    now = brain.clock.now()
    metrics: list[dict[str, Any]] = []
    latest = await brain.state_store.latest_snapshot(caller.tenant_id)
    max_age = brain.settings.snapshot_max_age_minutes
    age = None if latest is None else round((now - latest.generated_at).total_seconds() / 60.0, 1)
    fresh = age is not None and age <= max_age
    metrics.append(
        {
            "key": "snapshot_freshness",
            "label": "Latest snapshot age (minutes)",
            "value": age,
            "target": max_age,
            "status": "ok" if fresh else "breach",
        }
    )
    breaches: list[datetime] = []
    degraded = await events(brain).query(
        caller.tenant_id, AuditQuery(action_prefix="ops.degraded", newest_first=True, limit=1)
    )
    in_degraded = bool(degraded.events) and degraded.events[0].action == "ops.degraded.entered"
    metrics.append(
        {
            "key": "degraded_mode",
            "label": "Degraded mode",
            "value": degraded.events[0].metadata.get("mode") if in_degraded else None,
            "target": None,
            "status": "breach" if in_degraded else "ok",
        }
    )
    if in_degraded:
        breaches.append(degraded.events[0].at)
    overall = "ok" if all(m["status"] == "ok" for m in metrics) else "degraded"
    return ScorecardResponse(
        scorecard={
            "computedAt": iso(now),
            "overallStatus": overall,
            "lastBreachAt": iso(max(breaches)) if breaches else None,
            "metrics": metrics,
        }
    )
