"""The cockpit's Safety page (findings, notifications and their delivery, targets with masked URLs) and
the Brief page (today's morning brief, composed now) — issue 17."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from studio_brain.web.pages_common import StaffPage, brain_of, render

router = APIRouter(include_in_schema=False)

_SEVERITY_TONES = {"high": "bad", "medium": "warn", "low": "info", "info": "muted"}
_STATUS_TONES = {"sent": "ok", "pending": "warn", "failed": "bad", "open": "bad", "resolved": "ok"}


@router.get("/safety", response_class=HTMLResponse)
async def safety_page(request: Request, page: StaffPage) -> Response:
    brain = brain_of(request)
    open_findings = await brain.safety.findings(status="open", limit=100)
    # the latest watch run says whether the kiln rules could read the firings (a blind watch is shown)
    last_runs = await brain.state_store.recent_jobs(brain.tenant_id, job="safety-watch", limit=1)
    last_run = last_runs[0] if last_runs else None
    recent = [f for f in await brain.safety.findings(limit=50) if f.status.value != "open"]
    return render(
        request,
        "safety.html",
        page=page,
        title="Safety",
        nav="safety",
        open_findings=open_findings,
        recent_findings=recent[:20],
        notifications=await brain.notifications.recent(limit=50),
        targets=brain.notifications.targets(),
        quiet=brain.settings.notify_quiet_hours or "none",
        hours=brain.settings.studio_hours,
        rules=brain.safety.table,
        last_run=last_run,
        firings_error=(last_run.summary or {}).get("firingsError") if last_run else None,
        unconfigured=(last_run.summary or {}).get("unconfigured") or [] if last_run else [],
        severity_tone=_SEVERITY_TONES,
        status_tone=_STATUS_TONES,
    )


@router.get("/brief", response_class=HTMLResponse)
async def brief_page(request: Request, page: StaffPage) -> Response:
    brain = brain_of(request)
    brief = await brain.brief.compose()
    return render(
        request,
        "brief.html",
        page=page,
        title="Morning brief",
        nav="brief",
        brief=brief,
        schedule=brain.settings.schedule_morning_brief,
    )
