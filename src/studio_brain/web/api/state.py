"""GET /api/v1/state/…: the latest daily snapshot, one by date, history over a range, and the diff of two days."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from studio_brain.domain.errors import InputInvalid, NotFound
from studio_brain.domain.identity import Principal
from studio_brain.domain.state import SnapshotDiff, SnapshotRun, SnapshotVersion
from studio_brain.web.auth import require_scope
from studio_brain.web.conditional import EncodedByVersion, etag_headers, json_bytes, not_modified
from studio_brain.web.deps import BrainDep, StudioState

router = APIRouter(prefix="/state", tags=["state"])

#: the longest history one request may ask for (a year and a day, for leap years)
MAX_HISTORY_DAYS = 366

StateReader = Annotated[Principal, Depends(require_scope("state:read"))]


class Snapshot(BaseModel):
    id: str
    tenantId: str
    snapshotDate: date
    generatedAt: datetime
    completeness: str
    source: str
    snapshotHash: str
    document: dict[str, Any]


class SnapshotResponse(BaseModel):
    ok: bool = True
    snapshot: Snapshot


class HistoryResponse(BaseModel):
    ok: bool = True
    start: date
    end: date
    snapshots: list[Snapshot]


class DiffResponse(BaseModel):
    ok: bool = True
    fromDate: date
    toDate: date
    fromRunId: str
    toRunId: str
    computedAt: datetime | None
    changes: dict[str, dict[str, Any]] = Field(description="dotted key -> {from, to}")


def snapshot_view(run: SnapshotRun) -> Snapshot:
    return Snapshot(
        id=run.id,
        tenantId=run.tenant_id,
        snapshotDate=run.snapshot_date,
        generatedAt=run.generated_at,
        completeness=run.completeness.value,
        source=run.source,
        snapshotHash=run.snapshot_hash,
        document=run.document,
    )


#: the latest snapshot of each tenant, encoded (issue 18: it changes once or a few times a day and is read
#: by every cockpit load); a tenant's entry holds one version, and a version is the run without its
#: document, so an entry can only answer for exactly the run it was encoded from
_encoded_latest = EncodedByVersion(max_keys=64)


def encode_snapshot(run: SnapshotRun) -> bytes:
    """``SnapshotResponse`` of ``run`` as JSON bytes: orjson straight from the run (the same JSON value as
    the model's encoding, several times cheaper for a large document), or the model's own encoder for a
    document orjson refuses (an integer beyond 64 bits)."""
    try:
        return orjson.dumps(
            {
                "ok": True,
                "snapshot": {
                    "id": run.id,
                    "tenantId": run.tenant_id,
                    "snapshotDate": run.snapshot_date,
                    "generatedAt": run.generated_at,
                    "completeness": run.completeness.value,
                    "source": run.source,
                    "snapshotHash": run.snapshot_hash,
                    "document": run.document,
                },
            },
            option=orjson.OPT_UTC_Z,
        )
    except orjson.JSONEncodeError:
        return SnapshotResponse(snapshot=snapshot_view(run)).model_dump_json().encode()


@router.get(
    "/latest",
    response_model=SnapshotResponse,
    summary="The newest complete daily snapshot",
    description="Carries an ETag (the run's id and hash); `If-None-Match` with it answers 304.",
    responses={304: {"description": "not modified: the latest snapshot is still the one named"}},
)
async def latest(request: Request, principal: StateReader, brain: BrainDep) -> Response:
    tenant = principal.tenant_id  # the verified identity's tenant scopes the read and the cache
    version = await brain.state_store.latest_snapshot_version(tenant)
    if version is None:
        raise NotFound("no snapshot has been computed yet")
    headers = etag_headers(version.tag)
    if (unchanged := not_modified(request, headers)) is not None:
        return unchanged
    body = _encoded_latest.get(tenant, version)
    if body is None:
        run = await brain.state_store.latest_snapshot(tenant)
        if run is None:
            raise NotFound("no snapshot has been computed yet")
        # a run computed between the two reads is newer than ``version``: it is what is served and named
        version = SnapshotVersion.of(run)
        headers = etag_headers(version.tag)
        body = encode_snapshot(run)
        _encoded_latest.put(tenant, version, body)
    return json_bytes(body, headers)


@router.get("/history", response_model=HistoryResponse, summary="Daily snapshots over a date range")
async def history(
    principal: StateReader,
    brain: BrainDep,
    start: date | None = Query(default=None, description="first date (default: 30 days before end)"),
    end: date | None = Query(default=None, description="last date (default: today in the studio's zone)"),
) -> HistoryResponse:
    last = end or brain.clock.now().astimezone(brain.settings.zone).date()
    first = start or last - timedelta(days=29)
    if first > last:
        raise InputInvalid("start must not be after end")
    if (last - first).days + 1 > MAX_HISTORY_DAYS:
        raise InputInvalid(f"a history range may span at most {MAX_HISTORY_DAYS} days")
    runs = await brain.state_store.history(principal.tenant_id, first, last)
    return HistoryResponse(start=first, end=last, snapshots=[snapshot_view(r) for r in runs])


@router.get("/diff", response_model=DiffResponse, summary="Key-level changes between two daily snapshots")
async def diff(
    principal: StateReader,
    service: StudioState,
    from_date: date = Query(alias="from"),
    to_date: date = Query(alias="to"),
) -> DiffResponse:
    if service.tenant_id != principal.tenant_id:
        raise NotFound(f"no snapshots for tenant {principal.tenant_id}")
    stored: SnapshotDiff = await service.diff(from_date, to_date)
    return DiffResponse(
        fromDate=stored.from_date,
        toDate=stored.to_date,
        fromRunId=stored.from_run_id,
        toRunId=stored.to_run_id,
        computedAt=stored.computed_at,
        changes=stored.changes,
    )


@router.get("/{snapshot_date}", response_model=SnapshotResponse, summary="The daily snapshot of one date")
async def by_date(snapshot_date: date, principal: StateReader, brain: BrainDep) -> SnapshotResponse:
    run = await brain.state_store.daily_snapshot(principal.tenant_id, snapshot_date)
    if run is None:
        raise NotFound(f"no daily snapshot for {snapshot_date.isoformat()}")
    return SnapshotResponse(snapshot=snapshot_view(run))
