"""The morning brief: at a configured local time, what changed since yesterday's close, what waits for
approval, open safety findings, unhealthy devices and jobs, and a link to the cockpit — sent to the
notification targets (route ``brief``) and shown as a cockpit page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any, Protocol

from studio_brain.domain.calendar import EMPTY_CALENDAR, StudioCalendar
from studio_brain.domain.identity import system_principal
from studio_brain.domain.proposals import Proposal, Status
from studio_brain.domain.rules import SNAPSHOT_FIELDS
from studio_brain.domain.safety import FindingRecord
from studio_brain.domain.schedule import Schedule, last_due
from studio_brain.domain.snapshot import metric
from studio_brain.domain.state import CloseKind, SnapshotRun
from studio_brain.logging import get_logger
from studio_brain.ports import Clock, StateStore
from studio_brain.ports.gateway import ProposalFilter
from studio_brain.services.notify import NotificationService
from studio_brain.services.safety import SafetyWatch

log = get_logger(__name__)


class ProposalLister(Protocol):
    async def list_proposals(self, principal: Any, where: ProposalFilter | None = None) -> list[Proposal]: ...


class JobHealthReader(Protocol):
    async def health(self, *, history: int = 20) -> Sequence[Any]: ...


class ConnectorHealthReader(Protocol):
    async def latest(self) -> Sequence[Any]: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class BriefSection:
    heading: str
    lines: tuple[str, ...]
    #: nothing to report in this section (shown muted)
    quiet: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class MorningBrief:
    day: date
    generated_at: datetime
    title: str
    sections: tuple[BriefSection, ...]
    cockpit_url: str
    facts: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        out: list[str] = []
        for s in self.sections:
            out.append(s.heading)
            out.extend(f"- {line}" for line in s.lines)
            out.append("")
        out.append(f"Cockpit: {self.cockpit_url}/brief")
        return "\n".join(out)


def _changes(base: SnapshotRun, current: SnapshotRun) -> list[str]:
    lines = []
    for name in SNAPSHOT_FIELDS:
        before, after = metric(base.document, name), metric(current.document, name)
        if before is None or after is None or before == after:
            continue
        lines.append(f"{name}: {before} → {after} ({after - before:+d})")
    return lines


class MorningBriefService:
    def __init__(
        self,
        *,
        tenant_id: str,
        state_store: StateStore,
        watch: SafetyWatch | None,
        notifications: NotificationService | None,
        proposals: ProposalLister | None,
        jobs: JobHealthReader | None,
        connectors: ConnectorHealthReader | None,
        clock: Clock,
        zone: tzinfo,
        cockpit_url: str,
        calendar: StudioCalendar | None = None,
    ) -> None:
        self._calendar = calendar or EMPTY_CALENDAR
        self._tenant = tenant_id
        self._state = state_store
        self._watch = watch
        self._notifications = notifications
        self._proposals = proposals
        self._jobs = jobs
        self._connectors = connectors
        self._clock = clock
        self._zone = zone
        self._cockpit = cockpit_url.rstrip("/")

    async def compose(self) -> MorningBrief:
        now = self._clock.now()
        today = now.astimezone(self._zone).date()
        yesterday = today - timedelta(days=1)
        sections = [
            await self._since_close(yesterday),
            await self._waiting(),
            await self._findings(),
            await self._devices(),
            await self._job_health(),
        ]
        days = self._calendar.between(today, today + timedelta(days=7))
        if days:
            sections.append(
                BriefSection(
                    heading="Studio calendar (today and the next 7 days)",
                    lines=tuple(f"{d.day.isoformat()} {d.reason}" for d in days),
                )
            )
        waiting = sections[1]
        findings = sections[2]
        title = (
            f"Studio brief {today.isoformat()}: "
            f"{0 if waiting.quiet else len(waiting.lines)} waiting for approval, "
            f"{0 if findings.quiet else len(findings.lines)} open safety findings"
        )
        return MorningBrief(
            day=today, generated_at=now, title=title, sections=tuple(sections), cockpit_url=self._cockpit
        )

    async def send(self) -> dict[str, Any]:
        """Compose today's brief and queue it (once per day and target), then deliver what is due."""
        brief = await self.compose()
        queued = 0
        delivered: dict[str, int] = {}
        if self._notifications is not None:
            queued = await self._notifications.enqueue_brief(
                day=brief.day, title=brief.title, body=brief.text()
            )
            delivered = await self._notifications.deliver_due()
        log.info("brief.composed", day=brief.day.isoformat(), queued=queued)
        return {"day": brief.day.isoformat(), "queued": queued, "notifications": delivered}

    async def _since_close(self, yesterday: date) -> BriefSection:
        heading = f"Since yesterday's close ({yesterday.isoformat()})"
        close = await self._state.get_close(self._tenant, yesterday)
        if close is not None and not close.closed:
            return BriefSection(
                heading=heading, lines=(f"Yesterday was not closed: {close.reason}",), quiet=True
            )
        base = None
        if close is not None and close.run_id is not None:
            base = await self._state.get_run(self._tenant, close.run_id)
            if close.kind is not CloseKind.ON_TIME:
                heading = f"Since yesterday's close ({yesterday.isoformat()}, {close.kind.value})"
        base = base or await self._state.daily_snapshot(self._tenant, yesterday)
        current = await self._state.latest_snapshot(self._tenant)
        if base is None:
            return BriefSection(heading=heading, lines=("No close snapshot of yesterday.",), quiet=True)
        if current is None or current.id == base.id:
            before = await self._state.daily_snapshot(self._tenant, yesterday - timedelta(days=1))
            if before is None:
                return BriefSection(heading=heading, lines=("No snapshot since the close.",), quiet=True)
            lines = _changes(before, base)
            heading = f"During yesterday ({yesterday.isoformat()}; no snapshot since the close)"
        else:
            lines = _changes(base, current)
        if not lines:
            return BriefSection(heading=heading, lines=("No change in the studio's numbers.",), quiet=True)
        return BriefSection(heading=heading, lines=tuple(lines))

    async def _waiting(self) -> BriefSection:
        heading = "Waiting for approval"
        if self._proposals is None:
            return BriefSection(
                heading=heading, lines=("The gateway is not wired on this brain.",), quiet=True
            )
        principal = system_principal(self._tenant, "brief")
        pending = await self._proposals.list_proposals(
            principal, ProposalFilter(status=Status.PENDING_APPROVAL, limit=100)
        )
        drafts = await self._proposals.list_proposals(
            principal, ProposalFilter(status=Status.DRAFT, limit=100)
        )
        lines = [f"{p.capability_id} ({p.id}) by {p.requested_by}: {p.rationale[:120]}" for p in pending]
        lines += [
            f"draft {p.capability_id} ({p.id}) by {p.requested_by}, to submit or discard: {p.rationale[:120]}"
            for p in drafts
        ]
        if not lines:
            return BriefSection(heading=heading, lines=("Nothing waits for approval.",), quiet=True)
        return BriefSection(heading=heading, lines=tuple(lines))

    async def _findings(self) -> BriefSection:
        heading = "Open safety findings"
        if self._watch is None:
            return BriefSection(heading=heading, lines=("The safety watch is not wired.",), quiet=True)
        records: list[FindingRecord] = await self._watch.findings(status="open", limit=100)
        if not records:
            return BriefSection(heading=heading, lines=("None.",), quiet=True)
        return BriefSection(
            heading=heading,
            lines=tuple(
                f"[{r.severity.value}] {r.summary} since {r.onset_at.astimezone(self._zone):%a %H:%M}"
                for r in records
            ),
        )

    async def _devices(self) -> BriefSection:
        heading = "Unhealthy devices and connectors"
        lines: list[str] = []
        if self._connectors is not None:
            for h in await self._connectors.latest():
                if h.status.value in {"down", "degraded"}:
                    lines.append(f"connector {h.connector_id}: {h.status.value} {h.detail}".rstrip())
        if self._watch is not None:
            obs, firings_error = await self._watch.observe()
            lines.extend(f"not watched — {u}" for u in self._watch.unconfigured)
            if firings_error is not None:
                lines.append(
                    f"kiln firings unreadable ({firings_error}): the kiln rules decide nothing meanwhile"
                )
            for r in obs.readings:
                why = r.untrusted_because(obs.at, self._watch.table.reading_max_age_minutes)
                if why is not None:
                    lines.append(f"{r.label}: {why}")
        if not lines:
            return BriefSection(heading=heading, lines=("All devices report.",), quiet=True)
        return BriefSection(heading=heading, lines=tuple(lines))

    async def _job_health(self) -> BriefSection:
        heading = "Jobs"
        if self._jobs is None:
            return BriefSection(heading=heading, lines=("The scheduler is not wired.",), quiet=True)
        failing = [j for j in await self._jobs.health() if not j.ok]
        if not failing:
            return BriefSection(heading=heading, lines=("Every job's latest run succeeded.",), quiet=True)
        return BriefSection(
            heading=heading,
            lines=tuple(
                f"{j.name}: {j.consecutive_failures} failed run(s); {j.last_error or ''}".rstrip()
                for j in failing
            ),
        )


MORNING_BRIEF_JOB = "morning-brief"
#: a brief caught up this long after its time is not sent (a 07:30 brief at 15:00 helps nobody)
LATE_LIMIT = timedelta(hours=3)


def morning_brief_job(
    brief: MorningBriefService, schedule: Schedule, zone: tzinfo
) -> Callable[[Any], Awaitable[Mapping[str, Any]]]:
    async def body(ctx: Any) -> Mapping[str, Any]:
        due = last_due(schedule, ctx.started_at, zone)
        if ctx.trigger == "catch_up" and ctx.started_at - due > LATE_LIMIT:
            return {"skipped": "late", "dueAt": due.isoformat()}
        return await brief.send()

    return body
