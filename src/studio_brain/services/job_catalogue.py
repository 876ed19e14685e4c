"""The brain's standard jobs: their names, schedules and bodies (snapshot, daily close, connector health,
audit checkpoint, swarms). :class:`JobService` in ``services/jobs.py`` runs them; the wiring registers
the ones whose service is present.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any, Protocol

from studio_brain.domain.audit import AuditCheckpoint
from studio_brain.domain.connectors import ConnectorHealth
from studio_brain.domain.schedule import Schedule
from studio_brain.domain.state import DailyClose, SnapshotRun
from studio_brain.services.jobs import JobContext, JobDefinition

JobBody = Callable[[JobContext], Awaitable[Mapping[str, Any]]]

SNAPSHOT = "snapshot"
DAILY_CLOSE = "daily-close"
CONNECTOR_HEALTH = "connector-health"
AUDIT_CHECKPOINT = "audit-checkpoint"
SWARMS = "swarms"
#: issue 13: journalled outcomes recorded, stale executions marked, unknown outcomes read back
EXECUTION_RECOVERY = "execution-recovery"


@dataclass(frozen=True, kw_only=True, slots=True)
class JobSchedules:
    snapshot: Schedule
    daily_close: Schedule
    connector_health: Schedule
    audit_checkpoint: Schedule
    #: None: swarms run only after each snapshot
    swarms: Schedule | None = None


def standard_jobs(
    schedules: JobSchedules,
    *,
    snapshot: JobBody | None = None,
    daily_close: JobBody | None = None,
    connector_health: JobBody | None = None,
    audit_checkpoint: JobBody | None = None,
    swarms: JobBody | None = None,
) -> list[JobDefinition]:
    """The brain's jobs, each registered only when the service it calls is present."""
    then = (SWARMS,) if swarms is not None else ()
    jobs: list[JobDefinition] = []
    if snapshot is not None:
        jobs.append(
            JobDefinition(
                name=SNAPSHOT,
                description="Compute today's StudioState snapshot, then run the swarms",
                action=snapshot,
                schedule=schedules.snapshot,
                then=then,
            )
        )
    if daily_close is not None:
        jobs.append(
            JobDefinition(
                name=DAILY_CLOSE,
                description="Close yesterday once: at the day boundary, else late from its last snapshot",
                action=daily_close,
                schedule=schedules.daily_close,
                then=then,
            )
        )
    if connector_health is not None:
        jobs.append(
            JobDefinition(
                name=CONNECTOR_HEALTH,
                description="Probe every connector's health and store the result for the cockpit",
                action=connector_health,
                schedule=schedules.connector_health,
                audit_repeated_success=False,
            )
        )
    if audit_checkpoint is not None:
        jobs.append(
            JobDefinition(
                name=AUDIT_CHECKPOINT,
                description="Write a signed audit-log checkpoint outside the database",
                action=audit_checkpoint,
                schedule=schedules.audit_checkpoint,
            )
        )
    if swarms is not None:
        jobs.append(
            JobDefinition(
                name=SWARMS,
                description="Run the draft-only swarms (ops, finance, marketing) over the snapshot history",
                action=swarms,
                schedule=schedules.swarms,
            )
        )
    return jobs


def close_of_previous_day(ctx: JobContext, zone: tzinfo) -> datetime:
    """The last instant of the local day before the run's due time: what the daily close snapshots."""
    due = (ctx.scheduled_for or ctx.started_at).astimezone(zone)
    midnight = datetime.combine(due.date(), datetime.min.time(), tzinfo=zone)
    return midnight - timedelta(microseconds=1)


def day_to_close(ctx: JobContext, zone: tzinfo) -> date:
    """The local date the daily close of this run closes: the day before the run's due time."""
    return close_of_previous_day(ctx, zone).date()


class Snapshotter(Protocol):
    async def compute(
        self, *, at: datetime | None = None, correlation_id: str | None = None
    ) -> SnapshotRun: ...


class DayCloser(Protocol):
    async def close_day(self, day: date, *, correlation_id: str | None = None) -> DailyClose: ...


class HealthChecker(Protocol):
    async def check_all(self, *, record: bool = True) -> Sequence[ConnectorHealth]: ...


class SwarmRunner(Protocol):
    async def run(self) -> dict[str, Any]: ...


def _snapshot_summary(run: SnapshotRun) -> dict[str, Any]:
    return {
        "runId": run.id,
        "snapshotDate": run.snapshot_date.isoformat(),
        "completeness": run.completeness.value,
    }


def snapshot_job(state: Snapshotter) -> JobBody:
    async def body(ctx: JobContext) -> Mapping[str, Any]:
        return _snapshot_summary(await state.compute(correlation_id=ctx.run_id))

    return body


def daily_close_job(state: DayCloser, zone: tzinfo) -> JobBody:
    """Close yesterday once (issue 14): a close already recorded is final and is reported, not redone."""

    async def body(ctx: JobContext) -> Mapping[str, Any]:
        day = day_to_close(ctx, zone)
        close = await state.close_day(day, correlation_id=ctx.run_id)
        return {
            "closeDate": close.close_date.isoformat(),
            "kind": close.kind.value,
            "runId": close.run_id,
            "reason": close.reason,
            "alreadyClosed": close.closed_at < ctx.started_at,
        }

    return body


def connector_health_job(health: HealthChecker) -> JobBody:
    async def body(_ctx: JobContext) -> Mapping[str, Any]:
        results = await health.check_all()
        return {"connectors": {h.connector_id: h.status.value for h in results}}

    return body


def swarms_job(swarms: SwarmRunner) -> JobBody:
    async def body(_ctx: JobContext) -> Mapping[str, Any]:
        return await swarms.run()

    return body


class Checkpointer(Protocol):
    async def checkpoint(self, tenant_id: str) -> AuditCheckpoint | None: ...


def audit_checkpoint_job(audit: Checkpointer, tenant_id: str) -> JobBody:
    async def body(_ctx: JobContext) -> Mapping[str, Any]:
        checkpoint = await audit.checkpoint(tenant_id)
        if checkpoint is None:
            return {"checkpoint": None, "reason": "the audit log is empty"}
        return {"checkpoint": {"seq": checkpoint.seq, "hash": checkpoint.hash}}

    return body
