"""The gateway's share of issue 12: predicted effects are the server's, idempotency keys belong to their
requester, and a dry run is a read that needs ``proposals:read`` — each replaying the attack it stops."""

from __future__ import annotations

import httpx
import pytest

from studio_brain.bootstrap import Brain
from studio_brain.domain.errors import PermissionDenied
from studio_brain.domain.proposals import Status
from tests.fixtures.auth import TokenMinter
from tests.integration.gateway_kit import ALICE, BOB, NOTE, WHY, Kit, agent
from tests.integration.test_input_guard_http import agent_headers


async def test_a_requesters_predicted_effects_never_replace_the_connectors_dry_run(kit: Kit) -> None:
    # issue 12: "nothing changes: status read only" replaced the connector's dry-run devices/21/off,
    # the approver approved that, and the kiln outlet switched off
    created = await kit.service.create_proposal(
        ALICE,
        "hubitat.switch.set",
        {"deviceId": "21", "state": "off"},
        WHY,
        predicted_effects=["nothing changes: status read only"],
    )
    proposal = created.proposal
    assert proposal.predicted_effects == ["switch.set 21 off"]
    assert proposal.extra["claimedEffects"] == ["nothing changes: status read only"]
    # the approval binds to the server's effects: the claim is not part of what is approved
    approved = await kit.service.approve(BOB, proposal.id, "checked the real effect")
    assert approved.predicted_effects == ["switch.set 21 off"]
    assert approved.binding() == proposal.binding()
    unclaimed = await kit.service.create_proposal(
        ALICE, "hubitat.switch.set", {"deviceId": "21", "state": "off"}, WHY
    )
    assert unclaimed.proposal.predicted_effects_hash == proposal.predicted_effects_hash


async def test_a_claimed_effect_on_a_capability_without_a_dry_run_is_not_a_prediction(kit: Kit) -> None:
    created = await kit.service.create_proposal(
        ALICE, "studio.note.append", NOTE, WHY, predicted_effects=["deletes every note"]
    )
    assert created.proposal.predicted_effects != ["deletes every note"]
    assert created.proposal.extra["claimedEffects"] == ["deletes every note"]


async def test_an_agent_reusing_a_staff_members_idempotency_key_gets_its_own_proposal_not_theirs(
    kit: Kit,
) -> None:
    # issue 12: "an agent got staff-a's proposal back, replayed"
    bot = agent("notes-bot", "capability:studio.note.append:propose", "proposals:read")
    mine = await kit.service.create_proposal(ALICE, "studio.note.append", NOTE, WHY, idempotency_key="key-1")
    theirs = await kit.service.create_proposal(bot, "studio.note.append", NOTE, WHY, idempotency_key="key-1")
    assert not theirs.replayed
    assert theirs.proposal.id != mine.proposal.id
    assert theirs.proposal.requested_by == "notes-bot"
    again = await kit.service.create_proposal(ALICE, "studio.note.append", NOTE, WHY, idempotency_key="key-1")
    assert again.replayed
    assert again.proposal.id == mine.proposal.id


async def test_a_dry_run_needs_the_proposals_read_scope(kit: Kit) -> None:
    created = await kit.service.create_proposal(
        ALICE, "hubitat.switch.set", {"deviceId": "5", "state": "off"}, WHY
    )
    for caller in (agent("state-bot", "state:read"), agent("no-scopes")):
        with pytest.raises(PermissionDenied) as refused:
            await kit.service.dry_run(caller, created.proposal.id)
        assert refused.value.reason_code == "SCOPE_REQUIRED"
    report = await kit.service.dry_run(agent("reader", "proposals:read"), created.proposal.id)
    assert report["predictedEffects"] == ["switch.set 5 off"]
    assert created.proposal.status is Status.PENDING_APPROVAL


async def test_over_http_a_state_reader_agent_and_a_member_are_refused_a_dry_run(
    api_client: httpx.AsyncClient, api_brain: Brain, tokens: TokenMinter
) -> None:
    # issue 12: "GET /api/v1/proposals/{id}/dry-run skips the scope check (non-staff and state:read got 200)"
    alice = tokens.headers("alice", staff=True)
    created = await api_client.post(
        "/api/v1/proposals",
        json={"capabilityId": "studio.note.append", "input": {"text": "hello"}, "rationale": "a good reason"},
        headers=alice,
    )
    pid = created.json()["proposal"]["id"]
    state_reader = await agent_headers(api_brain, "state:read")
    for headers in (state_reader, tokens.headers("member-1", roles=["member"])):
        response = await api_client.get(f"/api/v1/proposals/{pid}/dry-run", headers=headers)
        assert response.status_code == 403, response.text
        assert response.json()["reasonCode"] == "SCOPE_REQUIRED"
    reader = await agent_headers(api_brain, "proposals:read")
    assert (await api_client.get(f"/api/v1/proposals/{pid}/dry-run", headers=reader)).status_code == 200
    assert (await api_client.get(f"/api/v1/proposals/{pid}/dry-run", headers=alice)).status_code == 200


async def test_over_http_the_proposal_shows_claimed_effects_apart_from_the_servers(
    api_client: httpx.AsyncClient, tokens: TokenMinter
) -> None:
    alice = tokens.headers("alice", staff=True)
    created = await api_client.post(
        "/api/v1/proposals",
        json={
            "capabilityId": "studio.note.append",
            "input": {"text": "hello"},
            "rationale": "a good reason",
            "predictedEffects": ["nothing changes"],
        },
        headers=alice,
    )
    body = created.json()["proposal"]
    assert body["claimedEffects"] == ["nothing changes"]
    assert body["predictedEffects"] != ["nothing changes"]
    assert body["effectsPrediction"] == "server"


async def test_the_cockpit_says_no_prediction_available_and_labels_a_claim_as_the_requesters(
    api_client: httpx.AsyncClient, api_brain: Brain, tokens: TokenMinter, admin_headers: dict[str, str]
) -> None:
    alice = tokens.headers("alice", staff=True)
    created = await api_client.post(
        "/api/v1/proposals",
        json={
            "capabilityId": "roborock.clean.start",
            "input": {"segments": [2]},
            "rationale": "clean the glaze room tonight",
            "predictedEffects": ["nothing changes: status read only"],
        },
        headers=alice,
    )
    assert created.status_code == 201, created.text
    body = created.json()["proposal"]
    assert body["predictedEffects"] == []
    assert body["effectsPrediction"] == "unavailable"
    page = await api_client.get(f"/proposals/{body['id']}", headers=admin_headers)
    assert page.status_code == 200, page.text
    assert 'data-testid="no-prediction"' in page.text
    assert "No prediction available." in page.text
    claimed = page.text.split('data-testid="claimed-effects"', 1)[1]
    assert "nothing changes: status read only" in claimed
    assert "Claimed by the requester" in page.text
