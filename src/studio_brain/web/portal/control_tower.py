"""The Portal's Control Tower paths (``/api/control-tower/state``, ``events``, ``overseer/ack``) in the
shapes its ``studioBrainControlTower.ts`` reads (``docs/portal.md``): ``state`` filled from
``services/control_tower.py``, the event stream (SSE, read by the Portal with fetch and a stream reader)
fed by the audit log's new events, and the overseer acknowledgement. Rooms, partner briefs and agent runs
are in ``tower_absent.py``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from studio_brain import __version__
from studio_brain.domain.audit import AuditEvent
from studio_brain.logging import get_logger
from studio_brain.services.control_tower import ControlTower, TowerView
from studio_brain.web.deps import BrainDep, StaffCaller, iso
from studio_brain.web.portal.common import portal_router

log = get_logger(__name__)
router = portal_router("control-tower")

#: SSE timings (the Portal's server uses the same: a pulse poll every 5 s, a keepalive every 15 s)
STREAM_POLL_SECONDS = 5.0
STREAM_KEEPALIVE_SECONDS = 15.0
STREAM_RETRY_MS = 3000
EVENTS_PATH = "/api/control-tower/events"


async def get_tower(request: Request, brain: BrainDep) -> ControlTower:
    started = getattr(request.app.state, "started_at", None)
    if not isinstance(started, datetime):
        started = brain.clock.now()
        request.app.state.started_at = started
    return ControlTower(
        gateway=brain.gateway,
        safety=brain.safety,
        jobs=brain.jobs,
        connector_health=brain.connector_health,
        events=brain.events,
        clock=brain.clock,
        version=__version__,
        started_at=started,
        overdue_grace=timedelta(seconds=brain.settings.scheduler_overdue_grace_seconds),
    )


Tower = Annotated[ControlTower, Depends(get_tower)]


# --- shapes ---------------------------------------------------------------------------------------------

_SEVERITY_LEVEL = {"critical": "critical", "high": "critical", "warning": "warning", "medium": "warning"}


def tower_event(event: AuditEvent) -> dict[str, Any]:
    """An audit event as a ControlTowerEvent (the Portal's field names and event types)."""
    action = event.action
    if action.startswith("capability.proposal.created") or action == "capability.proposal.submitted":
        kind = "approval.requested"
    elif action.startswith("safety."):
        kind = "incident.raised"
    elif action.startswith("connector.") or action.startswith("ops."):
        kind = "health.changed"
    elif action.startswith("job.") or action.startswith("scheduler."):
        kind = "run.status"
    else:
        kind = "task.updated"
    refused = "refused" in action or "failed" in action
    return {
        "id": f"audit:{event.seq}",
        "at": iso(event.at),
        "occurredAt": iso(event.at),
        "kind": "operator" if event.actor_type.value in ("staff", "human") else "system",
        "type": kind,
        "severity": "warning" if refused or kind == "incident.raised" else "info",
        "title": action,
        "summary": event.rationale[:300],
        "actor": f"{event.actor_type.value}:{event.actor_id}",
        "roomId": None,
        "serviceId": None,
        "actionLabel": None,
        "sourceAction": action,
        "payload": {"seq": event.seq, "target": event.target, "capabilityId": event.capability_id},
    }


def _memory_brief(now: str | None) -> dict[str, Any]:
    return {
        "continuityState": "ready",
        "summary": "This brain keeps no agent memory; its record is the audit log.",
        "goal": "",
        "recommendedNextActions": [],
        "layers": {"coreBlocks": [], "workingMemory": [], "episodicMemory": [], "canonicalMemory": []},
        "consolidation": {"mode": "idle", "lastRunAt": None, "lastError": None},
        "generatedAt": now,
    }


def _age_minutes(view: TowerView, at: datetime | None) -> float | None:
    return None if at is None else round((view.generated_at - at).total_seconds() / 60.0, 1)


def tower_state(view: TowerView) -> dict[str, Any]:
    """The ControlTowerState the Portal renders (every field its UI dereferences without a guard)."""
    now = iso(view.generated_at)
    alerts: list[dict[str, Any]] = []
    for f in view.findings:
        alerts.append(
            {
                "id": f"finding:{f.id}",
                "level": _SEVERITY_LEVEL.get(str(f.severity.value), "warning"),
                "title": f.title,
                "summary": f.summary,
                "roomId": None,
                "serviceId": f"connector:{f.subject}",
            }
        )
    for j in view.failing_jobs:
        alerts.append(
            {
                "id": f"job:{j.name}",
                "level": "warning",
                "title": f"job {j.name} is failing" if j.consecutive_failures else f"job {j.name} is overdue",
                "summary": j.last_error or f"no run since {iso(j.overdue_since)}",
                "roomId": None,
                "serviceId": f"job:{j.name}",
            }
        )
    for c in view.connectors_down:
        alerts.append(
            {
                "id": f"connector:{c.connector_id}",
                "level": "warning",
                "title": f"connector {c.connector_id} is {c.status.value}",
                "summary": c.detail,
                "roomId": None,
                "serviceId": f"connector:{c.connector_id}",
            }
        )
    services: list[dict[str, Any]] = [
        {
            "id": f"connector:{c.connector_id}",
            "label": c.connector_id,
            "health": c.status.value,
            "impact": "devices" if c.connector_id not in ("firestore", "functions") else "cloud",
            "recentChanges": 0,
            "changedAt": iso(c.checked_at),
            "summary": c.detail or f"breaker {c.breaker.value}",
            "actions": [],
        }
        for c in view.connectors
        if c.status.value != "not_configured"
    ] + [
        {
            "id": f"job:{j.name}",
            "label": j.name,
            "health": "degraded",
            "impact": "scheduler",
            "recentChanges": 0,
            "changedAt": iso(j.last_finished_at),
            "summary": j.schedule,
            "actions": [],
        }
        for j in view.failing_jobs
    ]
    approvals = [
        {
            "id": p.id,
            "capabilityId": p.capability_id,
            "summary": p.rationale[:300],
            "requestedBy": p.requested_by,
            "status": "pending_approval",
            "createdAt": iso(p.created_at),
            "owner": p.requested_by,
            "approvalMode": "required",
            "risk": view.risks.get(p.capability_id),
            "target": p.target,
        }
        for p in view.approvals
    ]
    uptime = _age_minutes(view, view.started_at)
    hosts = [
        {
            "hostId": "studio-brain",
            "label": "Studio Brain (this host)",
            "environment": "local",
            "role": "control-plane",
            "connectivity": "online",
            "health": "healthy" if not view.needs_attention else "degraded",
            "lastSeenAt": now,
            "ageMinutes": 0,
            "currentRunId": None,
            "agentCount": 0,
            "version": view.version,
            "summary": f"up {uptime} min; {len(view.jobs)} jobs, {len(view.connectors)} connectors",
            "metrics": {"cpuPct": None, "memoryPct": None, "load1": None},
        }
    ]
    events = [tower_event(e) for e in view.recent]
    attention = [
        {"id": a["id"], "title": a["title"], "summary": a["summary"], "level": a["level"]} for a in alerts
    ] + [
        {
            "id": f"approval:{a['id']}",
            "title": f"approve {a['capabilityId']}",
            "summary": a["summary"],
            "level": "info",
        }
        for a in approvals
    ]
    overall = view.overall
    return {
        "generatedAt": now,
        "theme": {
            "name": "studio-brain",
            "label": "Studio Brain",
            "colorMode": "system",
            "motionLevel": "reduced",
            "highContrast": False,
            "refreshMode": "sse",
        },
        "ops": {
            "overallStatus": overall,
            "heartbeatStatus": "healthy",
            "postureStatus": "healthy" if overall != "error" else "error",
            "overseerStatus": "acknowledged" if view.last_ack is not None else "neutral",
            "summary": _summary(view),
            "latestRunId": None,
        },
        "alerts": alerts,
        "pinnedItems": [],
        "services": services,
        "rooms": [],
        "board": [],
        "channels": [],
        "approvals": approvals,
        "hosts": hosts,
        "events": events,
        "recentChanges": events[:10],
        "actions": [],
        "memoryBrief": _memory_brief(now),
        "startupScorecard": None,
        "agentRuntime": None,
        "partner": None,
        "overview": {
            "needsAttention": attention,
            "activeRooms": [],
            "goodNextMoves": [],
            "recentEvents": events[:10],
        },
        "eventStream": {
            "endpoint": f"{EVENTS_PATH}?stream=1",
            "transport": "sse",
            "heartbeatMs": int(STREAM_KEEPALIVE_SECONDS * 1000),
        },
        "controlPlanes": [],
        "counts": {
            "needsAttention": view.needs_attention,
            "working": 0,
            "waiting": len(view.approvals),
            "blocked": 0,
            "escalated": 0,
        },
        "sources": [
            {"id": "audit-log", "label": "audit log", "ok": True},
            {"id": "gateway", "label": "capability gateway", "ok": True},
            {"id": "safety-watch", "label": "safety watch", "ok": True},
        ],
    }


def _summary(view: TowerView) -> str:
    parts = []
    if view.findings:
        parts.append(f"{len(view.findings)} open safety finding(s)")
    if view.failing_jobs:
        parts.append(f"{len(view.failing_jobs)} failing job(s)")
    if view.connectors_down:
        parts.append(f"{len(view.connectors_down)} connector(s) down")
    if view.approvals:
        parts.append(f"{len(view.approvals)} approval(s) waiting")
    return "; ".join(parts) if parts else "All quiet: nothing needs attention."


# --- state, events ----------------------------------------------------------------------------------------


class StateResponse(BaseModel):
    ok: bool = True
    state: dict[str, Any]


@router.get("/control-tower/state", response_model=StateResponse, summary="Control Tower snapshot")
async def state(caller: StaffCaller, tower: Tower) -> StateResponse:
    return StateResponse(state=tower_state(await tower.view(caller.principal)))


class Streams:
    """Open event streams in this process (observable: a client that goes away is removed)."""

    def __init__(self) -> None:
        self.open = 0


STREAMS = Streams()


def _frame(event: dict[str, Any]) -> str:
    return f"id: {event['id']}\nevent: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n"


@router.get(
    "/control-tower/events",
    summary="Control Tower events: SSE with stream=1 or Accept: text/event-stream, else JSON",
    response_model=None,
    responses={
        200: {
            "description": "The newest events as JSON, or (stream) a text/event-stream of them",
            "content": {"application/json": {}, "text/event-stream": {}},
        }
    },
)
async def events(
    request: Request,
    caller: StaffCaller,
    tower: Tower,
    stream: bool = Query(default=False),
    once: bool = Query(default=False),
    limit: int = Query(default=50, ge=1, le=500),
) -> JSONResponse | StreamingResponse:
    wants_sse = stream or "text/event-stream" in request.headers.get("accept", "")
    tenant = caller.tenant_id
    if not wants_sse:
        view = await tower.view(caller.principal)
        return JSONResponse({"ok": True, "events": [tower_event(e) for e in view.recent][:limit]})
    streams = STREAMS
    start = await tower.head(tenant)

    async def body() -> AsyncIterator[str]:
        streams.open += 1
        log.info("control_tower.stream.opened", actor=caller.principal.actor_id, open=streams.open)
        after = start
        since_keepalive = 0.0
        try:
            yield f"retry: {STREAM_RETRY_MS}\n: connected {iso(tower.now())}\n\n"
            while True:
                try:
                    fresh = await tower.events_after(tenant, after)
                except Exception as err:
                    log.warning("control_tower.stream.read_failed", error_type=type(err).__name__)
                    yield f"event: error\ndata: {json.dumps({'message': 'reading the audit log failed'})}\n\n"
                    fresh = []
                for event in fresh:
                    after = event.seq
                    yield _frame(tower_event(event))
                if fresh and once:
                    return
                if await request.is_disconnected():
                    return
                await asyncio.sleep(STREAM_POLL_SECONDS)
                since_keepalive += STREAM_POLL_SECONDS
                if since_keepalive >= STREAM_KEEPALIVE_SECONDS:
                    since_keepalive = 0.0
                    yield f": keepalive {iso(tower.now())}\n\n"
        finally:
            streams.open -= 1
            log.info("control_tower.stream.closed", actor=caller.principal.actor_id, open=streams.open)

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


# --- overseer acknowledgement -----------------------------------------------------------------------------


class AckBody(BaseModel):
    note: str = Field(default="", max_length=2000)
    runId: str | None = Field(default=None, max_length=200)


class AckResponse(BaseModel):
    ok: bool = True
    runId: str | None = None
    acknowledgedAt: str | None = None


@router.post("/control-tower/overseer/ack", response_model=AckResponse, summary="Acknowledge (audited)")
async def overseer_ack(body: AckBody, caller: StaffCaller, tower: Tower) -> AckResponse:
    event = await tower.acknowledge(
        caller.principal, note=body.note, run_id=body.runId, request_id=caller.request_id
    )
    return AckResponse(runId=body.runId, acknowledgedAt=iso(event.at))
