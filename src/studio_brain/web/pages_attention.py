"""What the cockpit asks a person to look at (issue 14): the kill-switch banner and Today's Needs attention.

One list, most urgent first: approvals waiting for *me* (proposals I did not request and have not
approved), drafts waiting, approved but not executed, failing or overdue jobs, unhealthy connectors and
offline / stale / low-battery devices, and the audit chain's status. Each source is read through the
Brain's services; a source that is not wired or cannot be read becomes an item saying so, never a 500.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from studio_brain.bootstrap import Brain
from studio_brain.domain.errors import StudioBrainError
from studio_brain.domain.identity import Principal
from studio_brain.domain.proposals import Proposal, Status
from studio_brain.domain.schedule import missed_run
from studio_brain.logging import get_logger
from studio_brain.ports.gateway import ProposalFilter
from studio_brain.services.scheduling import Scheduler

log = get_logger(__name__)

#: a device reporting less battery than this is listed
LOW_BATTERY_PERCENT = 15
#: the longest Today waits for live device readings
DEVICE_READ_SECONDS = 3.0
_TONE_ORDER = {"bad": 0, "warn": 1, "info": 2, "ok": 3}


@dataclass(frozen=True, kw_only=True, slots=True)
class AttentionItem:
    #: approval | drafts | approved | job | connector | device | audit
    kind: str
    tone: str
    text: str
    href: str = ""
    #: a pending proposal that can be approved right here (its id)
    approve_id: str = ""
    detail: str = ""


@dataclass(kw_only=True, slots=True)
class Attention:
    items: list[AttentionItem] = field(default_factory=list)
    pending_for_me: int = 0

    def add(self, item: AttentionItem) -> None:
        self.items.append(item)

    def sorted(self) -> list[AttentionItem]:
        return sorted(self.items, key=lambda i: _TONE_ORDER.get(i.tone, 9))


def who(principal: Principal) -> str:
    """The id a proposal names its requester and approvers by: the person's id for a person."""
    return principal.actor_id


def waits_for(proposal: Proposal, principal: Principal) -> bool:
    """A pending proposal this person can act on: not their own, not already approved by them."""
    me = who(principal)
    return (
        proposal.status is Status.PENDING_APPROVAL
        and proposal.requested_by != me
        and all(a.approver_id != me for a in proposal.approvals)
    )


async def kill_switch_banner(brain: Brain, principal: Principal) -> str | None:
    """The words of the banner every page shows while the kill switch is ON (None when it is off)."""
    try:
        state = await brain.gateway.kill_switch_state(principal)
    except StudioBrainError as err:
        log.warning("cockpit.killswitch.unreadable", error=err.message)
        return "The kill switch state cannot be read: nothing will be executed until it can."
    if state.unreadable:
        return "The kill switch state cannot be read: nothing will be executed until it can."
    if state.global_on:
        return "The kill switch is ON: no capability will be executed until it is turned off (Policy)."
    if state.capabilities:
        names = ", ".join(sorted(state.capabilities))
        return f"The kill switch is ON for {names}: those will not be executed until it is turned off."
    return None


async def needs_attention(
    brain: Brain, principal: Principal, *, tenant: str, scheduler: Scheduler | None = None
) -> Attention:
    found = Attention()
    if tenant == principal.tenant_id:
        await _proposals(brain, principal, found)
        await _drafts(brain, principal, found)
    _scheduler(scheduler, found)
    await _jobs(brain, found)
    await _connectors(brain, found)
    await _audit(brain, tenant, found)
    return found


async def _proposals(brain: Brain, principal: Principal, found: Attention) -> None:
    gateway = brain.gateway
    if gateway is None:
        return
    try:
        pending = await gateway.list_proposals(
            principal, ProposalFilter(status=Status.PENDING_APPROVAL, limit=100)
        )
        approved = await gateway.list_proposals(principal, ProposalFilter(status=Status.APPROVED, limit=100))
    except StudioBrainError as err:
        found.add(
            AttentionItem(kind="approval", tone="warn", text=f"Proposals cannot be read: {err.message}")
        )
        return
    mine = [p for p in pending if waits_for(p, principal)]
    found.pending_for_me = len(mine)
    for p in mine:
        found.add(
            AttentionItem(
                kind="approval",
                tone="warn",
                text=f"Approve or reject: {p.capability_id}, requested by {p.requested_by}",
                href=f"/proposals/{p.id}",
                approve_id=p.id,
                detail=p.rationale[:200],
            )
        )
    own = [p for p in pending if p.requested_by == who(principal)]
    if own:
        found.add(
            AttentionItem(
                kind="approval",
                tone="info",
                text=f"{len(own)} proposal{'s' if len(own) != 1 else ''} of yours wait for someone else's approval",
                href="/proposals?status=pending_approval",
            )
        )
    for p in approved:
        found.add(
            AttentionItem(
                kind="approved",
                tone="warn",
                text=f"Approved but not executed: {p.capability_id}",
                href=f"/proposals/{p.id}",
                detail=p.rationale[:200],
            )
        )


async def _drafts(brain: Brain, principal: Principal, found: Attention) -> None:
    from studio_brain.web.pages_drafts import decisions_of

    service = decisions_of(brain)
    if service is None:
        return
    try:
        waiting = await service.waiting(principal)
    except StudioBrainError as err:
        found.add(AttentionItem(kind="drafts", tone="warn", text=f"Drafts cannot be read: {err.message}"))
        return
    by_kind: dict[str, int] = {}
    for item in waiting:
        by_kind[item.draft.kind.value] = by_kind.get(item.draft.kind.value, 0) + 1
    for kind, count in sorted(by_kind.items()):
        top = next(i.draft for i in waiting if i.draft.kind.value == kind)
        found.add(
            AttentionItem(
                kind="drafts",
                tone="warn" if top.severity.value == "high" else "info",
                text=f"{count} {kind} draft{'s' if count != 1 else ''} waiting: "
                + ("review the copy" if kind == "marketing" else "submit or dismiss"),
                href=f"/drafts?kind={kind}",
                detail=f"Newest: {top.title}",
            )
        )


def _scheduler(scheduler: Scheduler | None, found: Attention) -> None:
    """Issue 13: this process's scheduler loop stopped stepping (what ``/readyz`` answers 503 for)."""
    if scheduler is None or scheduler.alive():
        return
    state = scheduler.health()
    found.add(
        AttentionItem(
            kind="job",
            tone="bad",
            text="The scheduler is not running: no job (snapshots, daily close, checkpoints) will run",
            detail=state["lastError"] or "restart studio-brain; /readyz shows the same",
        )
    )


async def _jobs(brain: Brain, found: Attention) -> None:
    jobs = brain.jobs
    if jobs is None:
        return
    now = brain.clock.now()
    try:
        health = await jobs.health()
    except StudioBrainError as err:
        found.add(AttentionItem(kind="job", tone="warn", text=f"Job health cannot be read: {err.message}"))
        return
    schedules = {j.name: j.schedule for j in jobs.jobs()}
    for h in health:
        if not h.ok:
            found.add(
                AttentionItem(
                    kind="job",
                    tone="bad",
                    text=f"Job {h.name} is failing ({h.consecutive_failures} in a row)",
                    detail=h.last_error or "",
                )
            )
            continue
        schedule = schedules.get(h.name)
        if (
            schedule is not None
            and h.last_started_at is not None
            and missed_run(schedule, last_started=h.last_started_at, now=now, zone=jobs.zone)
        ):
            found.add(
                AttentionItem(
                    kind="job",
                    tone="warn",
                    text=f"Job {h.name} is overdue ({h.schedule}): is the scheduler running?",
                    detail="last run "
                    + h.last_started_at.astimezone(brain.settings.zone).strftime("%Y-%m-%d %H:%M"),
                )
            )


async def _connectors(brain: Brain, found: Attention) -> None:
    service = brain.connector_health
    if service is None:
        return
    try:
        health = await service.latest()
        # devices are read live; Today does not wait longer than this for them (Connectors shows them all)
        readings = await asyncio.wait_for(service.read_devices(), timeout=DEVICE_READ_SECONDS)
    except TimeoutError:
        found.add(
            AttentionItem(
                kind="device",
                tone="info",
                text=f"Device readings took longer than {DEVICE_READ_SECONDS:g} s: see Connectors",
                href="/connectors?devices=1",
            )
        )
        return
    except StudioBrainError as err:
        found.add(
            AttentionItem(kind="connector", tone="warn", text=f"Connectors cannot be read: {err.message}")
        )
        return
    for h in health:
        if h.status.value in {"down", "degraded"}:
            found.add(
                AttentionItem(
                    kind="connector",
                    tone="bad" if h.status.value == "down" else "warn",
                    text=f"Connector {h.connector_id} is {h.status.value}",
                    href="/connectors",
                    detail=h.detail,
                )
            )
    for r in readings:
        for d in r.devices:
            problem = device_problem(d)
            if problem:
                name = d.get("label") or d.get("id")
                room = f" ({d['room']})" if d.get("room") else ""
                found.add(
                    AttentionItem(
                        kind="device",
                        tone="warn",
                        text=f"{name}{room}: {problem}",
                        href="/connectors?devices=1",
                    )
                )


def device_problem(device: dict[str, Any]) -> str:
    """Why a device needs a look, in words ('' when it is fine)."""
    problems = []
    if device.get("online") is False:
        problems.append("offline")
    if device.get("stale"):
        problems.append("no recent report")
    battery = device.get("battery")
    if isinstance(battery, int | float) and not isinstance(battery, bool) and battery < LOW_BATTERY_PERCENT:
        problems.append(f"battery {battery:g} %")
    return ", ".join(problems)


async def _audit(brain: Brain, tenant: str, found: Attention) -> None:
    """The chain's status, from the Audit page's incremental verification (cached between loads)."""
    from studio_brain.web.pages_audit import chain_verification

    try:
        badge = await chain_verification(brain, tenant)
    except StudioBrainError as err:
        found.add(
            AttentionItem(
                kind="audit", tone="warn", text=f"The audit chain could not be verified: {err.message}"
            )
        )
        return
    if badge.tone == "muted":
        return
    found.add(
        AttentionItem(
            kind="audit", tone=badge.tone, text=f"Audit: {badge.text}", href="/audit", detail=badge.detail
        )
    )
