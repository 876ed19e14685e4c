"""Liveness and readiness: GET /healthz and GET /readyz (shape from the Portal contract).

Both answer anyone; /readyz tells an anonymous caller only ok / not ok per check, and staff (or the admin
token) the details. No body names the database server: its errors go to the log.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from studio_brain import SERVICE_NAME, __version__
from studio_brain.adapters.firebase_emulator import EMULATOR_WARNING
from studio_brain.domain.errors import StudioBrainError
from studio_brain.domain.identity import Principal
from studio_brain.domain.times import iso
from studio_brain.logging import get_logger
from studio_brain.services.scheduling import Scheduler
from studio_brain.settings import Settings
from studio_brain.web.deps import brain_of

router = APIRouter()
log = get_logger(__name__)


def _iso(value: datetime) -> str:
    return iso(value, utc=False)


@router.get("/healthz", tags=["health"])
async def healthz(request: Request) -> dict[str, Any]:
    """The process is up. Says nothing about the database: see /readyz."""
    brain = brain_of(request)
    return {"ok": True, "service": SERVICE_NAME, "version": __version__, "at": _iso(brain.clock.now())}


@router.get("/readyz", tags=["health"])
async def readyz(request: Request) -> JSONResponse:
    """Ready to serve: the database answers (and, if required, a fresh snapshot exists). 503 otherwise.

    ``checks.jobs`` reports scheduled jobs (a failing one shows there, with its back-off). When this
    process runs a scheduler, ``checks.scheduler`` gates too (issue 13): 503 when its loop is not alive,
    or a job's due time (or retry) passed more than the overdue grace ago with no run started.
    """
    brain = brain_of(request)
    settings = brain.settings
    now = brain.clock.now()
    postgres: dict[str, Any]
    try:
        latency = await brain.database.ping()
        postgres = {"ok": True, "latencyMs": round(latency, 2)}
    except StudioBrainError as err:
        log.warning("readyz.database.failed", error=err.message)
        postgres = {"ok": False, "latencyMs": None, "reasonCode": err.reason_code.value, "error": DB_DOWN}

    snapshot: dict[str, Any] = {
        "exists": False,
        "generatedAt": None,
        "ageMinutes": None,
        "maxAgeMinutes": settings.snapshot_max_age_minutes,
        "requireFresh": settings.readyz_require_fresh_snapshot,
        "fresh": False,
    }
    if postgres["ok"]:
        try:
            latest = await brain.state_store.latest_snapshot(brain.tenant_id)
        except StudioBrainError as err:
            log.warning("readyz.database.failed", error=err.message)
            postgres = {**postgres, "ok": False, "reasonCode": err.reason_code.value, "error": DB_DOWN}
            latest = None
        if latest is not None:
            age = (now - latest.generated_at).total_seconds() / 60.0
            snapshot.update(
                exists=True,
                generatedAt=_iso(latest.generated_at),
                ageMinutes=round(age, 1),
                fresh=age <= settings.snapshot_max_age_minutes,
            )
    ok = bool(postgres["ok"]) and (snapshot["fresh"] or not settings.readyz_require_fresh_snapshot)
    checks: dict[str, Any] = {"postgres": postgres, "snapshot": snapshot}
    if brain.jobs is not None and postgres["ok"]:
        # Shown, not gating: a failing job backs off and retries; the API can still serve.
        try:
            checks["jobs"] = await brain.jobs.health_check()
        except StudioBrainError as err:
            checks["jobs"] = {"ok": False, "failing": [], "jobs": {}, "error": err.message}
    scheduler = getattr(request.app.state, "scheduler", None)
    if scheduler is not None:
        checks["scheduler"] = scheduler_check(scheduler, checks.get("jobs"), now, settings)
        ok = ok and bool(checks["scheduler"]["ok"])
    if settings.firebase_auth_emulator:
        # issue 21: shown, not gating — the brain accepts unsigned Auth-emulator tokens (development only)
        checks["authEmulator"] = {"ok": True, "warning": EMULATOR_WARNING}
    if not await _may_see_details(request):
        # anonymous callers learn only ok / not ok per check: no latencies, schedules, back-offs or errors
        checks = {name: {"ok": _check_ok(name, check, settings)} for name, check in checks.items()}
    body = {"ok": ok, "checks": checks, "at": _iso(now)}
    return JSONResponse(body, status_code=200 if ok else 503)


#: what /readyz says about a database that does not answer (its error names the server: that is logged)
DB_DOWN = "the database does not answer; see the brain's log or run `studio-brain doctor`"


def _check_ok(name: str, check: Any, settings: Settings) -> bool:
    if not isinstance(check, dict):
        return False
    if name == "snapshot" and "ok" not in check:
        return bool(check.get("fresh")) or not settings.readyz_require_fresh_snapshot
    return bool(check.get("ok"))


async def _may_see_details(request: Request) -> bool:
    """Staff (or the admin token) see every detail; anyone else, and bad credentials, the quiet form."""
    auth = getattr(request.app.state, "auth", None)
    if auth is None:
        return False
    try:
        principal = await auth.authenticate(request)
    except StudioBrainError:
        return False
    return isinstance(principal, Principal) and principal.is_staff


def scheduler_check(
    scheduler: Scheduler, jobs: dict[str, Any] | None, now: datetime, settings: Settings
) -> dict[str, Any]:
    """``checks.scheduler``: this process's loop alive, and no job overdue past the grace (also for the cockpit)."""
    state = scheduler.health()
    grace = timedelta(seconds=settings.scheduler_overdue_grace_seconds)
    overdue = []
    for name, row in ((jobs or {}).get("jobs") or {}).items():
        since = row.get("overdueSince")
        if since and now - datetime.fromisoformat(since.replace("Z", "+00:00")) > grace:
            overdue.append(name)
    return {**state, "ok": bool(state["alive"]) and not overdue, "overdue": sorted(overdue)}
