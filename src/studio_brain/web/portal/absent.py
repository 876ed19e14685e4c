"""Portal paths for features this brain does not have (intake, support ops, memory review): empty
answers, as the Portal's contract allows, and a clear 404 for writes to them."""

from __future__ import annotations

from typing import Any

from fastapi import Query
from pydantic import BaseModel, Field

from studio_brain.domain.errors import NotFound
from studio_brain.web.portal.common import Limit, RowsResponse, portal_router

router = portal_router()


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
