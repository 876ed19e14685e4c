"""What every cockpit page shares: templates and rendering, the staff gate, cross-site form checks, wording."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from studio_brain import __version__
from studio_brain.bootstrap import Brain
from studio_brain.domain.errors import (
    StudioBrainError,
    Unauthenticated,
)
from studio_brain.domain.identity import AuthMethod, Principal
from studio_brain.logging import get_logger
from studio_brain.services.gateway import GatewayService
from studio_brain.web import pages_view as view
from studio_brain.web.auth import SESSION_COOKIE, current_principal_or_none, get_authenticator
from studio_brain.web.deps import brain_of as brain_of  # re-exported: the pages import it from here

log = get_logger(__name__)

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
TEMPLATES = Jinja2Templates(directory=HERE / "templates")
CSRF_FIELD = "csrf_token"

NAV_ITEMS: tuple[tuple[str, str, str], ...] = (
    ("/", "Today", "today"),
    ("/drafts", "Drafts", "drafts"),
    ("/proposals", "Proposals", "proposals"),
    ("/trends", "Trends", "trends"),
    ("/audit", "Audit", "audit"),
    ("/connectors", "Connectors", "connectors"),
    ("/safety", "Safety", "safety"),
    ("/brief", "Brief", "brief"),
    ("/policy", "Policy", "policy"),
)


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
    #: the kill-switch banner every page shows while it is ON (issue 14); None when off
    kill_banner: str | None = None


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
    brain = brain_of(request)
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
        "kill_banner": page.kill_banner if page else None,
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
    """The form token of this session: a MAC of the session cookie under a key only the server holds.

    A cross-site page can neither read the HttpOnly cookie nor the key, so it cannot forge the token.
    Callers without a cookie (admin-token header, Bearer) send no ambient credential and need none.
    """
    cookie = request.cookies.get(SESSION_COOKIE, "")
    if not cookie:
        return ""
    # keyed by the random identity key (STUDIO_BRAIN_HOME), never by the admin token (issue 11)
    return get_authenticator(request).identity.credentials.form_token(cookie)


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
    tenants = await _known_tenants(brain_of(request), principal)
    asked = request.query_params.get("tenant")
    tenant = asked if asked in tenants else principal.tenant_id
    from studio_brain.web.pages_attention import kill_switch_banner

    return PageContext(
        principal=principal,
        tenant=tenant,
        tenants=tenants,
        csrf_token=csrf_token_for(request),
        kill_banner=await kill_switch_banner(brain_of(request), principal),
    )


class PageRefused(Exception):
    """Raised by the page dependencies: the friendly page (sign in, staff only, form refused) to answer."""

    def __init__(self, response: HTMLResponse) -> None:
        super().__init__(response.status_code)
        self.response = response


async def page_refused(_request: Request, exc: Exception) -> Response:
    """The app's exception handler for :class:`PageRefused` (installed by ``pages.install``)."""
    assert isinstance(exc, PageRefused)
    return exc.response


async def staff_context(request: Request) -> PageContext:
    """FastAPI dependency: the staff member's page context, or the explaining page (401/403) instead."""
    page = await staff_page(request)
    if isinstance(page, HTMLResponse):
        raise PageRefused(page)
    return page


async def staff_form(request: Request) -> tuple[PageContext, Mapping[str, str]]:
    """FastAPI dependency: a staff form post that passed the cross-site checks, with its fields."""
    posted = await form_post(request)
    if isinstance(posted, HTMLResponse):
        raise PageRefused(posted)
    return posted


#: ``page: StaffPage`` in a page handler: signed-in staff only (issue 20: instead of the gate repeated
#: in every handler); ``posted: StaffForm`` for a form post (same gate plus the cross-site checks)
StaffPage = Annotated[PageContext, Depends(staff_context)]
StaffForm = Annotated[tuple[PageContext, Mapping[str, str]], Depends(staff_form)]


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


# --- shared by the pages ----------------------------------------------------------------------------


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


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


def gateway_of(brain: Brain) -> GatewayService | None:
    return brain.gateway


def gateway_unavailable(request: Request, page: PageContext, template: str, title: str) -> HTMLResponse:
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


def other_tenant(request: Request, page: PageContext, title: str, nav: str) -> HTMLResponse | None:
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


#: outcome codes a post/redirect/get carries in ``?done=``; only these fixed words are ever shown, never
#: text taken from the URL
DONE_WORDS = {
    "approved": "Approval recorded.",
    "submitted-draft": "Draft submitted: this proposal now waits for someone else's approval.",
    "rejected": "Proposal rejected.",
    "executed": "Executed. The result and its output hash are below and in the audit log.",
    "cancelled": "Proposal cancelled.",
    "killswitch-on": "The kill switch is ON: nothing will be executed until it is turned off.",
    "killswitch-off": "The kill switch is off: approved proposals may execute again.",
    "exemption-created": "Exemption added.",
    "exemption-revoked": "Exemption revoked.",
}

#: a rationale longer than this is cut (the gateway and the audit log have their own, larger limits)
MAX_RATIONALE = 2000
