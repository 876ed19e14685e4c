"""GET /healthz and /readyz answer in the Portal's shapes; /readyz is 503 when the database is down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from studio_brain.adapters.postgres.database import Database
from studio_brain.bootstrap import Brain, DatabaseTarget, open_brain
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.state import Completeness, SnapshotRun
from studio_brain.settings import load_settings
from studio_brain.web.app import create_app

pytestmark = pytest.mark.postgres


@pytest.fixture
async def brain(database_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Brain]:
    monkeypatch.setenv("STUDIO_BRAIN_DATABASE_URL", database_url)
    settings = load_settings()
    async with open_brain(settings, target=DatabaseTarget(url=database_url, embedded=None)) as opened:
        yield opened


def client_for(brain: Brain, *, staff: bool = True) -> httpx.AsyncClient:
    """A client on the app; as staff (the admin token) by default, since only staff see /readyz details."""
    app = create_app(brain=brain)
    headers = {"x-studio-brain-admin-token": app.state.auth.admin_token.get_secret_value()} if staff else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8787", headers=headers
    )


async def test_healthz_names_the_service_and_version(brain: Brain) -> None:
    async with client_for(brain) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert body["service"] == "studio-brain"
    assert body["version"]
    assert body["at"].endswith("Z")


async def test_readyz_is_ok_with_a_database_and_reports_no_snapshot_yet(brain: Brain) -> None:
    async with client_for(brain) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert body["checks"]["postgres"]["ok"] is True
    assert body["checks"]["postgres"]["latencyMs"] >= 0
    assert body["checks"]["snapshot"] == {
        "exists": False,
        "generatedAt": None,
        "ageMinutes": None,
        "maxAgeMinutes": brain.settings.snapshot_max_age_minutes,
        "requireFresh": False,
        "fresh": False,
    }


async def test_readyz_reports_the_latest_snapshot_age(brain: Brain) -> None:
    generated = datetime.now(UTC) - timedelta(minutes=30)
    document = {"schemaVersion": "v3.0"}
    await brain.state_store.save_run(
        SnapshotRun(
            id="r1",
            tenant_id=brain.tenant_id,
            snapshot_date=date.today(),
            generated_at=generated,
            completeness=Completeness.FULL,
            source="demo",
            document=document,
            snapshot_hash=sha256_hex(document),
        )
    )
    async with client_for(brain) as client:
        snapshot = (await client.get("/readyz")).json()["checks"]["snapshot"]
    assert snapshot["exists"] is True
    assert 29 <= snapshot["ageMinutes"] <= 31
    assert snapshot["fresh"] is True


async def test_readyz_is_503_when_the_database_is_down(brain: Brain, database_url: str) -> None:
    dead = Database("postgresql://postgres@127.0.0.1:1/nothing", max_size=1, timeout=0.5)
    # never opened: every connection attempt fails
    async with client_for(replace(brain, database=dead)) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False
    assert body["checks"]["postgres"]["ok"] is False
    assert body["checks"]["postgres"]["reasonCode"] == "DATABASE_UNAVAILABLE"
    assert "127.0.0.1:1" not in response.text
    assert "postgresql" not in response.text
    assert "nothing" not in response.text  # the database name


async def test_anonymous_readyz_says_only_ok_or_not_per_check(brain: Brain) -> None:
    # issue 12: anonymous /readyz showed the database URL, job error texts, schedules and back-offs
    async with client_for(brain, staff=False) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"ok", "checks", "at"}
    assert body["checks"]["postgres"] == {"ok": True}
    assert body["checks"]["snapshot"] == {"ok": True}
    assert all(set(check) == {"ok"} for check in body["checks"].values())


async def test_anonymous_readyz_of_a_dead_database_names_no_server(brain: Brain) -> None:
    dead = Database("postgresql://brain:pw@db.internal:6543/studio", max_size=1, timeout=0.5)
    async with client_for(replace(brain, database=dead), staff=False) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["postgres"] == {"ok": False}
    for leak in ("db.internal", "6543", "brain", "postgresql"):
        assert leak not in response.text


async def test_a_forged_credential_gets_the_quiet_readyz_not_a_401(brain: Brain) -> None:
    async with client_for(brain, staff=False) as client:
        response = await client.get("/readyz", headers={"x-studio-brain-admin-token": "wrong"})
    assert response.status_code == 200
    assert response.json()["checks"]["postgres"] == {"ok": True}


async def test_readyz_can_require_a_fresh_snapshot(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUDIO_BRAIN_READYZ_REQUIRE_FRESH_SNAPSHOT", "true")
    settings = load_settings()
    target = DatabaseTarget(url=database_url, embedded=None)
    async with open_brain(settings, target=target) as brain, client_for(brain) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["snapshot"]["requireFresh"] is True


async def test_readyz_shows_scheduled_jobs_and_a_failing_one_without_going_unready(brain: Brain) -> None:
    from studio_brain.domain.state import JobRun, JobStatus

    now = datetime.now(UTC)
    await brain.state_store.start_job(
        JobRun(
            id="run-1", job="snapshot", tenant_id=brain.tenant_id, status=JobStatus.RUNNING, started_at=now
        )
    )
    await brain.state_store.finish_job(
        JobRun(
            id="run-1",
            job="snapshot",
            tenant_id=brain.tenant_id,
            status=JobStatus.FAILED,
            started_at=now,
            finished_at=now,
            error="emulator unreachable",
        )
    )
    async with client_for(brain) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    jobs = response.json()["checks"]["jobs"]
    assert jobs["ok"] is False
    assert jobs["failing"] == ["snapshot"]
    assert jobs["jobs"]["snapshot"]["lastError"] == "emulator unreachable"
