"""``/readyz`` and the cockpit say when the scheduler is not running (issue 13, item 1).

Fault: after a database outage the scheduler loop had died for good, and ``/healthz`` and ``/readyz``
kept answering 200 while no job ran again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from studio_brain.bootstrap import Brain, DatabaseTarget, open_brain
from studio_brain.domain.identity import system_principal
from studio_brain.services.scheduling import Scheduler
from studio_brain.settings import load_settings
from studio_brain.web.app import create_app
from studio_brain.web.pages_attention import needs_attention
from tests.fakes import FakeClock
from tests.fixtures.auth import TEST_ADMIN_TOKEN

pytestmark = pytest.mark.postgres


@pytest.fixture
async def brain(database_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Brain]:
    monkeypatch.setenv("STUDIO_BRAIN_DATABASE_URL", database_url)
    monkeypatch.setenv("STUDIO_BRAIN_SCHEDULER_OVERDUE_GRACE_SECONDS", "86400000")
    monkeypatch.setenv("STUDIO_BRAIN_ADMIN_TOKEN", TEST_ADMIN_TOKEN)  # staff see the details
    async with open_brain(load_settings(), target=DatabaseTarget(url=database_url, embedded=None)) as opened:
        yield opened


def scheduler_of(brain: Brain, clock: FakeClock, *, alive: bool) -> Scheduler:
    scheduler = Scheduler(brain.jobs, brain.leader_lock, clock)
    if alive:  # what run() keeps up to date while the loop steps
        scheduler.status.running = True
        scheduler.status.heartbeat = clock.monotonic()
    return scheduler


async def readyz(brain: Brain, scheduler: Scheduler | None) -> httpx.Response:
    app = create_app(brain=brain)
    app.state.scheduler = scheduler
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
    ) as client:
        return await client.get("/readyz", headers={"x-studio-brain-admin-token": TEST_ADMIN_TOKEN})


async def test_readyz_is_503_when_the_scheduler_loop_is_not_alive(brain: Brain) -> None:
    clock = FakeClock()
    alive = scheduler_of(brain, clock, alive=True)
    ok = await readyz(brain, alive)
    assert ok.status_code == 200, ok.json()
    assert ok.json()["checks"]["scheduler"]["alive"] is True

    clock.advance(alive.stale_after_seconds() + 1)  # the loop stopped stepping
    stuck = await readyz(brain, alive)
    assert stuck.status_code == 503
    assert stuck.json()["checks"]["scheduler"]["alive"] is False

    dead = await readyz(brain, scheduler_of(brain, clock, alive=False))  # run() ended
    assert dead.status_code == 503
    assert dead.json()["ok"] is False


async def test_readyz_is_503_when_a_job_is_overdue_past_its_grace(brain: Brain) -> None:
    scheduler = scheduler_of(brain, FakeClock(), alive=True)
    brain.settings.__dict__["scheduler_overdue_grace_seconds"] = 1.0  # jobs that never ran are overdue
    response = await readyz(brain, scheduler)
    assert response.status_code == 503
    check = response.json()["checks"]["scheduler"]
    assert check["alive"] is True
    assert "connector-health" in check["overdue"]
    assert response.json()["checks"]["jobs"]["jobs"]["connector-health"]["overdueSince"]


async def test_without_a_scheduler_in_this_process_readyz_does_not_gate_on_one(brain: Brain) -> None:
    response = await readyz(brain, None)
    assert response.status_code == 200
    assert "scheduler" not in response.json()["checks"]


async def test_the_cockpit_names_a_scheduler_that_is_not_running(brain: Brain) -> None:
    principal = system_principal(brain.tenant_id)
    dead = scheduler_of(brain, FakeClock(), alive=False)
    found = await needs_attention(brain, principal, tenant=brain.tenant_id, scheduler=dead)
    texts = [item.text for item in found.sorted()]
    assert any("scheduler is not running" in t for t in texts), texts
    alive = scheduler_of(brain, FakeClock(), alive=True)
    found = await needs_attention(brain, principal, tenant=brain.tenant_id, scheduler=alive)
    assert not any("scheduler is not running" in item.text for item in found.sorted())
