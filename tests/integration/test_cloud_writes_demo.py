"""The demo's cloud write: the fake Functions over the demo's batches, a drafted ops note that a staff
person approves and executes, and the note in the demo's cloud with an attestation the JWKS verifies."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

import studio_brain
from studio_brain.adapters.attestation_keys import verify_token
from studio_brain.bootstrap import Brain, DatabaseTarget, attestation_signer, open_brain
from studio_brain.cli.cloud_writes import prepare_demo_cloud_writes
from studio_brain.domain.proposals import Status
from studio_brain.ports.gateway import ProposalFilter
from studio_brain.settings import load_settings
from studio_brain.web.app import create_app
from tests.integration.gateway_kit import staff

pytestmark = pytest.mark.postgres


@pytest.fixture
async def demo_brain(
    database_url: str, auth_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[Brain]:
    """A wired brain whose registry has no write windows (the test must not depend on the wall clock)."""
    text = (Path(studio_brain.__file__).parent / "capabilities.toml").read_text(encoding="utf-8")
    registry = tmp_path / "capabilities.toml"
    registry.write_text(
        "\n".join(line for line in text.splitlines() if not line.startswith("allowedHours")), encoding="utf-8"
    )
    monkeypatch.setenv("STUDIO_BRAIN_GATEWAY_REGISTRY_FILE", str(registry))
    monkeypatch.setenv("STUDIO_BRAIN_DATABASE_URL", database_url)
    async with open_brain(load_settings(), target=DatabaseTarget(url=database_url, embedded=None)) as brain:
        yield brain


async def test_the_demo_drafts_a_cloud_write_that_a_person_approves_executes_and_can_verify(
    demo_brain: Brain, admin_headers: dict[str, str]
) -> None:
    fake = await prepare_demo_cloud_writes(demo_brain)
    try:
        manager = staff("manager", tenant=demo_brain.settings.tenant_id)
        (drafted,) = await demo_brain.gateway.list_proposals(
            manager, ProposalFilter(capability_id="firestore.ops_note.append")
        )
        assert drafted.status is Status.PENDING_APPROVAL
        assert fake.request_count == 0
        await demo_brain.gateway.approve(manager, drafted.id, "the demo note looks right")
        done = await demo_brain.gateway.execute(manager, drafted.id)
        assert done.proposal.status is Status.EXECUTED
        assert done.proposal.result is not None
        pointer = done.proposal.result["resourcePointer"]
        note = fake.store.get(f"studioBrainPilotOpsNotes/{pointer['docId']}")
        assert note is not None
        assert note["resourceId"] == drafted.input["batchId"]
        action = fake.store.get(f"studioBrainPilotActions/{drafted.id}__{done.proposal.execution_key}")
        assert action is not None
        transport = httpx.ASGITransport(app=create_app(brain=demo_brain))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
            response = await client.get("/.well-known/jwks.json")  # no credentials: public on purpose
            also = await client.get("/api/v1/attestations/jwks")
            settled_again = await client.post(
                f"/api/v1/proposals/{drafted.id}/reconcile",
                json={"rationale": "check it once more please"},
                headers=admin_headers,
            )
        # an executed proposal has nothing left to prove: refused, with its reason code
        assert settled_again.status_code == 409, settled_again.text
        assert settled_again.json()["reasonCode"] == "INVALID_TRANSITION"
        assert response.status_code == 200
        published = response.json()
        assert (also.status_code, also.json()) == (200, published)
        assert published == attestation_signer(demo_brain.settings).jwks()
        assert verify_token(json.loads(action["approvedBy"])["attestation"], published).valid
        # the cockpit's proposal page says it in words, with the resource pointer
        from studio_brain.web.pages_actions import result_text

        assert result_text(done.proposal) == (
            f"Written in the studio's cloud: studioBrainPilotOpsNotes/{pointer['docId']}"
            "; signed approval attestation attached"
        )
    finally:
        fake.stop()


async def test_the_capability_list_shows_the_write_policies_of_the_cloud_writes(
    api_client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await api_client.get("/api/v1/capabilities", headers=admin_headers)
    assert response.status_code == 200, response.text
    rows = {row["id"]: row for row in response.json()["capabilities"]}
    close = rows["firestore.batch.close"]
    assert (close["risk"], close["requiresApproval"], close["readOnly"]) == ("high", True, False)
    assert close["policyMetadata"]["twoPerson"] is True
    assert close["policyMetadata"]["allowedHours"] == ["06:00-22:00"]
    assert close["policyMetadata"]["inputSchema"]["required"] == ["batchId"]
    note = rows["firestore.ops_note.append"]["policyMetadata"]
    assert (note["cloudWrite"], note["twoPerson"]) == (True, False)
    assert rows["studio.note.append"]["policyMetadata"]["cloudWrite"] is False
