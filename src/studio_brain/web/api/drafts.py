"""/api/v1/drafts…: what the swarms drafted (ops recommendations, finance reconciliation, marketing copy)
and the marketing review step. Drafts never act; the swarm service checks who may read and review."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from studio_brain.domain.drafts import DraftKind
from studio_brain.web.deps import CallerDep, Drafts

router = APIRouter(prefix="/drafts", tags=["drafts"])


class DraftRowsResponse(BaseModel):
    ok: bool = True
    kind: DraftKind
    rows: list[dict[str, Any]]


class ReviewBody(BaseModel):
    toStatus: str = Field(
        min_length=1, max_length=50, description="draft | needs_review | approved_for_publish"
    )
    rationale: str = Field(max_length=20_000)


class ReviewResponse(BaseModel):
    ok: bool = True
    draftId: str
    fromStatus: str
    toStatus: str


@router.get("/{kind}", response_model=DraftRowsResponse, summary="Drafts of one kind, newest first")
async def list_drafts(
    kind: DraftKind,
    who: CallerDep,
    drafts: Drafts,
    limit: int = Query(default=30, ge=1, le=500),
) -> DraftRowsResponse:
    rows = await drafts.list_rows(who.principal, kind, limit=limit)
    return DraftRowsResponse(kind=kind, rows=rows)


@router.post("/marketing/{draft_id}/review", response_model=ReviewResponse, summary="Review marketing copy")
async def review_marketing(draft_id: str, body: ReviewBody, who: CallerDep, drafts: Drafts) -> ReviewResponse:
    result = await drafts.review_marketing(who.principal, draft_id, body.toStatus, body.rationale)
    return ReviewResponse(
        draftId=str(result.get("draftId", draft_id)),
        fromStatus=str(result.get("fromStatus")),
        toStatus=str(result.get("toStatus")),
    )
