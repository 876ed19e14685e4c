"""The scheduler stepped by hand on a fake clock (real PostgreSQL, real locks): what runs and what does
not is decided by the clock alone, so absence is proved by moving time, never by sleeping.

Covers catch-up at start, ticks, retries after a back-off (daily jobs too: never a whole day), the
``late`` mark a catch-up carries, runs abandoned by a dead process, and a loop that survives any error.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from studio_brain.adapters.clock import UUID7Factory
from studio_brain.adapters.postgres.database import Database
from studio_brain.adapters.postgres.event_store import PostgresEventStore
from studio_brain.adapters.postgres.leader import PostgresJobLocks, PostgresLeaderLock
from studio_brain.adapters.postgres.state_store import PostgresStateStore
from studio_brain.domain.schedule import DailyAt, Every, parse_schedule
from studio_brain.domain.state import JobRun, JobStatus
from studio_brain.services.jobs import JobContext, JobDefinition, JobService
from studio_brain.services.scheduling import Scheduler
from tests.fakes import FakeClock

pytestmark = pytest.mark.postgres

TENANT = "monsoonfire-main"
NOON = datetime(2026, 11, 25, 12, 0, 30, tzinfo=UTC)


class Steps:
    """A scheduler, its job catalogue and a fake clock, stepped explicitly."""

    def __init__(
        self, database: Database, database_url: str, clock: FakeClock, *, backoff: float = 60
    ) -> None:
        self.clock = clock
        self.store = PostgresStateStore(database)
        self.events = PostgresEventStore(database, UUID7Factory())
        self.jobs = JobService(
            tenant_id=TENANT,
            state_store=self.store,
            locks=PostgresJobLocks(database),
            clock=clock,
            ids=UUID7Factory(),
            zone=UTC,
            events=self.events,
            backoff_base_seconds=backoff,
            backoff_cap_seconds=backoff * 8,
        )
        self.lock = PostgresLeaderLock(database_url, tenant_id=TENANT)
        self.scheduler = Scheduler(self.jobs, self.lock, clock, leader_check_seconds=5)

    async def step(self) -> None:
        await self.scheduler.step()
        await self.scheduler.settle()

    async def at(self, when: datetime) -> None:
        self.clock.set(when)
        await self.step()

    async def runs(self, job: str) -> list[JobRun]:
        return list(reversed(await self.store.recent_jobs(TENANT, job=job, limit=500)))

    async def triggers(self, job: str) -> list[tuple[str, str | None]]:
        return [(r.summary["trigger"], r.summary["scheduledFor"]) for r in await self.runs(job)]


@pytest.fixture
async def steps(database: Database, database_url: str) -> AsyncIterator[Steps]:
    kit = Steps(database, database_url, FakeClock(NOON))
    try:
        yield kit
    finally:
        await kit.scheduler.settle()
        await kit.lock.release()


async def ok(_ctx: JobContext) -> Mapping[str, Any]:
    return {}


class Flaky:
    """A job body failing its first ``failures`` calls; remembers every context it was given."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.contexts: list[JobContext] = []

    async def __call__(self, ctx: JobContext) -> Mapping[str, Any]:
        self.contexts.append(ctx)
        if len(self.contexts) <= self.failures:
            raise RuntimeError("cloud unreachable")
        return {"ok": True}


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def left_running(
    steps: Steps, job: str, run_id: str, started_at: datetime, trigger: str = "schedule"
) -> JobRun:
    """A run recorded as started and never finished (its process died, or lost the database mid-run)."""
    run = JobRun(
        id=run_id,
        job=job,
        tenant_id=TENANT,
        status=JobStatus.RUNNING,
        started_at=started_at,
        summary={"trigger": trigger},
    )
    await steps.store.start_job(run)
    return run


async def test_a_job_that_missed_its_run_is_caught_up_once_at_start(steps: Steps) -> None:
    steps.jobs.register(JobDefinition(name="hourly", description="", action=ok, schedule=Every(seconds=3600)))
    await steps.step()
    await steps.at(NOON + timedelta(minutes=30))
    await steps.at(NOON + timedelta(minutes=59))
    # the catch-up stands for the due time it missed (12:00), and nothing more ran before 13:00
    assert await steps.triggers("hourly") == [("catch_up", "2026-11-25T12:00:00Z")]
    await steps.at(datetime(2026, 11, 25, 13, 0, tzinfo=UTC))
    assert [t for t, _ in await steps.triggers("hourly")] == ["catch_up", "schedule"]


async def test_a_job_that_already_ran_this_period_is_not_caught_up(steps: Steps) -> None:
    steps.jobs.register(JobDefinition(name="hourly", description="", action=ok, schedule=Every(seconds=3600)))
    await steps.jobs.run("hourly")  # ran this period: nothing is missed
    await steps.step()
    await steps.at(datetime(2026, 11, 25, 12, 59, 59, tzinfo=UTC))
    assert [t for t, _ in await steps.triggers("hourly")] == ["manual"]
    await steps.at(datetime(2026, 11, 25, 13, 0, tzinfo=UTC))
    assert await steps.triggers("hourly") == [("manual", None), ("schedule", "2026-11-25T13:00:00Z")]


async def test_a_failing_interval_job_backs_off_instead_of_running_every_tick(steps: Steps) -> None:
    broken = Flaky(failures=100)
    steps.jobs.register(JobDefinition(name="tick", description="", action=broken, schedule=Every(seconds=1)))
    await steps.step()
    for second in range(1, 60):
        await steps.at(NOON + timedelta(seconds=second))
    assert len(broken.contexts) == 1  # 59 ticks passed inside the 60 s back-off
    await steps.at(NOON + timedelta(seconds=60))
    assert len(broken.contexts) == 2
    [health] = await steps.jobs.health()
    assert health.consecutive_failures == 2
    assert health.backoff_until == NOON + timedelta(seconds=60 + 120)


async def test_a_failed_daily_job_retries_after_its_back_off_not_the_next_day(steps: Steps) -> None:
    close = Flaky(failures=1)
    due = datetime(2026, 11, 25, 0, 5, tzinfo=UTC)
    steps.jobs.register(
        JobDefinition(name="close", description="", action=close, schedule=DailyAt(at=due.timetz()))
    )
    await steps.at(due)  # never ran: caught up for 00:05, and that attempt fails
    await steps.at(due + timedelta(seconds=59))
    assert len(close.contexts) == 1
    await steps.at(due + timedelta(seconds=60))
    # the retry is for the same due time, so a daily close still closes the right day, and it is late
    assert [(c.trigger, c.scheduled_for, c.late) for c in close.contexts] == [
        ("catch_up", due, True),
        ("retry", due, True),
    ]
    await steps.at(due + timedelta(hours=23, minutes=59))
    assert len(close.contexts) == 2  # succeeded: nothing more until tomorrow's 00:05
    await steps.at(due + timedelta(days=1))
    assert close.contexts[-1].trigger == "schedule"
    assert close.contexts[-1].late is False


async def test_a_daily_job_that_failed_before_a_restart_retries_after_its_back_off(steps: Steps) -> None:
    close = Flaky(failures=1)
    due = datetime(2026, 11, 25, 0, 5, tzinfo=UTC)
    steps.jobs.register(
        JobDefinition(name="close", description="", action=close, schedule=parse_schedule("daily 00:05"))
    )
    steps.clock.set(due)
    await steps.jobs.run("close", trigger="schedule", scheduled_for=due)  # the previous process's run
    await steps.at(due + timedelta(seconds=30))  # a new leader plans: backing off until 00:06
    assert len(close.contexts) == 1
    await steps.at(due + timedelta(seconds=60))
    assert [(c.trigger, c.scheduled_for) for c in close.contexts] == [("schedule", due), ("retry", due)]


async def test_retries_are_bounded_by_the_capped_back_off(steps: Steps) -> None:
    broken = Flaky(failures=1000)
    due = datetime(2026, 11, 25, 0, 5, tzinfo=UTC)
    steps.jobs.register(
        JobDefinition(name="close", description="", action=broken, schedule=DailyAt(at=due.timetz()))
    )
    await steps.at(due)
    moment = due
    for _ in range(40):  # 40 minutes of one-minute steps
        moment += timedelta(minutes=1)
        await steps.at(moment)
    # back-off 60, 120, 240, 480 s (cap): 00:05, :06, :08, :12, :20, :28, :36, :44 — never every minute
    starts = [c.started_at for c in broken.contexts]
    assert len(starts) == 8
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    assert gaps == [60, 120, 240, 480, 480, 480, 480]


async def test_a_run_left_running_by_a_dead_process_is_closed_as_abandoned(steps: Steps) -> None:
    steps.jobs.register(JobDefinition(name="hourly", description="", action=ok, schedule=Every(seconds=3600)))
    dead = await left_running(steps, "hourly", "run-of-a-killed-process", NOON - timedelta(minutes=10))
    await steps.step()
    [closed, *_] = await steps.runs("hourly")
    assert closed.id == dead.id
    assert closed.status is JobStatus.ABANDONED
    assert closed.finished_at == NOON
    audited = [e async for e in steps.events.stream(TENANT) if e.action == "scheduler.job.abandoned"]
    assert [e.request_id for e in audited] == [dead.id]


async def test_a_job_whose_last_run_was_abandoned_runs_again_at_once_without_a_back_off(steps: Steps) -> None:
    # the database cut mid-run (tests/faults/test_serve_outage.py): the run is left ``running``, the next
    # leadership closes it as abandoned, and the job must not wait out a failure's back-off for it
    steps.jobs.register(JobDefinition(name="often", description="", action=ok, schedule=Every(seconds=1)))
    await left_running(steps, "often", "run-cut-short", NOON - timedelta(seconds=3))
    await steps.step()
    await steps.at(NOON + timedelta(seconds=2))
    statuses = [r.status for r in await steps.runs("often")]
    assert statuses[0] is JobStatus.ABANDONED
    assert JobStatus.SUCCEEDED in statuses[1:]
    [health] = await steps.jobs.health()
    assert health.consecutive_failures == 0
    assert health.backoff_until is None


async def test_an_abandoned_retry_neither_clears_nor_grows_the_failure_streak(steps: Steps) -> None:
    broken = Flaky(failures=1)
    steps.jobs.register(
        JobDefinition(name="hourly", description="", action=broken, schedule=Every(seconds=3600))
    )
    await steps.step()  # the catch-up fails: back-off 60 s
    [health] = await steps.jobs.health()
    assert (health.consecutive_failures, health.backoff_until) == (1, NOON + timedelta(seconds=60))
    await left_running(steps, "hourly", "retry-cut-short", NOON + timedelta(seconds=61), trigger="retry")
    steps.clock.set(NOON + timedelta(seconds=62))
    await steps.jobs.close_abandoned_runs()
    [health] = await steps.jobs.health()
    assert health.consecutive_failures == 1  # still failing: the abandoned retry proved nothing
    assert health.backoff_until is None  # but due again now
    assert (health.last_error or "").startswith("RuntimeError")  # the failure's error, not "abandoned"


async def test_a_run_that_still_holds_its_lock_is_not_called_abandoned(
    steps: Steps, database: Database
) -> None:
    steps.jobs.register(JobDefinition(name="hourly", description="", action=ok, schedule=Every(seconds=3600)))
    await left_running(steps, "hourly", "live-run", NOON - timedelta(minutes=1))
    async with PostgresJobLocks(database).hold(TENANT, "hourly") as held:
        assert held
        assert await steps.jobs.close_abandoned_runs() == []
    assert (await steps.runs("hourly"))[0].status is JobStatus.RUNNING


class BrokenHealthStore(PostgresStateStore):
    """The real store, except that reading job runs raises a foreign error ``failures`` times."""

    def __init__(self, database: Database, failures: int) -> None:
        super().__init__(database)
        self.failures = failures

    async def recent_jobs(
        self, tenant_id: str, *, job: str | None = None, limit: int = 50
    ) -> Sequence[JobRun]:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("a bug or a driver error nobody translated")
        return await super().recent_jobs(tenant_id, job=job, limit=limit)


async def test_an_error_while_planning_is_logged_backed_off_and_retried(
    steps: Steps, database: Database
) -> None:
    broken = BrokenHealthStore(database, failures=3)
    steps.jobs._store = broken  # the fault is injected under a real service
    steps.jobs.register(JobDefinition(name="hourly", description="", action=ok, schedule=Every(seconds=3600)))
    waits = [await steps.scheduler.step() for _ in range(3)]
    status = steps.scheduler.status
    assert status.leader is False
    assert status.consecutive_errors == 3
    assert status.last_error is not None
    assert "RuntimeError" in status.last_error
    assert waits == [0.5, 1.0, 2.0]  # backing off, bounded by the leader retry interval
    await steps.step()  # the store answers again: leadership taken afresh, the job caught up
    assert status.leader is True
    assert status.consecutive_errors == 0
    assert [t for t, _ in await steps.triggers("hourly")] == ["catch_up"]


async def test_a_loop_that_stops_stepping_is_not_alive(steps: Steps) -> None:
    steps.scheduler.status.running = True
    await steps.step()
    assert steps.scheduler.alive()
    steps.clock.advance(steps.scheduler.stale_after_seconds() + 1)
    assert not steps.scheduler.alive()
    assert steps.scheduler.health()["alive"] is False
