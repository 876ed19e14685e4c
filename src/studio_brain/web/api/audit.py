"""GET /api/v1/audit…: the audit log read with keyset pagination, its export as a download, and verification."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from studio_brain.domain.audit import ApprovalState, AuditQuery, event_to_json
from studio_brain.domain.errors import InputInvalid, NotFound
from studio_brain.domain.identity import Principal
from studio_brain.web.api.shapes import event_json
from studio_brain.web.audit_pages import PAGE_ETAG, PAGE_NOT_MODIFIED, audit_pages_of
from studio_brain.web.auth import require_scope, require_staff
from studio_brain.web.conditional import IMMUTABLE, etag_headers, not_modified
from studio_brain.web.deps import Audit, BrainDep, Events, iso
from studio_brain.web.encoding import dumps, json_response

router = APIRouter(prefix="/audit", tags=["audit"])

#: the most events one page may hold; the export has no limit (it streams)
MAX_PAGE = 1000

AuditReader = Annotated[Principal, Depends(require_scope("audit:read"))]


class AuditPageResponse(BaseModel):
    ok: bool = True
    events: list[dict[str, Any]] = Field(description="events, with seq, ids and chain hashes")
    nextCursor: int | None = Field(
        description="pass as `after` (or `before` with newestFirst) for the next page; null at the end"
    )


@router.get(
    "",
    response_model=AuditPageResponse,
    summary="Query the audit log (keyset pagination)",
    description=PAGE_ETAG,
    responses=PAGE_NOT_MODIFIED,
)
async def query_audit(
    request: Request,
    principal: AuditReader,
    events: Events,
    action_prefix: str | None = Query(default=None, alias="actionPrefix", max_length=200),
    actor_id: str | None = Query(default=None, alias="actorId", max_length=512),
    capability_id: str | None = Query(default=None, alias="capabilityId", max_length=512),
    approval_state: ApprovalState | None = Query(default=None, alias="approvalState"),
    correlation_id: str | None = Query(default=None, alias="correlationId", max_length=512),
    since: datetime | None = Query(default=None, description="at >= since"),
    until: datetime | None = Query(default=None, description="at < until"),
    after: int | None = Query(default=None, ge=0, description="events with seq > after (oldest first)"),
    before: int | None = Query(default=None, ge=1, description="events with seq < before (with newestFirst)"),
    newest_first: bool = Query(default=False, alias="newestFirst"),
    limit: int = Query(default=100, ge=1, le=MAX_PAGE),
    details: Literal["summary", "full"] = Query(
        default="summary",
        description="`summary`: a proposal record in metadata is cut to its id, status and version (see "
        "`detail` of each row); `full`: every row as stored",
    ),
) -> Response:
    if before is not None and not newest_first:
        raise InputInvalid("`before` pages backwards: use it with newestFirst=true (or use `after`)")
    if after is not None and newest_first:
        raise InputInvalid("`after` pages forwards: use it without newestFirst (or use `before`)")
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InputInvalid(f"{name} needs a timezone (e.g. 2026-11-25T00:00:00Z)")
    tenant = principal.tenant_id  # the verified identity's tenant scopes the read and the cache
    query = AuditQuery(
        action_prefix=action_prefix,
        actor_id=actor_id,
        capability_id=capability_id,
        approval_state=approval_state,
        correlation_id=correlation_id,
        since=since,
        until=until,
        after_seq=after,
        before_seq=before,
        newest_first=newest_first,
        limit=limit,
    )

    async def encode() -> bytes:
        page = await events.query(tenant, query)
        # built as plain JSON: a page of 1000 events is the hottest read path (docs/benchmarks.md)
        return dumps(
            {
                "ok": True,
                "events": [event_json(e, full=details == "full") for e in page.events],
                "nextCursor": page.next_cursor,
            }
        )

    # issue 18: encoded once per chain head (web/audit_pages.py), with the head as its ETag
    return await audit_pages_of(request).respond(request, events, tenant, ("v1", query, details), encode)


@router.get(
    "/export",
    summary="Download the audit log as NDJSON (one exported event per line, seq order, streamed)",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}, "description": "one event per line"}},
)
async def export_audit(
    principal: Annotated[Principal, Depends(require_staff)],
    brain: BrainDep,
    from_seq: int = Query(default=1, ge=1, alias="fromSeq"),
    to_seq: int | None = Query(default=None, ge=1, alias="toSeq"),
) -> StreamingResponse:
    if to_seq is not None and to_seq < from_seq:
        raise InputInvalid("toSeq must not be before fromSeq")
    store = brain.events

    async def lines() -> AsyncIterator[bytes]:
        async for event in store.stream(principal.tenant_id, from_seq=from_seq, to_seq=to_seq):
            # the same line format as the events file of `studio-brain audit export` (no manifest: streamed)
            yield (
                json.dumps(
                    event_to_json(event), ensure_ascii=False, sort_keys=True, separators=(",", ":")
                ).encode()
                + b"\n"
            )

    filename = f"audit-{principal.tenant_id}-{brain.clock.now():%Y%m%dT%H%M%SZ}.ndjson"
    return StreamingResponse(
        lines(),
        media_type="application/x-ndjson",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


class VerifyResponse(BaseModel):
    ok: bool = True
    intact: bool
    report: dict[str, Any]
    lastCheckpoint: dict[str, Any] | None = Field(description="the newest signed checkpoint: seq, hash, at")


@router.get(
    "/verify",
    response_model=VerifyResponse,
    summary="Verify the whole hash chain and its signed checkpoints (reads every event: seconds per million)",
)
async def verify_audit(
    principal: Annotated[Principal, Depends(require_staff)], service: Audit
) -> VerifyResponse:
    reports = await service.verify(principal.tenant_id)
    report = (
        reports[0].to_json() if reports else {"tenantId": principal.tenant_id, "intact": True, "checked": 0}
    )
    checkpoints = await service.all_checkpoints(principal.tenant_id)
    newest = max(checkpoints, key=lambda c: c.seq, default=None)
    return VerifyResponse(
        intact=bool(report.get("intact")),
        report=report,
        lastCheckpoint=None
        if newest is None
        else {"seq": newest.seq, "hash": newest.hash, "at": iso(newest.at)},
    )


class AuditEventResponse(BaseModel):
    ok: bool = True
    event: dict[str, Any] = Field(description="the event with its metadata in full")


@router.get(
    "/{seq}",
    response_model=AuditEventResponse,
    summary="One audit event, in full (what a list row's `detail` names)",
    responses={304: {"description": "not modified (the ETag is the event's hash: events never change)"}},
)
async def audit_event(
    seq: Annotated[int, Path(ge=1)], request: Request, principal: AuditReader, events: Events
) -> Response:
    page = await events.query(principal.tenant_id, AuditQuery(after_seq=seq - 1, limit=1))
    event = page.events[0] if page.events and page.events[0].seq == seq else None
    if event is None:
        raise NotFound(f"no audit event {seq} in this studio")
    headers = etag_headers(event.hash, cache_control=IMMUTABLE)
    if (unchanged := not_modified(request, headers)) is not None:
        return unchanged
    return json_response({"ok": True, "event": event_json(event, full=True)}, headers=headers)
