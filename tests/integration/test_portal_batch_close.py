"""The Portal's Create-proposal form end to end over HTTP: ``firestore.batch.close`` with the form's
``requestInput: {batchId, tenantId}`` proposed by one staff member, approved by a second, executed through
the Functions write adapter calling ``pickedUpAndClose`` — the fake Function closes the batch in the
Firestore emulator (never "executed" without that effect) (issue 21)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from studio_brain.adapters.connectors.functions.fake import FakeFunctions
from studio_brain.adapters.connectors.functions.store import EmulatorPilotStore
from studio_brain.bootstrap import Brain, DatabaseTarget, open_brain
from studio_brain.settings import load_settings
from studio_brain.web.app import create_app
from tests.fixtures.auth import TEST_ADMIN_TOKEN, TokenMinter
from tests.fixtures.firestore import TEST_PROJECT, wipe_firestore
from tests.integration.cloud_kit import REFRESH, firestore_client
from tests.portal_fixtures import load

pytestmark = [pytest.mark.postgres, pytest.mark.firestore]


def midday_zone(now: datetime) -> str:
    """A fixed-offset zone where it is about noon now: the capability's allowedHours (06:00-22:00 studio
    time) hold whenever the suite runs."""
    offset = 12 - now.astimezone(UTC).hour  # hours ahead of UTC
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"


@pytest.fixture
def functions(firestore_emulator_host: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeFunctions]:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator_host)
    wipe_firestore(firestore_emulator_host)
    fake = FakeFunctions(
        store=EmulatorPilotStore(project_id=TEST_PROJECT), project_id=TEST_PROJECT, refresh_token=REFRESH
    )
    fake.start()
    firestore_client().collection("batches").document("batch-7").set(
        {"ownerUid": "member-3", "isClosed": False, "state": "SHELVED"}
    )
    try:
        yield fake
    finally:
        fake.stop()
        wipe_firestore(firestore_emulator_host)


@pytest.fixture
async def client(
    database_url: str, auth_env: None, functions: FakeFunctions, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("STUDIO_BRAIN_DATABASE_URL", database_url)
    monkeypatch.setenv("STUDIO_BRAIN_TIMEZONE", midday_zone(datetime.now(UTC)))
    monkeypatch.setenv("STUDIO_BRAIN_FIRESTORE_PROJECT_ID", TEST_PROJECT)
    monkeypatch.setenv("STUDIO_BRAIN_FUNCTIONS_BASE_URL", functions.functions_url)
    monkeypatch.setenv("STUDIO_BRAIN_FUNCTIONS_TOKEN_URL", functions.token_url)
    monkeypatch.setenv("STUDIO_BRAIN_FUNCTIONS_REFRESH_TOKEN", REFRESH)
    monkeypatch.setenv("STUDIO_BRAIN_FUNCTIONS_MODE", "read_write")
    monkeypatch.setenv("STUDIO_BRAIN_FUNCTIONS_WRITE_ALLOWLIST", "pickedUpAndClose:close")
    brain: Brain
    async with open_brain(load_settings(), target=DatabaseTarget(url=database_url, embedded=None)) as brain:
        transport = httpx.ASGITransport(app=create_app(brain=brain))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
            yield http


def portal(tokens: TokenMinter, uid: str) -> dict[str, str]:
    return {
        **tokens.headers(uid, staff=True),
        "x-studio-brain-admin-token": TEST_ADMIN_TOKEN,
        "content-type": "application/json",
    }


async def test_the_portal_form_batch_close_approved_by_a_second_person_closes_the_batch(
    client: httpx.AsyncClient, functions: FakeFunctions, tokens: TokenMinter
) -> None:
    created = await client.post(
        "/api/capabilities/proposals",
        json=load("portal_create_batch_close.json"),
        headers=portal(tokens, "staff-1"),
    )
    assert created.status_code == 201, created.text
    proposal_id = created.json()["proposal"]["id"]
    assert "requestInput.tenantId" in created.json()["ignored"]

    # the requester cannot run it, and nothing is sent before a second person approved
    sent_before = functions.request_count
    early = await client.post(
        f"/api/capabilities/proposals/{proposal_id}/execute", json={}, headers=portal(tokens, "staff-1")
    )
    assert early.status_code == 409
    assert early.json()["decision"]["allowed"] is False
    assert functions.request_count == sent_before

    approved = await client.post(
        f"/api/capabilities/proposals/{proposal_id}/approve",
        json={"rationale": "checked with the member"},
        headers=portal(tokens, "staff-2"),
    )
    assert approved.status_code == 200, approved.text
    executed = await client.post(
        f"/api/capabilities/proposals/{proposal_id}/execute",
        json={"idempotencyKey": "portal-close-1"},
        headers=portal(tokens, "staff-2"),
    )
    assert executed.status_code == 200, executed.text
    body: dict[str, Any] = executed.json()
    assert body["ok"] is True
    assert body["proposal"]["status"] == "executed"

    batch = firestore_client().collection("batches").document("batch-7").get().to_dict()
    assert batch["isClosed"] is True
    assert batch["state"] == "CLOSED_PICKED_UP"
    timeline = [d.to_dict() for d in firestore_client().collection("batches/batch-7/timeline").stream()]
    assert [e["type"] for e in timeline] == ["PICKED_UP_AND_CLOSE"]
