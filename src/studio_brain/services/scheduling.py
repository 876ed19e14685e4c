"""The scheduler loop: leader election, due times, catch-up at start, retries after back-off, overlap,
surviving database outages, and a clean stop.

It lives in ``services`` (talking only to ports) so that every entry point can run it: ``serve``/``demo``
start it beside the HTTP server, ``python -m studio_brain.scheduler`` runs it headless.

Only the leader runs jobs. Leadership is a PostgreSQL session advisory lock (ADR 0009) checked every few
seconds; when it is lost, running jobs are cancelled at once (another brain may already be running
them) and the loop goes back to waiting for the lock. Overlap is refused by each job's run lock inside
``JobService.run``, which records the refused run as ``skipped``.

The loop cannot die of a failure (issue 13): one :meth:`Scheduler.step` is a unit of work, and any error
raised inside it (the database gone mid-plan, a stale connection, a hung query past its timeout) is
logged, the scheduler steps down (cancels its jobs, drops its lock connection), backs off and tries
again, re-acquiring leadership from scratch once the database answers. Time comes from the Clock port
only, so tests drive the loop step by step with a fake clock instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, TypeVar

from studio_brain.domain.errors import StudioBrainError
from studio_brain.domain.schedule import last_due, missed_run, next_due
from studio_brain.domain.state import JobStatus
from studio_brain.logging import get_logger, redact_text
from studio_brain.ports import Clock
from studio_brain.ports.jobs import LeaderLock
from studio_brain.services.jobs import JobDefinition, JobHealth, JobService

log = get_logger(__name__)

T = TypeVar("T")

#: triggers of a run that is late: it makes up for a due time that passed without a successful run
LATE_TRIGGERS = frozenset({"catch_up", "retry"})


@dataclass(kw_only=True)
class SchedulerStatus:
    """What this process's scheduler is doing (for the cockpit and ``/readyz``)."""

    running: bool = False
    leader: bool = False
    leader_since: datetime | None = None
    next_due: dict[str, datetime] = field(default_factory=dict)
    running_jobs: set[str] = field(default_factory=set)
    last_error: str | None = None
    last_error_at: datetime | None = None
    #: Clock.monotonic() of the loop's latest step: a loop that stops stepping is not alive
    heartbeat: float | None = None
    #: failed steps in a row (0 when the last step worked)
    consecutive_errors: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class _Pending:
    """The next run of a job is not a plain tick: it retries or catches up a due time that was missed."""

    trigger: str
    scheduled_for: datetime


def _describe(err: BaseException) -> str:
    """One line for logs and the status: our errors by message, foreign ones by type (text may hold secrets)."""
    if isinstance(err, StudioBrainError):
        return redact_text(err.message)
    if isinstance(err, TimeoutError):
        return "a database call did not answer in time"
    return f"{type(err).__name__}: unexpected error (see the log)"


class Scheduler:
    def __init__(
        self,
        jobs: JobService,
        leader: LeaderLock,
        clock: Clock,
        *,
        tick_seconds: float = 1.0,
        leader_check_seconds: float = 5.0,
        leader_retry_seconds: float = 5.0,
        stop_grace_seconds: float = 10.0,
        error_backoff_seconds: float = 0.5,
        call_timeout_seconds: float = 15.0,
    ) -> None:
        self._jobs = jobs
        self._leader = leader
        self._clock = clock
        self._tick = tick_seconds
        self._leader_check = leader_check_seconds
        self._leader_retry = leader_retry_seconds
        self._grace = stop_grace_seconds
        self._error_backoff = error_backoff_seconds
        self._call_timeout = call_timeout_seconds
        self._stop = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._failures: dict[str, int] = {}
        self._due: dict[str, datetime] = {}
        self._pending: dict[str, _Pending] = {}
        self._last_check = 0.0
        self.status = SchedulerStatus()

    # --- the loop ------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Until :meth:`stop`: wait for leadership, lead, step down when the lock is lost or anything fails."""
        self.status.running = True
        self.status.heartbeat = self._clock.monotonic()
        log.info("scheduler.started", jobs=[j.name for j in self._jobs.jobs()])
        try:
            while not self._stop.is_set():
                await self._sleep(await self.step())
        finally:
            # on a clean stop, let running jobs finish for a moment rather than record them as failed
            await self._drain(self._grace)
            await self._cancel_running()
            with contextlib.suppress(Exception):
                await self._bounded(self._leader.release())
            self.status = SchedulerStatus()
            log.info("scheduler.stopped")

    def stop(self) -> None:
        self._stop.set()

    async def step(self) -> float:
        """One unit of work; returns how long to wait before the next. Never raises (except cancellation)."""
        self.status.heartbeat = self._clock.monotonic()
        try:
            wait = await self._step()
        except asyncio.CancelledError:
            raise
        except Exception as err:  # whatever failed, the loop must live on
            return await self._recover(err)
        if self.status.consecutive_errors:
            log.info("scheduler.recovered", after_errors=self.status.consecutive_errors)
            self.status.consecutive_errors = 0
        return wait

    async def settle(self) -> None:
        """Wait until every job started so far has finished (tests, and a drain before stepping down)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks.values()))

    async def _step(self) -> float:
        if not self.status.leader:
            if not await self._bounded(self._leader.try_acquire()):
                return self._leader_retry
            await self._become_leader()
        elif self._clock.monotonic() - self._last_check >= self._leader_check:
            self._last_check = self._clock.monotonic()
            if not await self._bounded(self._leader.still_held()):
                log.warning("scheduler.leader.lost", running=sorted(self._tasks))
                await self._step_down()
                return 0.0
        return self._start_due()

    async def _recover(self, err: BaseException) -> float:
        """Log the failure, step down (jobs cancelled, lock connection dropped) and back off."""
        self.status.consecutive_errors += 1
        self.status.last_error = _describe(err)
        self.status.last_error_at = self._clock.now()
        event = {"error": self.status.last_error, "consecutive": self.status.consecutive_errors}
        if isinstance(err, StudioBrainError | TimeoutError):
            log.warning("scheduler.error", **event)
        else:
            log.warning("scheduler.error", exc_info=err, **event)
        if self.status.leader:
            await self._step_down()
        with contextlib.suppress(Exception):
            # drop the lock's connection: the next try_acquire reconnects and re-checks leadership
            await self._bounded(self._leader.release())
        n = self.status.consecutive_errors
        return float(min(self._leader_retry, self._error_backoff * 2 ** min(n - 1, 20)))

    async def _bounded(self, call: Awaitable[T]) -> T:
        """A database call that hangs (a blackholed connection) fails after a timeout instead."""
        return await asyncio.wait_for(call, timeout=self._call_timeout)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=max(0.0, seconds))

    # --- leadership ----------------------------------------------------------------------------------

    async def _become_leader(self) -> None:
        now = self._clock.now()
        log.info("scheduler.leader.acquired")
        abandoned = await self._bounded(self._jobs.close_abandoned_runs())
        if abandoned:
            log.warning("scheduler.runs_abandoned", runs=abandoned)
        self._plan(now, await self._bounded(self._jobs.health()))
        self.status.leader, self.status.leader_since = True, now
        self._last_check = self._clock.monotonic()

    async def _step_down(self) -> None:
        await self._cancel_running()
        self.status.leader, self.status.leader_since = False, None
        self.status.next_due = {}

    def _plan(self, now: datetime, health: list[JobHealth]) -> None:
        """Due times at the start of a leadership.

        A job whose current period has no successful run catches up once now (or, while backing off
        from a failure, as soon as its back-off ends) for the due time it missed.
        """
        zone = self._jobs.zone
        states = {h.name: h for h in health}
        self._due.clear()
        self._pending.clear()
        catch_up: list[tuple[JobDefinition, _Pending]] = []
        for job in self._jobs.jobs():
            if job.schedule is None:
                continue
            state = states.get(job.name)
            self._failures[job.name] = state.consecutive_failures if state else 0
            regular = next_due(job.schedule, now, zone)
            retry_after = state.retry_at if state is not None else None
            succeeded_at = state.last_success_started_at if state else None
            if missed_run(job.schedule, last_started=succeeded_at, now=now, zone=zone):
                pending = _Pending(
                    trigger="retry" if state is not None and state.consecutive_failures else "catch_up",
                    scheduled_for=last_due(job.schedule, now, zone),
                )
                if retry_after is not None and retry_after > now:
                    self._due[job.name], self._pending[job.name] = retry_after, pending
                else:
                    self._due[job.name] = regular
                    catch_up.append((job, pending))
            else:
                self._due[job.name] = max(regular, retry_after) if retry_after else regular
        for job, pending in catch_up:
            log.info("scheduler.catch_up", job=job.name, trigger=pending.trigger)
            self._start(job, trigger=pending.trigger, scheduled_for=pending.scheduled_for, reschedule=False)
        self.status.next_due = dict(self._due)

    # --- running jobs --------------------------------------------------------------------------------

    def _start_due(self) -> float:
        now = self._clock.now()
        for name, due in sorted(self._due.items(), key=lambda item: item[1]):
            if due <= now:
                pending = self._pending.pop(name, None)
                job = self._jobs.get(name)
                if pending is None:
                    self._start(job, trigger="schedule", scheduled_for=due)
                else:
                    self._start(job, trigger=pending.trigger, scheduled_for=pending.scheduled_for)
        self.status.next_due = dict(self._due)
        upcoming = min(self._due.values(), default=None)
        wait = self._tick if upcoming is None else (upcoming - self._clock.now()).total_seconds()
        return min(self._tick, max(wait, 0.05))

    def _start(
        self, job: JobDefinition, *, trigger: str, scheduled_for: datetime, reschedule: bool = True
    ) -> None:
        if reschedule and job.schedule is not None:
            self._due[job.name] = next_due(job.schedule, self._clock.now(), self._jobs.zone)
        # A run still going here is an overlap: JobService finds its lock held and records a skip.
        task = asyncio.create_task(self._run_job(job, trigger, scheduled_for), name=f"job:{job.name}")
        key = job.name if job.name not in self._tasks else f"{job.name}#{id(task)}"
        self._tasks[key] = task
        self.status.running_jobs.add(job.name)
        task.add_done_callback(lambda _t: self._forget(key, job.name))

    def _forget(self, key: str, name: str) -> None:
        self._tasks.pop(key, None)
        if not any(k == name or k.startswith(f"{name}#") for k in self._tasks):
            self.status.running_jobs.discard(name)

    async def _run_job(self, job: JobDefinition, trigger: str, scheduled_for: datetime) -> None:
        try:
            runs = await self._jobs.run(job.name, trigger=trigger, scheduled_for=scheduled_for)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # recording the run failed (database down): back off
            self.status.last_error = _describe(err)
            self.status.last_error_at = self._clock.now()
            log.warning("scheduler.run_not_recorded", job=job.name, error=self.status.last_error)
            status = JobStatus.FAILED
        else:
            status = runs[0].status
        if status is JobStatus.SKIPPED:
            return
        if status is JobStatus.FAILED:
            self._after_failure(job, scheduled_for if trigger in LATE_TRIGGERS else None, trigger)
        else:
            self._failures[job.name] = 0

    def _after_failure(self, job: JobDefinition, missed: datetime | None, trigger: str) -> None:
        """Retry after the back-off; never wait for the next regular due time when that comes later.

        Bounded: the back-off doubles up to its cap, and once the next regular due time comes first the
        regular run takes over (an interval job whose back-off exceeds its interval skips those ticks).
        """
        self._failures[job.name] = self._failures.get(job.name, 0) + 1
        if job.schedule is None:
            return
        now = self._clock.now()
        retry_at = now + self._jobs.backoff(self._failures[job.name])
        regular = self._due.get(job.name)
        if regular is None or retry_at < regular:
            # the run for the due time that just failed is tried again, for that same due time
            failed_due = missed or _previous_due(job, now, self._jobs.zone)
            self._pending[job.name] = _Pending(trigger="retry", scheduled_for=failed_due)
        self._due[job.name] = retry_at
        self.status.next_due = dict(self._due)
        log.info("scheduler.backoff", job=job.name, until=retry_at.isoformat(), trigger=trigger)

    async def _drain(self, seconds: float) -> None:
        tasks = list(self._tasks.values())
        if tasks and seconds > 0:
            await asyncio.wait(tasks, timeout=seconds)

    async def _cancel_running(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self.status.running_jobs.clear()

    # --- health --------------------------------------------------------------------------------------

    def stale_after_seconds(self) -> float:
        """A loop whose heartbeat is older than this is stuck (no step finished in several periods)."""
        return 3 * max(self._tick, self._leader_check, self._leader_retry) + self._call_timeout

    def alive(self) -> bool:
        beat = self.status.heartbeat
        if not self.status.running or beat is None:
            return False
        return self._clock.monotonic() - beat <= self.stale_after_seconds()

    def health(self) -> dict[str, Any]:
        """The ``checks.scheduler`` entry of ``/readyz`` (this process's loop)."""
        beat = self.status.heartbeat
        return {
            "alive": self.alive(),
            "leader": self.status.leader,
            "runningJobs": sorted(self.status.running_jobs),
            "consecutiveErrors": self.status.consecutive_errors,
            "lastError": self.status.last_error,
            "heartbeatAgeSeconds": None if beat is None else round(self._clock.monotonic() - beat, 1),
        }


def _previous_due(job: JobDefinition, now: datetime, zone: tzinfo) -> datetime:
    assert job.schedule is not None
    return last_due(job.schedule, now, zone)


@asynccontextmanager
async def scheduler_running(
    jobs: JobService | None,
    leader: LeaderLock | None,
    clock: Clock,
    *,
    enabled: bool = True,
    leader_check_seconds: float = 5.0,
    stop_timeout_seconds: float = 30.0,
) -> AsyncIterator[Scheduler | None]:
    """Run a scheduler as a task for the ``async with`` block, then stop it cleanly (None when disabled)."""
    if not enabled or jobs is None or leader is None:
        log.info("scheduler.disabled")
        yield None
        return
    scheduler = Scheduler(
        jobs,
        leader,
        clock,
        leader_check_seconds=leader_check_seconds,
        # a follower retries as often as a leader checks, so a crashed leader is replaced quickly
        leader_retry_seconds=leader_check_seconds,
    )
    task = asyncio.create_task(scheduler.run(), name="studio-brain-scheduler")
    task.add_done_callback(_report_exit)
    try:
        yield scheduler
    finally:
        scheduler.stop()
        try:
            await asyncio.wait_for(task, timeout=stop_timeout_seconds)
        except TimeoutError:  # pragma: no cover - a job ignoring cancellation
            log.warning("scheduler.stop_timeout")


def _report_exit(task: asyncio.Task[None]) -> None:
    """A scheduler task that ends with an error is never silent (``/readyz`` shows it as not alive)."""
    if not task.cancelled() and task.exception() is not None:
        log.error("scheduler.crashed", exc_info=task.exception())
