"""A job run killed with kill -9 mid-run (a real process) is closed as ``abandoned`` by the next leader
(issue 13: it stayed ``running`` in ``job_runs`` forever)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from datetime import UTC
from typing import Any

import pytest

from studio_brain.adapters.clock import SystemClock, UUID7Factory
from studio_brain.adapters.postgres.database import Database
from studio_brain.adapters.postgres.leader import PostgresJobLocks, PostgresLeaderLock
from studio_brain.adapters.postgres.state_store import PostgresStateStore
from studio_brain.domain.schedule import Every
from studio_brain.domain.state import JobStatus
from studio_brain.services.jobs import JobContext, JobDefinition, JobService
from studio_brain.services.scheduling import Scheduler

pytestmark = pytest.mark.postgres

TENANT = "monsoonfire-main"

CHILD = """
import asyncio
from datetime import UTC
from studio_brain.adapters.clock import SystemClock, UUID7Factory
from studio_brain.adapters.postgres.database import Database
from studio_brain.adapters.postgres.leader import PostgresJobLocks
from studio_brain.adapters.postgres.state_store import PostgresStateStore
from studio_brain.domain.schedule import Every
from studio_brain.services.jobs import JobDefinition, JobService

async def slow(_ctx):
    print("running", flush=True)
    await asyncio.sleep(120)
    return {{}}

async def main():
    db = Database({url!r})
    await db.open()
    jobs = JobService(tenant_id={tenant!r}, state_store=PostgresStateStore(db), locks=PostgresJobLocks(db),
                      clock=SystemClock(), ids=UUID7Factory(), zone=UTC)
    jobs.register(JobDefinition(name="slow", description="", action=slow, schedule=Every(seconds=3600)))
    await jobs.run("slow", trigger="schedule")

asyncio.run(main())
"""


def make_jobs(database: Database) -> JobService:
    async def quick(_ctx: JobContext) -> Mapping[str, Any]:
        return {}

    jobs = JobService(
        tenant_id=TENANT,
        state_store=PostgresStateStore(database),
        locks=PostgresJobLocks(database),
        clock=SystemClock(),
        ids=UUID7Factory(),
        zone=UTC,
    )
    jobs.register(JobDefinition(name="slow", description="", action=quick, schedule=Every(seconds=3600)))
    return jobs


async def test_a_run_killed_mid_job_is_closed_as_abandoned_on_the_next_start(
    database: Database, database_url: str
) -> None:
    code = textwrap.dedent(CHILD.format(url=database_url, tenant=TENANT))
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        while line and line.strip() != "running":  # log lines come first
            line = child.stdout.readline()
        assert line.strip() == "running"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        child.kill()
        child.wait(timeout=10)
        assert child.stdout is not None
        child.stdout.close()
    store = PostgresStateStore(database)
    [left] = await store.recent_jobs(TENANT, job="slow")
    assert left.status is JobStatus.RUNNING  # what kill -9 leaves behind

    jobs = make_jobs(database)
    lock = PostgresLeaderLock(database_url, tenant_id=TENANT)
    scheduler = Scheduler(jobs, lock, SystemClock())
    try:
        for _ in range(50):  # the server frees the dead run's lock once it notices the dropped session
            await scheduler.step()
            await scheduler.settle()
            runs = {r.id: r for r in await store.recent_jobs(TENANT, job="slow")}
            if runs[left.id].status is JobStatus.ABANDONED:
                break
            await asyncio.sleep(0.1)
    finally:
        await lock.release()
    assert runs[left.id].status is JobStatus.ABANDONED
    assert runs[left.id].finished_at is not None
    assert runs[left.id].error is not None
    assert "abandoned" in runs[left.id].error
