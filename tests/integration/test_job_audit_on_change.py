"""Connector health is audited on a change of state, not on every success (issue 14): a job marked
``audit_repeated_success=False`` writes an audit row only when its outcome differs from the last run's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from studio_brain.adapters.postgres.database import Database
from studio_brain.domain.errors import StudioBrainError
from studio_brain.domain.schedule import Every
from studio_brain.services.jobs import JobContext, JobDefinition
from tests.fakes import FakeClock, SequentialIds
from tests.integration.test_jobs_service import audit_actions, make_service, pytestmark  # noqa: F401


async def test_identical_successes_are_audited_once_and_every_change_or_failure_is_audited(
    database: Database,
) -> None:
    clock = FakeClock()
    service = make_service(database, clock, SequentialIds("run"))
    state: dict[str, Any] = {"connectors": {"hubitat": "healthy"}, "fail": False}

    async def probe(_ctx: JobContext) -> Mapping[str, Any]:
        if state["fail"]:
            raise StudioBrainError("the probe itself failed")
        return {"connectors": dict(state["connectors"])}

    service.register(
        JobDefinition(
            name="connector-health",
            description="probe",
            action=probe,
            schedule=Every(seconds=300),
            audit_repeated_success=False,
        )
    )

    for _ in range(3):
        await service.run("connector-health", trigger="schedule")
        clock.advance(300)
    assert await audit_actions(database) == ["scheduler.job.succeeded"], "three identical runs, one row"

    state["connectors"]["hubitat"] = "down"
    await service.run("connector-health", trigger="schedule")
    state["fail"] = True
    await service.run("connector-health", trigger="schedule")
    state["fail"] = False
    await service.run("connector-health", trigger="schedule")
    await service.run("connector-health", trigger="schedule")

    # healthy (first), down (a change), the failure, down again after the failure (a change of state);
    # the last run repeats the one before it and is not audited
    assert await audit_actions(database) == [
        "scheduler.job.succeeded",
        "scheduler.job.succeeded",
        "scheduler.job.failed",
        "scheduler.job.succeeded",
    ]
    recorded = await service.health()
    assert recorded[0].last_status is not None, "every run is still recorded as a job run"
