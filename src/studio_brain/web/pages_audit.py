"""The cockpit's Audit page: keyset-paged, filterable events and the chain verification badge.

By default it shows people and decisions (issue 14): rows written by the system (scheduler runs,
snapshots) are one click away (``?rows=all``). "Why" of an execution is the approved proposal's reason and
its result, not the action's name again; "Verify whole chain now" says what it found.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from studio_brain.adapters.keys import Ed25519Verifier
from studio_brain.bootstrap import Brain
from studio_brain.domain.audit import GENESIS_HASH, ActorType, ApprovalState, AuditEvent, AuditQuery
from studio_brain.logging import get_logger
from studio_brain.ports import EventStore
from studio_brain.services.audit import AuditService, VerifyReport, judge_checkpoints, verify_chain
from studio_brain.web import pages_view as view
from studio_brain.web.pages_common import (
    TEMPLATES,
    Flash,
    StaffForm,
    StaffPage,
    brain_of,
    is_htmx,
    redirect_with,
    render,
)

log = get_logger(__name__)

router = APIRouter(include_in_schema=False)

AUDIT_PAGE_SIZE = 50


def _approval_tone(state: str) -> str:
    return {"approved": "ok", "exempt": "info", "rejected": "bad", "required": "warn"}.get(state, "muted")


TEMPLATES.env.globals["approval_tone"] = _approval_tone

#: a people-only page reads the log in batches of this size, at most this many times
_BATCH, _BATCHES = 200, 10


def why_words(event: AuditEvent) -> str:
    """The "Why" of a row: for an execution, the approved proposal's reason and what came back."""
    record = event.metadata.get("proposal")
    if not event.action.startswith("capability.proposal.execut") and event.action not in {
        "capability.proposal.failed",
        "capability.proposal.outcome_unknown",
    }:
        return event.rationale
    if not isinstance(record, Mapping):
        return event.rationale
    parts = [f"Approved because: {record.get('rationale') or '—'}"]
    result = record.get("result")
    if isinstance(result, Mapping) and result:
        parts.append("Result: " + result_words(result))
    if record.get("error"):
        parts.append(f"Error: {record.get('error')}")
    return " · ".join(parts)


def result_words(result: Mapping[str, Any]) -> str:
    """An execution's result in words: a note's text, a device's answer, else its keys and values."""
    for key in ("text", "message", "answer", "state", "status"):
        value = result.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return f"{key} {value}"
    shown = [f"{k}={v}" for k, v in result.items() if isinstance(v, str | int | float | bool)][:6]
    return ", ".join(shown) or "recorded (see the proposal)"


TEMPLATES.env.globals["why_words"] = why_words


def _seq(raw: str | None) -> int | None:
    if raw is None or not raw.isdigit() or len(raw) > 18:
        return None
    return int(raw)


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(request: Request, page: StaffPage) -> Response:
    brain = brain_of(request)
    events = brain.events
    if events is None:
        return render(
            request,
            "audit.html",
            page=page,
            title="Audit",
            nav="audit",
            unavailable=True,
            what="The audit log",
            why="This brain was started without its event store.",
        )
    params = request.query_params
    filters = {
        "action": params.get("action", "").strip()[:200],
        "actor": params.get("actor", "").strip()[:200],
        "capability": params.get("capability", "").strip()[:200],
        "approval": params.get("approval", "") if params.get("approval") in _APPROVAL_VALUES else "",
        "correlation": params.get("correlation", "").strip()[:200],
    }
    before, after = _seq(params.get("before")), _seq(params.get("after"))
    query = AuditQuery(
        action_prefix=filters["action"] or None,
        actor_id=filters["actor"] or None,
        capability_id=filters["capability"] or None,
        approval_state=ApprovalState(filters["approval"]) if filters["approval"] else None,
        correlation_id=filters["correlation"] or None,
        # newer pages are read oldest-first from their lower bound, then shown newest-first
        after_seq=after if before is None else None,
        before_seq=before,
        newest_first=after is None or before is not None,
        limit=AUDIT_PAGE_SIZE + 1,
    )
    people_only = params.get("rows") != "all"
    rows = (
        await _people_rows(events, page.tenant, query)
        if people_only
        else list((await events.query(page.tenant, query)).events)
    )
    more = len(rows) > AUDIT_PAGE_SIZE
    rows = rows[:AUDIT_PAGE_SIZE]
    if not query.newest_first:
        rows.reverse()
    base = {k: v for k, v in filters.items() if v}
    if not people_only:
        base["rows"] = "all"
    if len(page.tenants) > 1:
        base["tenant"] = page.tenant
    at_newest = before is None and (after is None or not more)
    older_exists = more if query.newest_first else bool(rows)
    data: dict[str, Any] = {
        "events": rows,
        "filters": filters,
        "people_only": people_only,
        "rows_toggle": f"/audit?{urlencode({**{k: v for k, v in base.items() if k != 'rows'}, **({} if not people_only else {'rows': 'all'})})}",
        "approval_states": _APPROVAL_VALUES,
        "verification": await _verification(brain, page.tenant),
        "page_older": f"/audit?{urlencode({**base, 'before': rows[-1].seq})}"
        if rows and older_exists
        else "",
        "page_newer": "" if at_newest or not rows else f"/audit?{urlencode({**base, 'after': rows[0].seq})}",
        "page_newest": "" if before is None and after is None else f"/audit?{urlencode(base)}",
    }
    flashes = []
    if params.get("done") == "verified":
        badge = data["verification"]
        flashes.append(Flash(text=f"Whole chain verified just now: {badge.text}.", tone=badge.tone))
    template = "_audit_results.html" if is_htmx(request) else "audit.html"
    return render(request, template, page=page, title="Audit", nav="audit", flashes=flashes, **data)


async def _people_rows(events: EventStore, tenant: str, query: AuditQuery) -> list[AuditEvent]:
    """Up to ``query.limit`` rows not written by the system, read in batches (keyset on seq)."""
    wanted = query.limit
    batch_query = replace(query, limit=_BATCH)
    found: list[AuditEvent] = []
    for _ in range(_BATCHES):
        batch = list((await events.query(tenant, batch_query)).events)
        found.extend(e for e in batch if e.actor_type is not ActorType.SYSTEM)
        if len(found) >= wanted or len(batch) < _BATCH:
            break
        last = batch[-1].seq
        batch_query = (
            replace(batch_query, before_seq=last)
            if batch_query.newest_first
            else replace(batch_query, after_seq=last)
        )
    return found[:wanted]


_APPROVAL_VALUES = [state.value for state in ApprovalState]


#: events verified during a page load; a longer unverified stretch waits for "Verify now"
VERIFY_INLINE_MAX = 5_000
#: how long a verified position is trusted before the whole chain is checked again
VERIFIED_TTL_SECONDS = 24 * 3600


def _verified_key(tenant: str) -> str:
    return f"cockpit:audit-verified:{tenant}"


async def _verify_from(
    brain: Brain, audit: AuditService, tenant: str, *, start: int, anchor: str, to_seq: int
) -> VerifyReport:
    trusted_keys = {audit.public_key}
    checkpoints = [c for c in await audit.all_checkpoints(tenant) if c.seq >= start]
    assert brain.events is not None
    return await verify_chain(
        tenant,
        brain.events.stream(tenant, from_seq=start, to_seq=to_seq),
        checkpoints=checkpoints,
        verifier=Ed25519Verifier(),
        trusted_keys=trusted_keys,
        first_seq=start,
        anchor_hash=anchor,
        keyring=audit.keyring,  # issue 12: the badge checks MACs too
    )


async def _verification(brain: Brain, tenant: str, *, full: bool = False) -> view.Badge:
    """The chain's status in one badge: "intact up to seq N", plus the last checkpoint's time.

    Verification is incremental: the position this process last verified (kept in the cache with the
    time of the full check) is the anchor for the new events. A page load verifies at most
    :data:`VERIFY_INLINE_MAX` events so pages stay fast on a long log; beyond that it asks for "Verify now".
    """
    audit, events = brain.audit, brain.events
    if audit is None or events is None:
        return view.Badge(text="Verification unavailable", tone="muted")
    head = await events.head(tenant)
    if head is None:
        return view.Badge(text="No events yet", tone="muted")
    checkpoints = await audit.all_checkpoints(tenant)
    trusted, _ = judge_checkpoints(checkpoints, Ed25519Verifier(), {audit.public_key})
    last_checkpoint = (
        f"last checkpoint at {trusted[-1].at.astimezone(brain.settings.zone):%Y-%m-%d %H:%M} (seq {trusted[-1].seq})"
        if trusted
        else "no signed checkpoint yet"
    )
    known: dict[str, Any] | None = None if full else await brain.cache.get(_verified_key(tenant))
    if known is not None and known.get("broken"):
        return view.Badge(text=known["broken"], tone="bad", detail=last_checkpoint)
    start, anchor = 1, GENESIS_HASH
    checked_at = brain.clock.now()
    if known is not None and known["seq"] <= head.seq:
        start, anchor, checked_at = known["seq"] + 1, known["hash"], datetime.fromisoformat(known["fullAt"])
    if head.seq - start + 1 > VERIFY_INLINE_MAX and not full:
        upto = f"intact up to seq {known['seq']}; " if known else ""
        return view.Badge(
            text="Verification pending",
            tone="warn",
            detail=f"{upto}{head.seq - start + 1:,} newer events not yet verified · {last_checkpoint}",
        )
    if start <= head.seq:
        report = await _verify_from(brain, audit, tenant, start=start, anchor=anchor, to_seq=head.seq)
        if report.problem is not None:
            broken = f"Chain broken at seq {report.problem.seq} ({report.problem.kind})"
            await brain.cache.set(_verified_key(tenant), {"broken": broken}, ttl_seconds=300)
            log.warning("cockpit.audit.chain_broken", tenant_id=tenant, seq=report.problem.seq)
            return view.Badge(text=broken, tone="bad", detail=f"{report.problem.detail} · {last_checkpoint}")
        assert report.last_seq is not None
        assert report.last_hash is not None
        await brain.cache.set(
            _verified_key(tenant),
            {"seq": report.last_seq, "hash": report.last_hash, "fullAt": checked_at.isoformat()},
            ttl_seconds=VERIFIED_TTL_SECONDS,
        )
    return view.Badge(
        text=f"Chain intact up to seq {head.seq}",
        tone="ok",
        detail=f"{last_checkpoint} · whole chain checked {checked_at.astimezone(brain.settings.zone):%Y-%m-%d %H:%M}",
    )


@router.post("/audit/verify")
async def audit_verify(request: Request, posted: StaffForm) -> Response:
    """Verify the whole chain now (may take seconds on a long log), then show the audit page."""
    page, _ = posted
    badge = await _verification(brain_of(request), page.tenant, full=True)
    log.info("cockpit.audit.verified", actor_id=page.principal.actor_id, result=badge.text)
    return redirect_with("/audit", page, done="verified")


#: Today's Needs attention shows the same incremental verification as this page
chain_verification = _verification
