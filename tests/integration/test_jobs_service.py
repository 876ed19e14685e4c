"""Running jobs on real PostgreSQL: every run persisted and audited, overlaps skipped and recorded (across
connection pools, as across brains), follow-ups chained, failures counted and backed off in the health."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from studio_brain.adapters.audit_files import CheckpointFile
from studio_brain.adapters.clock import UUID7Factory
from studio_brain.adapters.keys import Ed25519Verifier, load_signing_key
from studio_brain.adapters.postgres.database import Database
from studio_brain.adapters.postgres.event_store import PostgresEventStore
from studio_brain.adapters.postgres.leader import PostgresJobLocks
from studio_brain.adapters.postgres.state_store import PostgresStateStore
from studio_brain.domain.audit import AuditQuery
from studio_brain.domain.errors import NotFound, StudioBrainError
from studio_brain.domain.schedule import Every
from studio_brain.domain.state import JobStatus
from studio_brain.services.audit import AuditService
from studio_brain.services.job_catalogue import audit_checkpoint_job
from studio_brain.services.jobs import JobContext, JobDefinition, JobService
from tests.fakes import FakeClock, SequentialIds

pytestmark = pytest.mark.postgres

TENANT = "monsoonfire-main"


def make_service(database: Database, clock: FakeClock, ids: SequentialIds) -> JobService:
    return JobService(
        tenant_id=TENANT,
        state_store=PostgresStateStore(database),
        locks=PostgresJobLocks(database),
        clock=clock,
        ids=ids,
        zone=ZoneInfo("America/Phoenix"),
        events=PostgresEventStore(database, UUID7Factory()),
        backoff_base_seconds=60,
        backoff_cap_seconds=600,
        runner="test:1",
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(database: Database, clock: FakeClock) -> JobService:
    return make_service(database, clock, SequentialIds("run"))


def job(name: str, action: Any, *, then: tuple[str, ...] = ()) -> JobDefinition:
    return JobDefinition(name=name, description=name, action=action, schedule=Every(seconds=3600), then=then)


async def succeed(_ctx: JobContext) -> Mapping[str, Any]:
    return {"made": 3}


async def fail_ours(_ctx: JobContext) -> Mapping[str, Any]:
    raise StudioBrainError("the cloud read timed out")


async def audit_actions(database: Database) -> list[str]:
    page = await PostgresEventStore(database, UUID7Factory()).query(TENANT, AuditQuery(limit=200))
    return [e.action for e in page.events]


async def test_a_successful_run_is_recorded_with_its_summary_and_audited(
    service: JobService, database: Database
) -> None:
    service.register(job("snapshot", succeed))
    [run] = await service.run("snapshot")
    assert run.status is JobStatus.SUCCEEDED
    stored = (await PostgresStateStore(database).recent_jobs(TENANT, job="snapshot"))[0]
    assert stored.status is JobStatus.SUCCEEDED
    assert stored.finished_at is not None
    assert stored.summary == {"made": 3, "trigger": "manual", "scheduledFor": None, "runner": "test:1"}
    assert await audit_actions(database) == ["scheduler.job.succeeded"]


async def test_a_failing_job_records_its_error_and_never_raises(
    service: JobService, database: Database
) -> None:
    service.register(job("snapshot", fail_ours))
    [run] = await service.run("snapshot")
    assert run.status is JobStatus.FAILED
    assert run.error == "STUDIO_BRAIN_ERROR: the cloud read timed out"
    assert await audit_actions(database) == ["scheduler.job.failed"]


async def test_a_foreign_error_is_recorded_by_type_so_its_text_cannot_leak_a_secret(
    service: JobService,
) -> None:
    async def leaky(_ctx: JobContext) -> Mapping[str, Any]:
        raise RuntimeError("connect failed for postgresql://brain:hunter2@db/x")

    service.register(job("leaky", leaky))
    [run] = await service.run("leaky")
    assert run.error == "RuntimeError: unexpected error (see the log)"


async def test_an_overlapping_run_is_skipped_and_recorded_even_from_another_pool(
    service: JobService, database: Database, database_url: str, clock: FakeClock
) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(_ctx: JobContext) -> Mapping[str, Any]:
        started.set()
        await release.wait()
        return {}

    service.register(job("snapshot", slow))
    first = asyncio.create_task(service.run("snapshot", trigger="schedule"))
    await started.wait()
    [same_process] = await service.run("snapshot", trigger="manual")
    async with Database(database_url, max_size=2) as other_pool:
        other = make_service(other_pool, clock, SequentialIds("other"))
        other.register(job("snapshot", slow))
        [other_brain] = await other.run("snapshot", trigger="schedule")
    release.set()
    [finished] = await first
    assert finished.status is JobStatus.SUCCEEDED
    assert same_process.status is other_brain.status is JobStatus.SKIPPED
    assert same_process.summary["reason"] == "overlap"
    statuses = [r.status for r in await PostgresStateStore(database).recent_jobs(TENANT, job="snapshot")]
    assert sorted(statuses) == [JobStatus.SKIPPED, JobStatus.SKIPPED, JobStatus.SUCCEEDED]
    assert (await audit_actions(database)).count("scheduler.job.skipped") == 2


async def test_follow_up_jobs_run_after_a_success_and_not_after_a_failure(service: JobService) -> None:
    calls: list[str] = []

    async def swarms(_ctx: JobContext) -> Mapping[str, Any]:
        calls.append(_ctx.trigger)
        return {}

    service.register(job("snapshot", succeed, then=("swarms",)))
    service.register(job("broken", fail_ours, then=("swarms",)))
    service.register(job("swarms", swarms))
    runs = await service.run("snapshot")
    assert [r.job for r in runs] == ["snapshot", "swarms"]
    assert calls == ["after:snapshot"]
    assert [r.job for r in await service.run("broken")] == ["broken"]
    assert calls == ["after:snapshot"]


async def test_health_counts_consecutive_failures_and_shows_the_backoff(
    service: JobService, clock: FakeClock
) -> None:
    outcomes = iter([fail_ours, fail_ours, succeed])

    async def flaky(ctx: JobContext) -> Mapping[str, Any]:
        return await next(outcomes)(ctx)

    service.register(job("snapshot", flaky))
    await service.run("snapshot")
    clock.advance(10)
    await service.run("snapshot")
    [health] = await service.health()
    assert health.consecutive_failures == 2
    assert not health.ok
    assert health.last_error == "STUDIO_BRAIN_ERROR: the cloud read timed out"
    assert health.backoff_until == clock.now() + timedelta(seconds=120)
    check = await service.health_check()
    assert check["ok"] is False
    assert check["failing"] == ["snapshot"]
    assert check["jobs"]["snapshot"]["consecutiveFailures"] == 2
    clock.advance(200)
    await service.run("snapshot")
    assert (await service.health_check())["ok"] is True


async def test_a_cancelled_run_is_recorded_as_failed_not_left_running(
    service: JobService, database: Database
) -> None:
    started = asyncio.Event()

    async def forever(_ctx: JobContext) -> Mapping[str, Any]:
        started.set()
        await asyncio.sleep(3600)
        return {}

    service.register(job("snapshot", forever))
    task = asyncio.create_task(service.run("snapshot"))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [run] = await PostgresStateStore(database).recent_jobs(TENANT, job="snapshot")
    assert run.status is JobStatus.FAILED
    assert run.error is not None
    assert "cancelled" in run.error


async def test_an_unknown_job_is_named_with_the_known_ones(service: JobService) -> None:
    service.register(job("snapshot", succeed))
    with pytest.raises(NotFound, match="known: snapshot"):
        await service.run("snapshto")


async def test_the_audit_checkpoint_job_signs_the_head_of_a_real_audit_log(
    service: JobService, database: Database, tmp_path: Path
) -> None:
    signer = load_signing_key(tmp_path / "audit.key", secret_hex=None)
    events = PostgresEventStore(database, UUID7Factory())
    audit = AuditService(
        events=events,
        checkpoint_stores=[CheckpointFile(tmp_path / "checkpoints.jsonl")],
        signer=signer,
        verifier=Ed25519Verifier(),
        clock=FakeClock(),
    )
    service.register(job("audit-checkpoint", audit_checkpoint_job(audit, TENANT)))
    service.register(job("snapshot", succeed))
    await service.run("snapshot")  # puts an event in the log
    [run] = await service.run("audit-checkpoint")
    assert run.status is JobStatus.SUCCEEDED, run.error
    assert run.summary["checkpoint"]["seq"] == 1
    assert (tmp_path / "checkpoints.jsonl").read_text().count("\n") == 1
