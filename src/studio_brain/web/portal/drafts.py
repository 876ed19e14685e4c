"""Portal swarm-draft paths: ops, marketing and finance drafts, and the marketing review."""

from __future__ import annotations

from fastapi import Query
from pydantic import BaseModel, Field

from studio_brain.domain.drafts import DraftKind
from studio_brain.web.deps import Drafts, StaffCaller
from studio_brain.web.portal.common import RowsResponse, portal_router

router = portal_router()

DraftLimit = Query(default=30, ge=1, le=500)


@router.get("/ops/recommendations/drafts", response_model=RowsResponse, summary="Ops recommendation drafts")
async def ops_drafts(caller: StaffCaller, drafts: Drafts, limit: int = DraftLimit) -> RowsResponse:
    return RowsResponse(rows=await drafts.list_rows(caller.principal, DraftKind.OPS, limit=limit))


@router.get("/marketing/drafts", response_model=RowsResponse, summary="Marketing copy drafts")
async def marketing_drafts(caller: StaffCaller, drafts: Drafts, limit: int = DraftLimit) -> RowsResponse:
    return RowsResponse(rows=await drafts.list_rows(caller.principal, DraftKind.MARKETING, limit=limit))


@router.get(
    "/finance/reconciliation/drafts", response_model=RowsResponse, summary="Finance reconciliation drafts"
)
async def finance_drafts(caller: StaffCaller, drafts: Drafts, limit: int = DraftLimit) -> RowsResponse:
    return RowsResponse(rows=await drafts.list_rows(caller.principal, DraftKind.FINANCE, limit=limit))


class ReviewBody(BaseModel):
    toStatus: str = Field(min_length=1, max_length=50)
    rationale: str = Field(default="", max_length=20_000)


class ReviewResponse(BaseModel):
    ok: bool = True
    draftId: str
    fromStatus: str
    toStatus: str


@router.post(
    "/marketing/drafts/{draft_id}/review", response_model=ReviewResponse, summary="Review marketing copy"
)
async def review_marketing(
    draft_id: str, body: ReviewBody, caller: StaffCaller, drafts: Drafts
) -> ReviewResponse:
    result = await drafts.review_marketing(caller.principal, draft_id, body.toStatus, body.rationale)
    return ReviewResponse(
        draftId=draft_id, fromStatus=str(result["fromStatus"]), toStatus=str(result["toStatus"])
    )
