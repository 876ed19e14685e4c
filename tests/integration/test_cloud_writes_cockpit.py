"""Proposing a cloud write in the cockpit: one person drafts an ops note on a member's batch, another
approves and executes it, and the proposal page says where it landed."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

import studio_brain
from studio_brain.bootstrap import Brain, DatabaseTarget, open_brain
from studio_brain.cli.cloud_writes import prepare_demo_cloud_writes
from studio_brain.domain.proposals import Status
from studio_brain.settings import load_settings
from tests.fixtures.identity import TestPerson, enrol_person, session_cookie

pytestmark = pytest.mark.postgres
BASE = "http://127.0.0.1:8787"


@pytest.fixture
async def brain(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Brain]:
    text = (Path(studio_brain.__file__).parent / "capabilities.toml").read_text(encoding="utf-8")
    registry = tmp_path / "capabilities.toml"  # no write windows: the test must not depend on the wall clock
    registry.write_text(
        "\n".join(line for line in text.splitlines() if not line.startswith("allowedHours")), encoding="utf-8"
    )
    monkeypatch.setenv("STUDIO_BRAIN_GATEWAY_REGISTRY_FILE", str(registry))
    monkeypatch.setenv("STUDIO_BRAIN_DATABASE_URL", database_url)
    monkeypatch.setenv("STUDIO_BRAIN_HOME", str(tmp_path))
    monkeypatch.setenv("STUDIO_BRAIN_COCKPIT_URL", BASE)
    async with open_brain(load_settings(), target=DatabaseTarget(url=database_url, embedded=None)) as opened:
        yield opened


@pytest.fixture
async def client(brain: Brain) -> AsyncIterator[httpx.AsyncClient]:
    from studio_brain.web.app import create_app

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(brain=brain)), base_url=BASE
    ) as http:
        yield http


async def post(client: httpx.AsyncClient, who: TestPerson, path: str, form: dict[str, str]) -> httpx.Response:
    page = await client.get("/", headers=session_cookie(who.session))
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match
    return await client.post(
        path,
        data={"csrf_token": match.group(1), **form},
        headers={**session_cookie(who.session), "origin": BASE},
    )


async def test_one_person_proposes_a_cloud_write_in_the_cockpit_and_another_approves_and_executes_it(
    brain: Brain, client: httpx.AsyncClient
) -> None:
    ada = await enrol_person(brain, "Ada", owner=True)
    grace = await enrol_person(brain, "Grace", by=ada.principal)
    fake = await prepare_demo_cloud_writes(brain)
    try:
        batch_id, batch = next(
            (path.split("/")[1], doc)
            for path, doc in fake.store.store._docs.items()  # the demo's batches
            if path.startswith("batches/") and doc.get("isClosed") is False
        )
        listing = await client.get("/proposals", headers=session_cookie(grace.session))
        assert 'href="/proposals/new-cloud-write' in listing.text
        form = await client.get("/proposals/new-cloud-write", headers=session_cookie(grace.session))
        assert form.status_code == 200
        assert "Propose a cloud write" in form.text
        refused = await post(
            client,
            grace,
            "/proposals/new-cloud-write",
            {
                "capability": "firestore.ops_note.append",
                "batchId": batch_id,
                "ownerUid": "x",
                "note": "hi",
                "rationale": "a member asked for it",
            },
        )
        assert refused.status_code == 400
        assert 'data-testid="refusal"' in refused.text
        made = await post(
            client,
            grace,
            "/proposals/new-cloud-write",
            {
                "capability": "firestore.ops_note.append",
                "batchId": batch_id,
                "ownerUid": str(batch["ownerUid"]),
                "note": "Glaze ran onto the shelf; cleaned before loading.",
                "rationale": "a member asked for it",
            },
        )
        assert made.status_code == 303, made.text
        proposal_id = made.headers["location"].split("/proposals/")[1].split("?")[0]
        proposal = await brain.gateway.get(ada.principal, proposal_id)
        assert (proposal.status, proposal.requested_by) == (Status.PENDING_APPROVAL, grace.principal.actor_id)
        check = next(e for e in proposal.predicted_effects if e["kind"] == "check")
        assert (check["exists"], check["ownerMatches"]) == (True, True)
        assert fake.writes == []  # proposing sends nothing (the cockpit's health probes are GETs)

        await brain.gateway.approve(ada.principal, proposal_id, "checked it with the member")
        done = await brain.gateway.execute(ada.principal, proposal_id)
        assert done.proposal.status is Status.EXECUTED
        page = (await client.get(f"/proposals/{proposal_id}", headers=session_cookie(ada.session))).text
        assert "Written in the studio&#39;s cloud: studioBrainPilotOpsNotes/" in page or (
            "Written in the studio's cloud: studioBrainPilotOpsNotes/" in page
        )
        assert "attestation" in page
    finally:
        fake.stop()
