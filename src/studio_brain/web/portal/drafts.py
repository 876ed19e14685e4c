"""Portal swarm-draft paths: ops, marketing and finance drafts, and the marketing review."""

from __future__ import annotations

from fastapi import Query

from studio_brain.domain.drafts import DraftKind
from studio_brain.web.api import drafts as native_drafts
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


# the review's body and answer are the native API's: one handler serves both paths
router.add_api_route(
    "/marketing/drafts/{draft_id}/review",
    native_drafts.review_marketing,
    methods=["POST"],
    response_model=native_drafts.ReviewResponse,
    summary="Review marketing copy (the native handler)",
)
