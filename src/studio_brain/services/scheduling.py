"""The scheduler loop: leader election, due times, catch-up at start, back-off, overlap, clean stop.

It lives in ``services`` (talking only to ports) so that every entry point can run it: ``serve``/``demo``
start it beside the HTTP server, ``python -m studio_brain.scheduler`` runs it headless.

Only the leader runs jobs. Leadership is a PostgreSQL session advisory lock (ADR 0009) checked every few
seconds; when it is lost, running jobs are cancelled at once (another brain may already be running
them) and the loop goes back to waiting for the lock. Overlap is refused by each job's run lock inside
``JobService.run``, which records the refused run as ``skipped``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

from studio_brain.domain.errors import StudioBrainError
from studio_brain.domain.schedule import missed_run, next_due
from studio_brain.domain.state import JobStatus
from studio_brain.logging import get_logger
from studio_brain.ports import Clock
from studio_brain.ports.jobs import LeaderLock
from studio_brain.services.jobs import JobDefinition, JobService

log = get_logger("studio_brain.scheduler")


@dataclass(kw_only=True)
class SchedulerStatus:
    """What this process's scheduler is doing (for the cockpit and ``/readyz``)."""

    running: bool = False
    leader: bool = False
    leader_since: datetime | None = None
    next_due: dict[str, datetime] = field(default_factory=dict)
    running_jobs: set[str] = field(default_factory=set)
    last_error: str | None = None


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
    ) -> None:
        self._jobs = jobs
        self._leader = leader
        self._clock = clock
        self._tick = tick_seconds
        self._leader_check = leader_check_seconds
        self._leader_retry = leader_retry_seconds
        self._grace = stop_grace_seconds
        self._stop = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._failures: dict[str, int] = {}
        self._due: dict[str, datetime] = {}
        self.status = SchedulerStatus()

    async def run(self) -> None:
        """Until :meth:`stop`: wait for leadership, lead, step down when the lock is lost."""
        self.status.running = True
        log.info("scheduler.started", jobs=[j.name for j in self._jobs.jobs()])
        try:
            while not self._stop.is_set():
                try:
                    leader = await self._leader.try_acquire()
                except StudioBrainError as err:
                    self.status.last_error = err.message
                    log.warning("scheduler.leader.unavailable", error=err.message)
                    leader = False
                if leader:
                    await self._lead()
                else:
                    await self._sleep(self._leader_retry)
        finally:
            # on a clean stop, let running jobs finish for a moment rather than record them as failed
            await self._drain(self._grace)
            await self._cancel_running()
            await self._leader.release()
            self.status = SchedulerStatus()
            log.info("scheduler.stopped")

    def stop(self) -> None:
        self._stop.set()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=max(0.0, seconds))

    async def _lead(self) -> None:
        now = self._clock.now()
        self.status.leader, self.status.leader_since = True, now
        log.info("scheduler.leader.acquired")
        await self._plan(now)
        last_check = self._clock.monotonic()
        try:
            while not self._stop.is_set():
                if self._clock.monotonic() - last_check >= self._leader_check:
                    last_check = self._clock.monotonic()
                    if not await self._leader.still_held():
                        log.warning("scheduler.leader.lost", running=sorted(self._tasks))
                        await self._cancel_running()
                        return
                now = self._clock.now()
                for name, due in sorted(self._due.items(), key=lambda item: item[1]):
                    if due <= now:
                        self._start(self._jobs.get(name), trigger="schedule", scheduled_for=due)
                self.status.next_due = dict(self._due)
                upcoming = min(self._due.values(), default=None)
                wait = self._tick if upcoming is None else (upcoming - self._clock.now()).total_seconds()
                await self._sleep(min(self._tick, max(wait, 0.05)))
        finally:
            self.status.leader, self.status.leader_since = False, None

    async def _plan(self, now: datetime) -> None:
        """Due times at the start of a leadership: a job that missed a run since its last start runs once now."""
        zone = self._jobs.zone
        health = {h.name: h for h in await self._jobs.health()}
        self._due.clear()
        catch_up: list[JobDefinition] = []
        for job in self._jobs.jobs():
            if job.schedule is None:
                continue
            state = health.get(job.name)
            self._failures[job.name] = state.consecutive_failures if state else 0
            last_started = state.last_started_at if state else None
            self._due[job.name] = next_due(job.schedule, now, zone)
            if state is not None and state.backoff_until is not None:
                self._due[job.name] = max(self._due[job.name], state.backoff_until)
            elif missed_run(job.schedule, last_started=last_started, now=now, zone=zone):
                catch_up.append(job)
        for job in catch_up:
            log.info("scheduler.catch_up", job=job.name)
            self._start(job, trigger="catch_up", scheduled_for=now, reschedule=False)

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
        except StudioBrainError as err:
            # recording the run itself failed (database down): back off like a failed job
            self.status.last_error = err.message
            log.warning("scheduler.run_not_recorded", job=job.name, error=err.message)
            runs = []
            status = JobStatus.FAILED
        else:
            status = runs[0].status
        if status is JobStatus.SKIPPED:
            return
        if status is JobStatus.FAILED:
            self._failures[job.name] = self._failures.get(job.name, 0) + 1
            if job.schedule is not None:
                retry_at = self._clock.now() + self._jobs.backoff(self._failures[job.name])
                self._due[job.name] = max(self._due.get(job.name, retry_at), retry_at)
                log.info("scheduler.backoff", job=job.name, until=retry_at.isoformat())
        else:
            self._failures[job.name] = 0

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
    try:
        yield scheduler
    finally:
        scheduler.stop()
        try:
            await asyncio.wait_for(task, timeout=stop_timeout_seconds)
        except TimeoutError:  # pragma: no cover - a job ignoring cancellation
            log.warning("scheduler.stop_timeout")
