"""The cockpit: its one router (Today, static files, and the routers of ``pages_*``) — issue 7.

Server-rendered with Jinja2 and vendored htmx; ``pages_common`` holds what every page shares,
``pages_view`` the pure display logic, and ``pages_proposals`` / ``pages_audit`` / ``pages_connectors`` /
``pages_policy`` one area each. Every page needs a staff session; without one it answers a friendly 401 page, never JSON. Forms post back
here and are checked against cross-site requests twice: the Origin (or Referer) must be this site, and a
per-session form token must match. Pages read through the Brain's services and stores; where an area is
not wired on this brain the page says so instead of failing.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import PurePosixPath
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

from studio_brain.domain.snapshot import diff_documents
from studio_brain.logging import get_logger
from studio_brain.web import (
    pages_actions,
    pages_audit,
    pages_connectors,
    pages_drafts,
    pages_policy,
    pages_proposals,
    pages_safety,
    pages_trends,
)
from studio_brain.web import pages_view as view
from studio_brain.web.pages_attention import needs_attention
from studio_brain.web.pages_common import (
    STATIC_DIR,
    PageRefused,
    StaffPage,
    brain_of,
    page_refused,
    render,
)

log = get_logger(__name__)

router = APIRouter(include_in_schema=False)


# --- static files ----------------------------------------------------------------------------------


class CockpitStatic(StaticFiles):
    """Starlette's StaticFiles (path checks, ETag, ranges) limited to CSS, JS and text, cached for a day."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if PurePosixPath(path).suffix not in {".css", ".js", ".txt"}:
            return PlainTextResponse("not found", status_code=404)
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["cache-control"] = "public, max-age=86400"
        return response


def install(app: FastAPI) -> None:
    """Mount the static files and answer the page dependencies' refusals (issue 20: one staff gate)."""
    app.mount("/static", CockpitStatic(directory=STATIC_DIR, follow_symlink=False), name="static")
    app.add_exception_handler(PageRefused, page_refused)


# --- Today -----------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
async def today_page(request: Request, page: StaffPage) -> Response:
    brain = brain_of(request)
    store = brain.state_store
    now = brain.clock.now()
    attention = await needs_attention(
        brain, page.principal, tenant=page.tenant, scheduler=getattr(request.app.state, "scheduler", None)
    )
    today = await store.latest_snapshot(page.tenant)
    data: dict[str, Any] = {
        "today": None,
        "pending_count": attention.pending_for_me,
        "attention": attention.sorted(),
    }
    if today is not None:
        day = today.snapshot_date
        history = await store.history(page.tenant, day - timedelta(days=view.SPARKLINE_DAYS - 1), day)
        basis = None
        if brain.state is not None and page.tenant == brain.state.tenant_id:
            # "since yesterday" is measured against yesterday's *close* (issue 14), never a re-read
            since = await brain.state.since_yesterday()
            yesterday, basis, changes = since.baseline, since.basis, since.changes
        else:
            yesterday = next((run for run in history if run.snapshot_date == day - timedelta(days=1)), None)
            changes = diff_documents(yesterday.document, today.document) if yesterday is not None else {}
            basis = f"the last snapshot of {(day - timedelta(days=1)).isoformat()}"
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
            basis=basis,
            summary=view.change_summary(changes, has_baseline=yesterday is not None),
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


for _area in (
    pages_actions,  # /proposals/new before /proposals/{id}
    pages_proposals,
    pages_drafts,
    pages_trends,
    pages_audit,
    pages_connectors,
    pages_safety,
    pages_policy,
):
    router.include_router(_area.router)
del _area
