"""Running named jobs: one run at a time per job (across processes), every run persisted and audited,
follow-up jobs chained, and the health of each job derived from its recorded runs.

Timing (when a job is due, catch-up, leadership) belongs to the scheduler entry point; this service only
knows how to run a job once, which is also what ``studio-brain jobs run NAME`` does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, tzinfo
from typing import Any

from studio_brain.domain.audit import ActorType, ApprovalState, AuditDraft
from studio_brain.domain.errors import NotFound, StudioBrainError
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.schedule import Schedule, backoff_seconds, last_due, next_due
from studio_brain.domain.state import JobRun, JobStatus
from studio_brain.logging import get_logger, redact_text
from studio_brain.ports import Clock, EventStore, IdFactory, StateStore
from studio_brain.ports.jobs import JobLocks

log = get_logger(__name__)

SCHEDULER_ACTOR = "scheduler"


@dataclass(frozen=True, kw_only=True, slots=True)
class JobContext:
    """What a job body is told about the run it is part of."""

    run_id: str
    #: schedule | catch_up | manual | after:<job>
    trigger: str
    scheduled_for: datetime | None
    started_at: datetime

    @property
    def late(self) -> bool:
        """This run makes up for ``scheduled_for``, a due time that passed without a successful run
        (a catch-up at start or a retry after a failure): a daily close taken now is a late one."""
        return self.trigger in ("catch_up", "retry")


JobAction = Callable[[JobContext], Awaitable[Mapping[str, Any]]]


@dataclass(frozen=True, kw_only=True, slots=True)
class JobDefinition:
    name: str
    description: str
    action: JobAction
    #: None: never due on its own, only run after another job or by hand
    schedule: Schedule | None
    #: jobs run, in order, after a successful run of this one (e.g. swarms after a snapshot)
    then: tuple[str, ...] = ()
    #: False: a success whose summary repeats the previous success is not audited (connector health every
    #: 5 minutes would fill the log with identical rows); failures and changes of state always are
    audit_repeated_success: bool = True


@dataclass(frozen=True, kw_only=True, slots=True)
class JobHealth:
    name: str
    schedule: str
    last_status: JobStatus | None
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_error: str | None
    last_success_at: datetime | None
    consecutive_failures: int
    next_due_at: datetime | None
    #: while backing off, the job does not run before this time
    backoff_until: datetime | None = None
    skipped_recently: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    #: when the latest successful run started (a period with none since its due time is missed)
    last_success_started_at: datetime | None = None
    #: when a failing job may retry (its back-off end, possibly already past); None when healthy
    retry_at: datetime | None = None
    #: a due time (or back-off end) passed and no run started since: the scheduler is not running it
    overdue_since: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.consecutive_failures == 0


def describe_error(err: BaseException) -> str:
    """One line for the job record: our errors by message, foreign ones by type (their text may hold secrets)."""
    if isinstance(err, StudioBrainError):
        return redact_text(f"{err.code}: {err.message}")[:500]
    return f"{type(err).__name__}: unexpected error (see the log)"


class JobService:
    """A catalogue of jobs and the one way to run them."""

    def __init__(
        self,
        *,
        tenant_id: str,
        state_store: StateStore,
        locks: JobLocks,
        clock: Clock,
        ids: IdFactory,
        zone: tzinfo,
        events: EventStore | None = None,
        backoff_base_seconds: float = 60.0,
        backoff_cap_seconds: float = 3600.0,
        runner: str = "",
    ) -> None:
        self._tenant = tenant_id
        self._store = state_store
        self._locks = locks
        self._clock = clock
        self._ids = ids
        self._zone = zone
        self._events = events
        self._backoff_base = backoff_base_seconds
        self._backoff_cap = backoff_cap_seconds
        self._jobs: dict[str, JobDefinition] = {}
        #: which process ran a job ("host:pid"), recorded in each run's summary
        self._runner = runner

    @property
    def zone(self) -> tzinfo:
        return self._zone

    @property
    def tenant_id(self) -> str:
        return self._tenant

    def register(self, job: JobDefinition) -> None:
        if job.name in self._jobs:
            raise ValueError(f"job {job.name!r} is registered twice")
        self._jobs[job.name] = job

    def jobs(self) -> list[JobDefinition]:
        return list(self._jobs.values())

    def get(self, name: str) -> JobDefinition:
        try:
            return self._jobs[name]
        except KeyError:
            known = ", ".join(sorted(self._jobs)) or "none"
            raise NotFound(f"no job named {name!r} (known: {known})") from None

    def backoff(self, consecutive_failures: int) -> timedelta:
        return timedelta(
            seconds=backoff_seconds(consecutive_failures, base=self._backoff_base, cap=self._backoff_cap)
        )

    async def run(
        self, name: str, *, trigger: str = "manual", scheduled_for: datetime | None = None
    ) -> list[JobRun]:
        """Run ``name`` once (then its follow-ups if it succeeded); returns every run recorded, first first.

        An overlapping run (the job's lock is held anywhere) is not started: it is recorded as ``skipped``.
        """
        job = self.get(name)
        run = await self._run_one(job, trigger=trigger, scheduled_for=scheduled_for)
        runs = [run]
        if run.status is JobStatus.SUCCEEDED:
            for follow_up in job.then:
                runs.extend(await self.run(follow_up, trigger=f"after:{name}"))
        return runs

    async def _run_one(self, job: JobDefinition, *, trigger: str, scheduled_for: datetime | None) -> JobRun:
        async with self._locks.hold(self._tenant, job.name) as acquired:
            started = self._clock.now()
            run = JobRun(
                id=self._ids.new_id(),
                job=job.name,
                tenant_id=self._tenant,
                status=JobStatus.RUNNING,
                started_at=started,
            )
            if not acquired:
                skipped = replace(
                    run,
                    status=JobStatus.SKIPPED,
                    finished_at=started,
                    summary={"reason": "overlap", **self._trigger(trigger, scheduled_for)},
                )
                await self._store.start_job(skipped)
                await self._audit(skipped, trigger, scheduled_for)
                log.info("job.skipped", job=job.name, reason="overlap", trigger=trigger)
                return skipped
            await self._store.start_job(run)
            ctx = JobContext(run_id=run.id, trigger=trigger, scheduled_for=scheduled_for, started_at=started)
            log.info("job.started", job=job.name, run_id=run.id, trigger=trigger)
            try:
                summary = dict(await job.action(ctx))
            except asyncio.CancelledError:
                done = replace(
                    run,
                    status=JobStatus.FAILED,
                    finished_at=self._clock.now(),
                    error="cancelled: the scheduler stopped or lost leadership",
                    summary=self._trigger(trigger, scheduled_for),
                )
                await asyncio.shield(self._finish(done, trigger, scheduled_for))
                raise
            except Exception as err:  # a job failing must never take the scheduler down
                if isinstance(err, StudioBrainError):
                    # an expected failure (cloud unreachable, ...) explains itself: no traceback
                    log.warning(
                        "job.failed", job=job.name, run_id=run.id, error_code=err.code, error=err.message
                    )
                else:
                    log.warning("job.failed", job=job.name, run_id=run.id, exc_info=True)
                done = replace(
                    run,
                    status=JobStatus.FAILED,
                    finished_at=self._clock.now(),
                    error=describe_error(err),
                    summary=self._trigger(trigger, scheduled_for),
                )
            else:
                done = replace(
                    run,
                    status=JobStatus.SUCCEEDED,
                    finished_at=self._clock.now(),
                    summary={**summary, **self._trigger(trigger, scheduled_for)},
                )
            await self._finish(done, trigger, scheduled_for, quiet=not job.audit_repeated_success)
            return done

    def _trigger(self, trigger: str, scheduled_for: datetime | None) -> dict[str, Any]:
        return {"trigger": trigger, "scheduledFor": _iso(scheduled_for), "runner": self._runner}

    async def _finish(
        self, run: JobRun, trigger: str, scheduled_for: datetime | None, *, quiet: bool = False
    ) -> None:
        await self._store.finish_job(run)
        if not (quiet and await self._repeats_last_success(run)):
            await self._audit(run, trigger, scheduled_for)
        log.info(
            f"job.{run.status.value}",
            job=run.job,
            run_id=run.id,
            duration_ms=round(run.duration_ms or 0.0, 1),
            error=run.error,
        )

    async def _repeats_last_success(self, run: JobRun) -> bool:
        """This success says what the previous finished run (a success) said: nothing changed."""
        if run.status is not JobStatus.SUCCEEDED:
            return False
        recent = await self._store.recent_jobs(self._tenant, job=run.job, limit=10)
        previous = next(
            (r for r in recent if r.id != run.id and r.status in (JobStatus.SUCCEEDED, JobStatus.FAILED)),
            None,
        )
        if previous is None or previous.status is not JobStatus.SUCCEEDED:
            return False
        return _outcome(previous.summary) == _outcome(run.summary)

    async def _audit(self, run: JobRun, trigger: str, scheduled_for: datetime | None) -> None:
        if self._events is None:
            return
        inputs = {"job": run.job, "runId": run.id, "trigger": trigger, "scheduledFor": scheduled_for}
        await self._events.append(
            AuditDraft(
                tenant_id=self._tenant,
                actor_type=ActorType.SYSTEM,
                actor_id=SCHEDULER_ACTOR,
                action=f"scheduler.job.{run.status.value}",
                target="local",
                rationale=run.error or f"{run.job} {run.status.value} ({trigger})",
                approval_state=ApprovalState.NOT_APPLICABLE,
                input_hash=sha256_hex(inputs),
                output_hash=sha256_hex(
                    {"status": run.status.value, "summary": run.summary, "error": run.error}
                ),
                request_id=run.id,
                correlation_id=run.id,
                metadata={
                    "job": run.job,
                    "status": run.status.value,
                    "trigger": trigger,
                    "durationMs": round(run.duration_ms or 0.0, 1),
                },
            )
        )

    async def close_abandoned_runs(self) -> list[str]:
        """Close as ``abandoned`` the runs left ``running`` by a process that died (issue 13).

        A live run holds its job's run lock for its whole length, and a dead process's lock went with its
        connection: so a ``running`` row whose lock this process can take belongs to nobody. Returns the ids.
        """
        closed: list[str] = []
        for job in self._jobs.values():
            stale = [
                r
                for r in await self._store.recent_jobs(self._tenant, job=job.name, limit=50)
                if r.status is JobStatus.RUNNING
            ]
            if not stale:
                continue
            async with self._locks.hold(self._tenant, job.name) as acquired:
                if not acquired:
                    continue  # a run is going on right now somewhere: its row is not stale
                for run in stale:
                    done = replace(
                        run,
                        status=JobStatus.ABANDONED,
                        finished_at=self._clock.now(),
                        error="abandoned: the process running it stopped before it finished",
                    )
                    await self._finish(done, str(run.summary.get("trigger") or "unknown"), None)
                    closed.append(run.id)
        return closed

    async def health(self, *, history: int = 20) -> list[JobHealth]:
        """Each job's state from its recorded runs (works on every brain, leader or not)."""
        now = self._clock.now()
        result: list[JobHealth] = []
        for job in self._jobs.values():
            runs = await self._store.recent_jobs(self._tenant, job=job.name, limit=history)
            finished = [r for r in runs if r.status in _FINISHED]
            # An abandoned run says nothing of the job (its process died or lost the database mid-run):
            # it neither ends nor extends a failure streak, and when it is the newest run the job is
            # due again now, not after a back-off (docs/scheduler.md: "nothing: it runs again").
            failed: list[JobRun] = []
            for r in finished:
                if r.status is JobStatus.SUCCEEDED:
                    break
                if r.status is JobStatus.FAILED:
                    failed.append(r)
            failures = len(failed)
            last = runs[0] if runs else None
            last_success = next((r for r in finished if r.status is JobStatus.SUCCEEDED), None)
            backoff_until = None
            if failures and finished[0] is failed[0] and failed[0].finished_at is not None:
                backoff_until = failed[0].finished_at + self.backoff(failures)
            due = next_due(job.schedule, now, self._zone) if job.schedule is not None else None
            if due is not None and backoff_until is not None and backoff_until > due:
                due = backoff_until
            overdue_since = None
            if job.schedule is not None:
                # expected to have started by: this period's due time (when no run started since), or
                # the end of a failure's back-off; past that with no new start, nobody is running it
                period = last_due(job.schedule, now, self._zone)
                expected = period if last is None or last.started_at < period else None
                if backoff_until is not None and finished and last is finished[0]:
                    expected = backoff_until if expected is None else max(expected, backoff_until)
                if expected is not None and expected <= now:
                    overdue_since = expected
            result.append(
                JobHealth(
                    name=job.name,
                    schedule=job.schedule.describe()
                    if job.schedule is not None
                    else "after " + ", ".join(j.name for j in self._jobs.values() if job.name in j.then),
                    last_status=last.status if last else None,
                    last_started_at=last.started_at if last else None,
                    last_finished_at=last.finished_at if last else None,
                    last_error=failed[0].error if failed else None,
                    last_success_at=last_success.finished_at if last_success else None,
                    consecutive_failures=failures,
                    next_due_at=due,
                    backoff_until=backoff_until if backoff_until and backoff_until > now else None,
                    skipped_recently=sum(1 for r in runs if r.status is JobStatus.SKIPPED),
                    last_success_started_at=last_success.started_at if last_success else None,
                    retry_at=backoff_until,
                    overdue_since=overdue_since,
                )
            )
        return result

    async def health_check(self) -> dict[str, Any]:
        """The ``checks.jobs`` entry of ``/readyz``: ok unless a job's latest finished run failed."""
        jobs = await self.health()
        failing = [j.name for j in jobs if not j.ok]
        return {
            "ok": not failing,
            "failing": failing,
            "jobs": {j.name: health_row(j) for j in jobs},
        }


_FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.ABANDONED)


def _outcome(summary: dict[str, Any]) -> dict[str, Any]:
    """A run's summary without how it was started (trigger, due time, runner)."""
    return {k: v for k, v in summary.items() if k not in {"trigger", "scheduledFor", "runner"}}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def health_row(job: JobHealth) -> dict[str, Any]:
    """A JobHealth as the JSON the API and cockpit show."""
    return {
        "ok": job.ok,
        "schedule": job.schedule,
        "lastStatus": job.last_status.value if job.last_status else None,
        "lastStartedAt": _iso(job.last_started_at),
        "lastFinishedAt": _iso(job.last_finished_at),
        "lastSuccessAt": _iso(job.last_success_at),
        "lastError": job.last_error,
        "consecutiveFailures": job.consecutive_failures,
        "nextDueAt": _iso(job.next_due_at),
        "backoffUntil": _iso(job.backoff_until),
        "skippedRecently": job.skipped_recently,
        "overdueSince": _iso(job.overdue_since),
    }
