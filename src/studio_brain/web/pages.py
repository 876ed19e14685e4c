"""The cockpit: server-rendered staff pages (Jinja2 + vendored htmx), their form posts, and static files.

Every page needs a staff session; without one it answers a friendly 401 page, never JSON. Forms post back
here and are checked against cross-site requests twice: the Origin (or Referer) must be this site, and a
per-session form token must match. Pages read through the Brain's services and stores; where an area is
not wired on this brain the page says so instead of failing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from studio_brain import __version__
from studio_brain.adapters.keys import Ed25519Verifier
from studio_brain.bootstrap import Brain
from studio_brain.domain.audit import GENESIS_HASH, ApprovalState, AuditEvent, AuditQuery
from studio_brain.domain.capabilities import Risk
from studio_brain.domain.errors import (
    Conflict,
    ConnectorError,
    InputInvalid,
    NotFound,
    PolicyRefused,
    StudioBrainError,
    Unauthenticated,
)
from studio_brain.domain.identity import AuthMethod, Principal
from studio_brain.domain.proposals import Event, Proposal, Status, can
from studio_brain.logging import get_logger
from studio_brain.ports.gateway import ProposalFilter
from studio_brain.services.audit import AuditService, VerifyReport, judge_checkpoints, verify_chain
from studio_brain.services.connectors import ConnectorHealthService
from studio_brain.services.gateway import GatewayService
from studio_brain.web import pages_view as view
from studio_brain.web.auth import SESSION_COOKIE, current_principal_or_none, get_authenticator
from studio_brain.web.deps import get_request_id

log = get_logger("studio_brain.web.pages")

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
TEMPLATES = Jinja2Templates(directory=HERE / "templates")
CSRF_FIELD = "csrf_token"

NAV_ITEMS: tuple[tuple[str, str, str], ...] = (
    ("/", "Today", "today"),
    ("/proposals", "Proposals", "proposals"),
    ("/audit", "Audit", "audit"),
    ("/connectors", "Connectors", "connectors"),
    ("/policy", "Policy", "policy"),
)

router = APIRouter(include_in_schema=False)


def _brain(request: Request) -> Brain:
    brain: Brain = request.app.state.brain
    return brain


# --- templates -------------------------------------------------------------------------------------


def _static_url(name: str) -> str:
    # a version query so browsers refetch after an upgrade while caching hard in between
    return f"/static/{name}?v={__version__}"


TEMPLATES.env.globals["static"] = _static_url
TEMPLATES.env.globals["reason_words"] = view.reason_words
TEMPLATES.env.globals["refusal_code"] = view.refusal_code
TEMPLATES.env.filters["short_hash"] = view.short_hash
TEMPLATES.env.filters["number"] = view.format_number
TEMPLATES.env.filters["reading"] = view.reading
TEMPLATES.env.globals["parse_iso"] = view.parse_iso


@dataclass(frozen=True, kw_only=True, slots=True)
class Flash:
    text: str
    #: "ok" | "warn" | "bad" | "info"
    tone: str = "info"


@dataclass(frozen=True, kw_only=True, slots=True)
class PageContext:
    """Who is looking, at which studio: what every page needs besides its own data."""

    principal: Principal
    tenant: str
    tenants: list[str]
    csrf_token: str


def _local_time(brain: Brain) -> Any:
    zone = brain.settings.zone

    def local(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        if value is None:
            return "—"
        return value.astimezone(zone).strftime(fmt)

    return local


def render(
    request: Request,
    template: str,
    *,
    page: PageContext | None,
    title: str,
    nav: str = "",
    status_code: int = 200,
    flashes: list[Flash] | None = None,
    **data: Any,
) -> HTMLResponse:
    brain = _brain(request)
    tenant_query = ""
    if page is not None and len(page.tenants) > 1:
        tenant_query = "?" + urlencode({"tenant": page.tenant})
    context: dict[str, Any] = {
        "page_title": title,
        "nav": nav,
        "nav_items": NAV_ITEMS,
        "principal": page.principal if page else None,
        "tenant": page.tenant if page else brain.tenant_id,
        "tenants": page.tenants if page else [],
        "tenant_query": tenant_query,
        "tenant_amp": tenant_query.replace("?", "&", 1),
        "csrf_token": page.csrf_token if page else "",
        "flashes": flashes or [],
        "version": __version__,
        "timezone": brain.settings.timezone,
        "local": _local_time(brain),
        **data,
    }
    response = TEMPLATES.TemplateResponse(request, template, context, status_code=status_code)
    # pages show tenant data: never cache them, never let another site frame them
    response.headers["cache-control"] = "no-store"
    response.headers.setdefault("x-frame-options", "DENY")
    # same-origin (not no-referrer): a browser then sends a real Origin on form posts, which the
    # cross-site check below relies on; other sites still learn nothing
    response.headers["referrer-policy"] = "same-origin"
    return response


# --- who is looking --------------------------------------------------------------------------------


def _login_page(request: Request, *, heading: str, message: str, status_code: int) -> HTMLResponse:
    return render(
        request,
        "login_required.html",
        page=None,
        title=heading,
        heading=heading,
        message=message,
        status_code=status_code,
    )


def csrf_token_for(request: Request) -> str:
    """The form token of this session: an HMAC of the session cookie under a key only the server holds.

    A cross-site page can neither read the HttpOnly cookie nor the key, so it cannot forge the token.
    Callers without a cookie (admin-token header, Bearer) send no ambient credential and need none.
    """
    cookie = request.cookies.get(SESSION_COOKIE, "")
    if not cookie:
        return ""
    secret = get_authenticator(request).admin_token.get_secret_value().encode()
    key = hmac.new(secret, b"studio-brain/csrf/v1", hashlib.sha256).digest()
    return hmac.new(key, cookie.encode(), hashlib.sha256).hexdigest()


async def _known_tenants(brain: Brain, principal: Principal) -> list[str]:
    """The studios this person may look at: their own, plus every tenant with data for an admin."""
    tenants = {principal.tenant_id}
    events = brain.events
    if principal.is_admin and events is not None:
        try:
            tenants.update(await events.tenants())
        except StudioBrainError as err:
            log.warning("cockpit.tenants.unavailable", error=err.message)
    return sorted(tenants)


async def staff_page(request: Request) -> PageContext | HTMLResponse:
    """The page context for a staff member, or the friendly page that explains why not (401/403)."""
    try:
        principal = await current_principal_or_none(request)
    except Unauthenticated as err:
        return _login_page(request, heading="Please sign in again", message=err.message, status_code=401)
    if principal is None:
        return _login_page(
            request, heading="Sign in to the cockpit", message="You are not signed in.", status_code=401
        )
    if not principal.is_staff:
        return _login_page(
            request,
            heading="Staff only",
            message="You are signed in, but the cockpit needs a staff account.",
            status_code=403,
        )
    tenants = await _known_tenants(_brain(request), principal)
    asked = request.query_params.get("tenant")
    tenant = asked if asked in tenants else principal.tenant_id
    return PageContext(
        principal=principal, tenant=tenant, tenants=tenants, csrf_token=csrf_token_for(request)
    )


def _same_origin(request: Request) -> bool:
    """The form was posted from a page of this site (Origin, else Referer); a missing pair fails."""
    here = f"{request.url.scheme}://{request.url.netloc}"
    origin = request.headers.get("origin")
    if origin is not None:
        return origin == here
    referer = request.headers.get("referer")
    if referer is None:
        return False
    parts = urlsplit(referer)
    return f"{parts.scheme}://{parts.netloc}" == here


async def form_post(request: Request) -> tuple[PageContext, Mapping[str, str]] | HTMLResponse:
    """A staff form post that passed the cross-site checks, with its fields; else the refusal page."""
    page = await staff_page(request)
    if isinstance(page, HTMLResponse):
        return page
    form = await request.form()
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    if page.principal.via is AuthMethod.SESSION:
        sent = fields.get(CSRF_FIELD, "")
        if not _same_origin(request) or not sent or not hmac.compare_digest(sent, page.csrf_token):
            log.warning("cockpit.csrf.refused", path=request.url.path, actor_id=page.principal.actor_id)
            return render(
                request,
                "error.html",
                page=page,
                title="Form refused",
                heading="Form refused",
                message=view.reason_words("CSRF_FAILED"),
                status_code=403,
            )
    return page, fields


def redirect_with(path: str, page: PageContext, **params: str) -> RedirectResponse:
    """Post/redirect/get: back to a page, carrying a short outcome code to show once."""
    query = {k: v for k, v in params.items() if v}
    if len(page.tenants) > 1:
        query["tenant"] = page.tenant
    suffix = ("?" + urlencode(query)) if query else ""
    return RedirectResponse(path + suffix, status_code=303)


# --- static files ----------------------------------------------------------------------------------


@router.get("/static/{name:path}")
async def static_file(name: str) -> Response:
    """The cockpit's own CSS and the vendored htmx; nothing outside ``web/static`` is reachable."""
    root = STATIC_DIR.resolve()
    target = (root / name).resolve()
    if (
        not target.is_relative_to(root)
        or not target.is_file()
        or target.suffix not in {".css", ".js", ".txt"}
    ):
        return Response("not found", status_code=404, media_type="text/plain")
    response = FileResponse(target)
    response.headers["cache-control"] = "public, max-age=86400"
    return response


# --- Today -----------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
async def today_page(request: Request) -> Response:
    page = await staff_page(request)
    if isinstance(page, HTMLResponse):
        return page
    brain = _brain(request)
    store = brain.state_store
    now = brain.clock.now()
    today = await store.latest_snapshot(page.tenant)
    data: dict[str, Any] = {"today": None, "pending_count": await _pending_count(brain, page)}
    if today is not None:
        day = today.snapshot_date
        history = await store.history(page.tenant, day - timedelta(days=view.SPARKLINE_DAYS - 1), day)
        yesterday = next((run for run in history if run.snapshot_date == day - timedelta(days=1)), None)
        rows = view.metric_rows(today, yesterday, history)
        freshness = view.freshness_badge(
            today, now=now, max_age_minutes=brain.settings.snapshot_max_age_minutes
        )
        sections = [
            (section, title, [r for r in rows if r.section == section])
            for section, title in view.METRIC_SECTIONS
            if any(r.section == section for r in rows)
        ]
        data.update(
            today=today,
            yesterday=yesterday,
            sections=sections,
            completeness=view.completeness_badge(today),
            freshness=freshness,
            warnings=view.snapshot_warnings(
                today,
                yesterday,
                expected_today=now.astimezone(brain.settings.zone).date(),
                stale=freshness.tone == "bad",
            ),
        )
    return render(request, "today.html", page=page, title="Today", nav="today", **data)


async def _pending_count(brain: Brain, page: PageContext) -> int | None:
    """How many proposals wait for an approval (None when there is no gateway or another studio is shown)."""
    if brain.gateway is None or page.tenant != page.principal.tenant_id:
        return None
    waiting = await brain.gateway.list_proposals(
        page.principal, ProposalFilter(status=Status.PENDING_APPROVAL, limit=PROPOSALS_PAGE_SIZE)
    )
    return len(waiting)


# --- Audit -----------------------------------------------------------------------------------------

AUDIT_PAGE_SIZE = 50


def _approval_tone(state: str) -> str:
    return {"approved": "ok", "exempt": "info", "rejected": "bad", "required": "warn"}.get(state, "muted")


TEMPLATES.env.globals["approval_tone"] = _approval_tone


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _seq(raw: str | None) -> int | None:
    if raw is None or not raw.isdigit() or len(raw) > 18:
        return None
    return int(raw)


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(request: Request) -> Response:
    page = await staff_page(request)
    if isinstance(page, HTMLResponse):
        return page
    brain = _brain(request)
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
    result = await events.query(page.tenant, query)
    rows = list(result.events)
    more = len(rows) > AUDIT_PAGE_SIZE
    rows = rows[:AUDIT_PAGE_SIZE]
    if not query.newest_first:
        rows.reverse()
    base = {k: v for k, v in filters.items() if v}
    if len(page.tenants) > 1:
        base["tenant"] = page.tenant
    at_newest = before is None and (after is None or not more)
    older_exists = more if query.newest_first else bool(rows)
    data: dict[str, Any] = {
        "events": rows,
        "filters": filters,
        "approval_states": _APPROVAL_VALUES,
        "verification": await _verification(brain, page.tenant),
        "page_older": f"/audit?{urlencode({**base, 'before': rows[-1].seq})}"
        if rows and older_exists
        else "",
        "page_newer": "" if at_newest or not rows else f"/audit?{urlencode({**base, 'after': rows[0].seq})}",
        "page_newest": "" if before is None and after is None else f"/audit?{urlencode(base)}",
    }
    template = "_audit_results.html" if _is_htmx(request) else "audit.html"
    return render(request, template, page=page, title="Audit", nav="audit", **data)


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
async def audit_verify(request: Request) -> Response:
    """Verify the whole chain now (may take seconds on a long log), then show the audit page."""
    posted = await form_post(request)
    if isinstance(posted, HTMLResponse):
        return posted
    page, _ = posted
    badge = await _verification(_brain(request), page.tenant, full=True)
    log.info("cockpit.audit.verified", actor_id=page.principal.actor_id, result=badge.text)
    return redirect_with("/audit", page)


# --- Connectors ------------------------------------------------------------------------------------

_HEALTH_TONES = {"healthy": "ok", "degraded": "warn", "down": "bad", "not_configured": "muted"}
_BREAKER_TONES = {"closed": "ok", "half_open": "warn", "open": "bad"}
_BREAKER_WORDS = {
    "closed": "Calls flow normally.",
    "half_open": "Recovering: one trial call is let through to see whether the device is back.",
    "open": "Paused after repeated failures; calls are refused until the cool-down ends.",
}
TEMPLATES.env.globals["health_tone"] = lambda status: _HEALTH_TONES.get(status, "muted")
TEMPLATES.env.globals["breaker_tone"] = lambda state: _BREAKER_TONES.get(state, "muted")
TEMPLATES.env.globals["breaker_words"] = lambda state: _BREAKER_WORDS.get(state, "")


def _connectors(brain: Brain) -> ConnectorHealthService | None:
    return brain.connector_health


def _connectors_unavailable(request: Request, page: PageContext) -> HTMLResponse:
    return render(
        request,
        "connectors.html",
        page=page,
        title="Connectors",
        nav="connectors",
        unavailable=True,
        what="Connector health",
        why="This brain was started without its connector service.",
    )


@router.get("/connectors", response_class=HTMLResponse)
async def connectors_page(request: Request) -> Response:
    page = await staff_page(request)
    if isinstance(page, HTMLResponse):
        return page
    service = _connectors(_brain(request))
    if service is None:
        return _connectors_unavailable(request, page)
    health = await service.latest()
    # devices are read live from each device, which can take seconds: htmx loads them after the page;
    # without JavaScript the link asks for them in the page itself
    readings = await service.read_devices() if request.query_params.get("devices") == "1" else None
    flashes = [Flash(text="Health checked just now.", tone="ok")] if request.query_params.get("done") else []
    return render(
        request,
        "connectors.html",
        page=page,
        title="Connectors",
        nav="connectors",
        health=health,
        readings=readings,
        flashes=flashes,
    )


@router.get("/connectors/devices", response_class=HTMLResponse)
async def connector_devices(request: Request) -> Response:
    page = await staff_page(request)
    if isinstance(page, HTMLResponse):
        return page
    service = _connectors(_brain(request))
    if service is None:
        return _connectors_unavailable(request, page)
    readings = await service.read_devices()
    return render(request, "_devices.html", page=page, title="Devices", readings=readings)


@router.post("/connectors/check")
async def connectors_check(request: Request) -> Response:
    posted = await form_post(request)
    if isinstance(posted, HTMLResponse):
        return posted
    page, _ = posted
    service = _connectors(_brain(request))
    if service is None:
        return _connectors_unavailable(request, page)
    await service.check_all()
    log.info("cockpit.connectors.checked", actor_id=page.principal.actor_id)
    return redirect_with("/connectors", page, done="checked")


# --- Proposals -------------------------------------------------------------------------------------

PROPOSALS_PAGE_SIZE = 100
_STATUS_TONES = {
    "draft": "muted",
    "pending_approval": "warn",
    "approved": "info",
    "executing": "info",
    "executed": "ok",
    "failed": "bad",
    "outcome_unknown": "bad",
    "rejected": "muted",
    "expired": "muted",
    "cancelled": "muted",
}
_RISK_TONES = {"low": "ok", "medium": "info", "high": "warn", "critical": "bad"}
TEMPLATES.env.globals["status_tone"] = lambda status: _STATUS_TONES.get(status, "muted")
TEMPLATES.env.globals["risk_tone"] = lambda risk: _RISK_TONES.get(risk, "muted")


@dataclass(frozen=True, kw_only=True, slots=True)
class Refusal:
    """A refused action in plain words, with its reason code kept for the record."""

    code: str
    words: str
    detail: str = ""

    @classmethod
    def of(cls, err: StudioBrainError) -> Refusal:
        code = getattr(err, "reason_code", None) or err.code
        words = view.reason_words(code, err.message)
        return cls(code=code, words=words, detail="" if err.message in words else err.message)


def _gateway(brain: Brain) -> GatewayService | None:
    return brain.gateway


def _gateway_unavailable(request: Request, page: PageContext, template: str, title: str) -> HTMLResponse:
    return render(
        request,
        template,
        page=page,
        title=title,
        nav=template.removesuffix(".html"),
        unavailable=True,
        what="The capability gateway",
        why="This brain was started without it, so there are no proposals or policies to show.",
    )


def _other_tenant(request: Request, page: PageContext, title: str, nav: str) -> HTMLResponse | None:
    """Proposals and policy are scoped to the signed-in studio: say so rather than show the wrong one."""
    if page.tenant == page.principal.tenant_id:
        return None
    return render(
        request,
        "error.html",
        page=page,
        title=title,
        nav=nav,
        heading=title,
        tone="info",
        message=(
            f"{title} of {page.tenant} are managed by a cockpit signed in for that studio; "
            f"you are signed in for {page.principal.tenant_id}."
        ),
    )


def _risk_of(gateway: GatewayService) -> Any:
    def risk_of(capability_id: str) -> str:
        capability = gateway.registry.get(capability_id)
        return capability.risk.value if capability is not None else "unknown"

    return risk_of


@router.get("/proposals", response_class=HTMLResponse)
async def proposals_page(request: Request) -> Response:
    page = await staff_page(request)
    if isinstance(page, HTMLResponse):
        return page
    gateway = _gateway(_brain(request))
    if gateway is None:
        return _gateway_unavailable(request, page, "proposals.html", "Proposals")
    other = _other_tenant(request, page, "Proposals", "proposals")
    if other is not None:
        return other
    params = request.query_params
    capabilities = gateway.capabilities()
    ids = [c.id for c in capabilities]
    statuses = [s.value for s in Status]
    risks = [r.value for r in Risk]
    filters = {
        "status": params.get("status", "") if params.get("status") in statuses else "",
        "capability": params.get("capability", "") if params.get("capability") in ids else "",
        "risk": params.get("risk", "") if params.get("risk") in risks else "",
    }
    found = await gateway.list_proposals(
        page.principal,
        ProposalFilter(
            status=Status(filters["status"]) if filters["status"] else None,
            capability_id=filters["capability"] or None,
            limit=PROPOSALS_PAGE_SIZE,
        ),
    )
    risk_of = _risk_of(gateway)
    shown = [p for p in found if not filters["risk"] or risk_of(p.capability_id) == filters["risk"]]
    return render(
        request,
        "proposals.html",
        page=page,
        title="Proposals",
        nav="proposals",
        proposals=shown,
        truncated=len(found) >= PROPOSALS_PAGE_SIZE,
        filters=filters,
        statuses=statuses,
        risks=risks,
        capability_ids=ids,
        risk_of=risk_of,
    )


async def _proposal_timeline(brain: Brain, proposal: Proposal) -> list[AuditEvent]:
    """Every audit event of the proposal's correlation, oldest first (refusals included)."""
    events = brain.events
    if events is None:
        return []
    result = await events.query(
        proposal.tenant_id, AuditQuery(correlation_id=proposal.correlation_id, limit=500)
    )
    return list(result.events)


async def _proposal_view(
    request: Request,
    page: PageContext,
    gateway: GatewayService,
    proposal_id: str,
    *,
    refusal: Refusal | None = None,
    flashes: list[Flash] | None = None,
    form: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    try:
        proposal = await gateway.get(page.principal, proposal_id)
    except NotFound:
        return render(
            request,
            "error.html",
            page=page,
            title="Proposal not found",
            nav="proposals",
            heading="Proposal not found",
            message=f"There is no proposal {proposal_id} in {page.principal.tenant_id}.",
            status_code=404,
        )
    brain = _brain(request)
    capability = gateway.registry.get(proposal.capability_id)
    status = proposal.status
    approved_already = any(a.approver_id == page.principal.actor_id for a in proposal.approvals)
    # the gateway refuses self-approval (SELF_APPROVAL_FORBIDDEN); the page does not offer it either
    own = proposal.requested_by == page.principal.actor_id
    return render(
        request,
        "proposal.html",
        page=page,
        title=f"Proposal {proposal.capability_id}",
        nav="proposals",
        status_code=status_code,
        flashes=flashes,
        p=proposal,
        capability=capability,
        capability_approvals=capability.approvals_required if capability else 1,
        risk=capability.risk.value if capability else "unknown",
        binding=proposal.binding(),
        input_json=json.dumps(proposal.input, indent=2, sort_keys=True, ensure_ascii=False),
        result_json=json.dumps(proposal.result, indent=2, sort_keys=True, ensure_ascii=False),
        timeline=await _proposal_timeline(brain, proposal),
        refusal=refusal,
        form=form or {},
        # offer only what the state machine allows; the gateway still decides (and explains) the rest
        can_approve=can(status, Event.APPROVE) and not approved_already and not own,
        own=own and can(status, Event.APPROVE),
        can_reject=can(status, Event.REJECT),
        can_execute=status is Status.APPROVED
        or (
            status is Status.PENDING_APPROVAL and capability is not None and not capability.requires_approval
        ),
        can_cancel=can(status, Event.CANCEL) and proposal.requested_by == page.principal.actor_id,
    )


@router.get("/proposals/{proposal_id}", response_class=HTMLResponse)
async def proposal_page(request: Request, proposal_id: str) -> Response:
    page = await staff_page(request)
    if isinstance(page, HTMLResponse):
        return page
    gateway = _gateway(_brain(request))
    if gateway is None:
        return _gateway_unavailable(request, page, "proposals.html", "Proposals")
    done = request.query_params.get("done", "")
    flashes = [Flash(text=_DONE_WORDS[done], tone="ok")] if done in _DONE_WORDS else []
    return await _proposal_view(request, page, gateway, proposal_id, flashes=flashes)


_DONE_WORDS = {
    "approved": "Approval recorded.",
    "rejected": "Proposal rejected.",
    "executed": "Executed. The result and its output hash are below and in the audit log.",
    "cancelled": "Proposal cancelled.",
    "killswitch-on": "The kill switch is ON: nothing will be executed until it is turned off.",
    "killswitch-off": "The kill switch is off: approved proposals may execute again.",
    "exemption-created": "Exemption added.",
    "exemption-revoked": "Exemption revoked.",
}

_MAX_RATIONALE = 2000


@router.post("/proposals/{proposal_id}/{action}")
async def proposal_action(request: Request, proposal_id: str, action: str) -> Response:
    """Approve, reject, cancel or execute from the detail page; a refusal re-renders it with the reason."""
    posted = await form_post(request)
    if isinstance(posted, HTMLResponse):
        return posted
    page, fields = posted
    gateway = _gateway(_brain(request))
    if gateway is None:
        return _gateway_unavailable(request, page, "proposals.html", "Proposals")
    if action not in {"approve", "reject", "cancel", "execute"}:
        return Response("not found", status_code=404, media_type="text/plain")
    rationale = fields.get("rationale", "")[:_MAX_RATIONALE]
    request_id = get_request_id(request)
    principal = page.principal
    if action == "execute" and fields.get("confirm") != "yes":
        refusal = Refusal(code="CONFIRMATION_REQUIRED", words=view.reason_words("CONFIRMATION_REQUIRED"))
        return await _proposal_view(request, page, gateway, proposal_id, refusal=refusal, status_code=400)
    try:
        match action:
            case "approve":
                await gateway.approve(principal, proposal_id, rationale, request_id=request_id)
                done = "approved"
            case "reject":
                await gateway.reject(principal, proposal_id, rationale, request_id=request_id)
                done = "rejected"
            case "cancel":
                await gateway.cancel(principal, proposal_id, rationale, request_id=request_id)
                done = "cancelled"
            case _:
                await gateway.execute(principal, proposal_id, request_id=request_id)
                done = "executed"
    except (PolicyRefused, Conflict, InputInvalid, ConnectorError) as err:
        log.info(
            "cockpit.proposal.refused", action=action, proposal_id=proposal_id, code=Refusal.of(err).code
        )
        form = {f"rationale_{action}": rationale}
        return await _proposal_view(
            request, page, gateway, proposal_id, refusal=Refusal.of(err), form=form, status_code=409
        )
    except NotFound:
        return await _proposal_view(request, page, gateway, proposal_id)
    return redirect_with(f"/proposals/{proposal_id}", page, done=done)


# --- Policy ----------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class KillSwitchView:
    enabled: bool
    rationale: str = ""
    updated_by: str = ""
    updated_at: datetime | None = None


async def _policy_view(
    request: Request,
    page: PageContext,
    gateway: GatewayService,
    *,
    refusal: Refusal | None = None,
    flashes: list[Flash] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    entries = await gateway.kill_switch(page.principal)
    state = await gateway.kill_switch_state(page.principal)
    global_entry = next((e for e in entries if e.scope == "*"), None)
    kill = KillSwitchView(
        # an unreadable switch counts as on (the gateway fails closed), so the page says so too
        enabled=state.global_on or state.unreadable,
        rationale=global_entry.rationale if global_entry else "",
        updated_by=global_entry.updated_by if global_entry else "",
        updated_at=global_entry.updated_at if global_entry else None,
    )
    exemptions = sorted(await gateway.exemptions(page.principal), key=lambda x: x.created_at, reverse=True)
    return render(
        request,
        "policy.html",
        page=page,
        title="Policy",
        nav="policy",
        status_code=status_code,
        flashes=flashes,
        refusal=refusal,
        kill=kill,
        capability_switches=[e for e in entries if e.scope != "*" and e.enabled],
        exemptions=exemptions,
        exemptable=[c for c in gateway.capabilities() if c.exemptable],
        now=_brain(request).clock.now(),
    )


@router.get("/policy", response_class=HTMLResponse)
async def policy_page(request: Request) -> Response:
    page = await staff_page(request)
    if isinstance(page, HTMLResponse):
        return page
    gateway = _gateway(_brain(request))
    if gateway is None:
        return _gateway_unavailable(request, page, "policy.html", "Policy")
    other = _other_tenant(request, page, "Policy", "policy")
    if other is not None:
        return other
    done = request.query_params.get("done", "")
    flashes = [Flash(text=_DONE_WORDS[done], tone="ok")] if done in _DONE_WORDS else []
    return await _policy_view(request, page, gateway, flashes=flashes)


async def _policy_post(
    request: Request,
) -> tuple[PageContext, Mapping[str, str], GatewayService] | HTMLResponse:
    posted = await form_post(request)
    if isinstance(posted, HTMLResponse):
        return posted
    page, fields = posted
    gateway = _gateway(_brain(request))
    if gateway is None:
        return _gateway_unavailable(request, page, "policy.html", "Policy")
    return page, fields, gateway


@router.post("/policy/kill-switch")
async def kill_switch_post(request: Request) -> Response:
    posted = await _policy_post(request)
    if isinstance(posted, HTMLResponse):
        return posted
    page, fields, gateway = posted
    if fields.get("confirm") != "yes":
        refusal = Refusal(code="CONFIRMATION_REQUIRED", words=view.reason_words("CONFIRMATION_REQUIRED"))
        return await _policy_view(request, page, gateway, refusal=refusal, status_code=400)
    enabled = fields.get("enabled") == "on"
    try:
        await gateway.set_kill_switch(
            page.principal, enabled=enabled, rationale=fields.get("rationale", "")[:_MAX_RATIONALE]
        )
    except (PolicyRefused, InputInvalid, Conflict) as err:
        return await _policy_view(request, page, gateway, refusal=Refusal.of(err), status_code=409)
    return redirect_with("/policy", page, done="killswitch-on" if enabled else "killswitch-off")


@router.post("/policy/exemptions")
async def exemption_create(request: Request) -> Response:
    posted = await _policy_post(request)
    if isinstance(posted, HTMLResponse):
        return posted
    page, fields, gateway = posted
    hours = fields.get("hours", "")
    if not hours.isdigit() or not 1 <= int(hours) <= 720:
        refusal = Refusal(code="INPUT_INVALID", words="The exemption must expire after 1 to 720 hours.")
        return await _policy_view(request, page, gateway, refusal=refusal, status_code=400)
    try:
        await gateway.create_exemption(
            page.principal,
            capability_id=fields.get("capability_id", ""),
            justification=fields.get("justification", "")[:_MAX_RATIONALE],
            lifetime=timedelta(hours=int(hours)),
        )
    except (PolicyRefused, InputInvalid, Conflict) as err:
        return await _policy_view(request, page, gateway, refusal=Refusal.of(err), status_code=409)
    return redirect_with("/policy", page, done="exemption-created")


@router.post("/policy/exemptions/{exemption_id}/revoke")
async def exemption_revoke(request: Request, exemption_id: str) -> Response:
    posted = await _policy_post(request)
    if isinstance(posted, HTMLResponse):
        return posted
    page, fields, gateway = posted
    try:
        await gateway.revoke_exemption(
            page.principal, exemption_id, fields.get("reason", "")[:_MAX_RATIONALE]
        )
    except (PolicyRefused, InputInvalid, Conflict, NotFound) as err:
        status = 404 if isinstance(err, NotFound) else 409
        return await _policy_view(request, page, gateway, refusal=Refusal.of(err), status_code=status)
    return redirect_with("/policy", page, done="exemption-revoked")
