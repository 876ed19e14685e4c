"""The scheduler loop on real PostgreSQL and real time (short schedules): ticks, stepping down when the
leader lock is lost, and a clean stop. What depends only on time (catch-up, back-off, retries) is proved on
a fake clock in ``test_scheduler_steps.py``, without sleeping."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC
from typing import Any

import psycopg
import pytest

from studio_brain.adapters.clock import SystemClock, UUID7Factory
from studio_brain.adapters.postgres.database import Database
from studio_brain.adapters.postgres.event_store import PostgresEventStore
from studio_brain.adapters.postgres.leader import PostgresJobLocks, PostgresLeaderLock
from studio_brain.adapters.postgres.state_store import PostgresStateStore
from studio_brain.domain.schedule import Every
from studio_brain.domain.state import JobRun, JobStatus
from studio_brain.services.jobs import JobContext, JobDefinition, JobService
from studio_brain.services.scheduling import Scheduler, scheduler_running

pytestmark = pytest.mark.postgres

TENANT = "monsoonfire-main"


def make_jobs(database: Database, *, backoff: float = 60.0) -> JobService:
    return JobService(
        tenant_id=TENANT,
        state_store=PostgresStateStore(database),
        locks=PostgresJobLocks(database),
        clock=SystemClock(),
        ids=UUID7Factory(),
        zone=UTC,
        events=PostgresEventStore(database, UUID7Factory()),
        backoff_base_seconds=backoff,
        backoff_cap_seconds=backoff * 8,
    )


async def runs(database: Database, job: str) -> list[JobRun]:
    return list(reversed(await PostgresStateStore(database).recent_jobs(TENANT, job=job, limit=500)))


async def wait_for(predicate: Any, *, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def ok(_ctx: JobContext) -> Mapping[str, Any]:
    return {}


async def test_a_scheduled_job_runs_once_per_tick(database: Database, database_url: str) -> None:
    jobs = make_jobs(database)
    jobs.register(JobDefinition(name="tick", description="", action=ok, schedule=Every(seconds=1)))
    async with scheduler_running(jobs, PostgresLeaderLock(database_url, tenant_id=TENANT), SystemClock()):
        await wait_for(lambda: _count(database, "tick", 4))
    ticks = [
        r.summary["scheduledFor"] for r in await runs(database, "tick") if r.summary["trigger"] == "schedule"
    ]
    assert len(ticks) >= 2
    assert len(ticks) == len(set(ticks))


async def test_losing_the_leader_lock_stops_the_running_jobs(database: Database, database_url: str) -> None:
    started = asyncio.Event()

    async def long(_ctx: JobContext) -> Mapping[str, Any]:
        started.set()
        await asyncio.sleep(60)
        return {}

    jobs = make_jobs(database)
    jobs.register(JobDefinition(name="long", description="", action=long, schedule=Every(seconds=3600)))
    lock = PostgresLeaderLock(database_url, tenant_id=TENANT)
    scheduler = Scheduler(jobs, lock, SystemClock(), leader_check_seconds=0.2, leader_retry_seconds=60)
    task = asyncio.create_task(scheduler.run())
    try:
        await asyncio.wait_for(started.wait(), timeout=10)
        assert scheduler.status.leader
        # the database drops the leader's session (a network cut, a failover, an operator)
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as admin:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'studio-brain-leader' AND datname = current_database()"
            )
        await wait_for(lambda: _status(database, "long", JobStatus.FAILED))
        # the run is recorded failed by the cancelled task itself; the scheduler forgets it just after
        await wait_for(lambda: _true(scheduler.status.running_jobs == set()), timeout=5)
        [run] = await runs(database, "long")
        assert run.error is not None
        assert "lost leadership" in run.error
    finally:
        scheduler.stop()
        await asyncio.wait_for(task, timeout=15)


async def test_stopping_releases_the_lock_for_another_brain(database: Database, database_url: str) -> None:
    jobs = make_jobs(database)
    async with scheduler_running(
        jobs, PostgresLeaderLock(database_url, tenant_id=TENANT), SystemClock()
    ) as sched:
        assert sched is not None
        await wait_for(lambda: _true(sched.status.leader))
    other = PostgresLeaderLock(database_url, tenant_id=TENANT)
    try:
        assert await other.try_acquire()
        assert await other.still_held()
    finally:
        await other.release()


async def test_only_one_lock_holder_at_a_time(database_url: str) -> None:
    first = PostgresLeaderLock(database_url, tenant_id=TENANT)
    second = PostgresLeaderLock(database_url, tenant_id=TENANT)
    other_tenant = PostgresLeaderLock(database_url, tenant_id="another-studio")
    try:
        assert await first.try_acquire()
        assert not await second.try_acquire()
        assert await other_tenant.try_acquire()
        await first.release()
        assert await second.try_acquire()
    finally:
        for lock in (first, second, other_tenant):
            await lock.release()


async def test_a_disabled_scheduler_runs_nothing(database: Database, database_url: str) -> None:
    jobs = make_jobs(database)
    jobs.register(JobDefinition(name="hourly", description="", action=ok, schedule=Every(seconds=3600)))
    lock = PostgresLeaderLock(database_url, tenant_id=TENANT)
    async with scheduler_running(jobs, lock, SystemClock(), enabled=False) as sched:
        assert sched is None
    assert await runs(database, "hourly") == []
    # nobody holds the leader lock: no loop was started
    assert await lock.try_acquire()
    await lock.release()


async def _count(database: Database, job: str, at_least: int) -> bool:
    return len(await runs(database, job)) >= at_least


async def _status(database: Database, job: str, status: JobStatus) -> bool:
    return any(r.status is status for r in await runs(database, job))


async def _true(value: bool) -> bool:
    return value
