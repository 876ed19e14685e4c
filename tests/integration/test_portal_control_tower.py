"""The Portal's current staff area against this brain: Control Tower (state, events, acknowledgement,
the calm empty paths), Reports' triage, the Create-proposal form for ``firestore.batch.close`` and the
refusal grammar — with the Portal's headers, parsed the way its code reads them (issue 21)."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest

from studio_brain.bootstrap import Brain
from studio_brain.domain.audit import AuditQuery
from studio_brain.logging import configure_logging
from tests.fixtures.auth import TEST_ADMIN_TOKEN, TokenMinter
from tests.portal_fixtures import load, render_state

pytestmark = pytest.mark.postgres


def log_stream() -> io.StringIO:
    """The log, in a stream of this test's own: other tests (and the CLI) reconfigure logging process-wide."""
    stream = io.StringIO()
    configure_logging(level="info", fmt="console", stream=stream)
    return stream


def portal_headers(tokens: TokenMinter, uid: str) -> dict[str, str]:
    """fetchControlTowerJson's headers: JSON, a staff Bearer token and the typed admin token."""
    return {
        **tokens.headers(uid, staff=True),
        "x-studio-brain-admin-token": TEST_ADMIN_TOKEN,
        "content-type": "application/json",
    }


async def test_control_tower_state_answers_in_the_shape_the_portal_renders_without_crashing(
    api_client: httpx.AsyncClient, tokens: TokenMinter
) -> None:
    response = await api_client.get("/api/control-tower/state", headers=portal_headers(tokens, "staff-1"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] is True
    state = body["state"]
    minimal = load("control_tower_state_minimal.json")["state"]
    # every field of the reference's minimal body is there, with the same JSON type
    for key, sample in minimal.items():
        assert key in state, key
        assert type(state[key]) is type(sample) or sample is None, key
    rendered = render_state(state)
    # a brain installed minutes ago: no job has run yet, and that is not an incident
    assert not [a for a in state["alerts"] if a["id"].startswith("job:")]
    assert rendered["status"] in {"healthy", "waiting", "error", "neutral"}
    (host,) = state["hosts"]
    assert host["hostId"] == "studio-brain"
    assert host["connectivity"] == "online"
    assert state["eventStream"] == {
        "endpoint": "/api/control-tower/events?stream=1",
        "transport": "sse",
        "heartbeatMs": 15000,
    }


def test_the_reference_minimal_state_renders_the_quiet_view_in_our_reading_of_the_portal() -> None:
    """The contract fixture is read as the Portal reads it: the calm standing-by view, no crash."""
    assert render_state(load("control_tower_state_minimal.json")["state"])["quiet"] is True
    broken = load("control_tower_state_minimal.json")["state"]
    del broken["memoryBrief"]
    with pytest.raises(KeyError):
        render_state(broken)


async def test_a_waiting_approval_shows_on_the_control_tower_and_makes_it_waiting(
    api_client: httpx.AsyncClient, tokens: TokenMinter
) -> None:
    headers = portal_headers(tokens, "staff-1")
    created = await api_client.post(
        "/api/capabilities/proposals",
        json={
            "capabilityId": "studio.note.append",
            "rationale": "Record the glaze test for the team",
            "requestInput": {"text": "Kiln 2 glaze test went well", "topic": "glaze"},
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    state = (await api_client.get("/api/control-tower/state", headers=headers)).json()["state"]
    rendered = render_state(state)
    (approval,) = rendered["approvals"]
    assert approval["id"] == created.json()["proposal"]["id"]
    assert approval["capabilityId"] == "studio.note.append"
    assert approval["requestedBy"] == "staff-1"
    assert approval["status"] == "pending_approval"
    assert approval["risk"] == "low"
    assert state["counts"]["waiting"] == 1
    assert state["ops"]["overallStatus"] in {"waiting", "error"}
    assert any(i["id"] == f"approval:{approval['id']}" for i in state["overview"]["needsAttention"])
    assert any(e["type"] == "approval.requested" for e in state["events"])


async def test_every_control_tower_path_needs_a_staff_identity(
    api_client: httpx.AsyncClient, tokens: TokenMinter
) -> None:
    member = tokens.headers("member-1", roles=["member"])
    paths = [
        "/api/control-tower/state",
        "/api/control-tower/events?stream=1",
        "/api/control-tower/partner/latest",
        "/api/agent-runtime/runs/run-1",
        "/api/trust-safety/triage/stats?limit=300",
    ]
    for path in paths:
        assert (await api_client.get(path)).status_code == 401, path
        assert (await api_client.get(path, headers=member)).status_code == 403, path
    ack = await api_client.post("/api/control-tower/overseer/ack", json={"note": "seen"})
    assert ack.status_code == 401


async def test_the_event_list_without_stream_is_json_as_the_portal_server_answers(
    api_client: httpx.AsyncClient, tokens: TokenMinter
) -> None:
    headers = portal_headers(tokens, "staff-1")
    await api_client.post("/api/control-tower/overseer/ack", json={"note": "morning check"}, headers=headers)
    body = (await api_client.get("/api/control-tower/events", headers=headers)).json()
    assert body["ok"] is True
    newest = body["events"][0]
    assert newest["sourceAction"] == "control_tower.overseer.acknowledged"
    assert set(newest) >= {"id", "at", "kind", "type", "severity", "title", "summary", "actor"}


async def test_an_overseer_acknowledgement_is_audited_with_who_and_the_note(
    api_client: httpx.AsyncClient, api_brain: Brain, tokens: TokenMinter
) -> None:
    response = await api_client.post(
        "/api/control-tower/overseer/ack",
        json={"note": "seen the kiln alert", "runId": "run-9"},
        headers=portal_headers(tokens, "staff-2"),
    )
    assert response.status_code == 200
    assert response.json()["ok"] is True
    assert response.json()["runId"] == "run-9"
    page = await api_brain.events.query(
        api_brain.tenant_id, AuditQuery(action_prefix="control_tower.overseer", newest_first=True)
    )
    (event,) = page.events
    assert event.actor_id == "staff-2"
    assert event.rationale == "seen the kiln alert"
    assert event.metadata["runId"] == "run-9"
    state = (
        await api_client.get("/api/control-tower/state", headers=portal_headers(tokens, "staff-1"))
    ).json()["state"]
    assert state["ops"]["overseerStatus"] == "acknowledged"


async def test_partner_rooms_and_agent_runs_answer_in_their_calm_empty_shapes(
    api_client: httpx.AsyncClient, tokens: TokenMinter
) -> None:
    headers = portal_headers(tokens, "staff-1")
    partner = await api_client.get("/api/control-tower/partner/latest", headers=headers)
    assert partner.status_code == 200
    assert partner.json() == {"ok": True, "partner": None, "checkins": []}
    run = await api_client.get("/api/agent-runtime/runs/run-42", headers=headers)
    assert run.status_code == 404
    assert run.json()["message"] == "No runtime detail found for run-42."
    room = await api_client.get("/api/control-tower/rooms/kiln-room", headers=headers)
    assert room.status_code == 404
    assert room.json()["message"] == "room kiln-room not found"
    empty_send = await api_client.post(
        "/api/control-tower/rooms/kiln-room/send", json={"text": "  "}, headers=headers
    )
    assert empty_send.status_code == 400
    assert "text is required" in empty_send.json()["message"]
    action = await api_client.post(
        "/api/control-tower/services/connector:hubitat/actions", json={"action": "restart"}, headers=headers
    )
    assert action.status_code == 400
    assert action.json()["ok"] is False
    checkin = await api_client.post(
        "/api/control-tower/partner/checkins", json={"action": "ack"}, headers=headers
    )
    assert checkin.status_code == 503
    assert checkin.json()["message"] == "partner brief is unavailable"


# --- Reports' triage ---------------------------------------------------------------------------------


async def test_triage_stats_count_feedback_and_read_reports_from_the_latest_snapshot(
    api_client: httpx.AsyncClient, api_brain: Brain, tokens: TokenMinter
) -> None:
    from tests.e2e.seed import snapshot_run

    now = api_brain.clock.now()
    await api_brain.state_store.save_run(snapshot_run(now.date(), 3, tenant_id=api_brain.tenant_id))
    headers = portal_headers(tokens, "staff-1")
    empty = (await api_client.get("/api/trust-safety/triage/stats?limit=300", headers=headers)).json()
    assert empty["stats"]["accepted"] == 0
    assert empty["stats"]["mismatchRatePct"] == 0.0
    assert empty["stats"]["reports"]["open"] == 1 + 3 % 4  # counts.reportsOpen of the snapshot

    accepted = load("triage_feedback.json")
    rejected = {**accepted, "reportId": "report-18", "decision": "rejected", "mismatch": True}
    for body in (accepted, rejected):
        answer = await api_client.post("/api/trust-safety/triage/feedback", json=body, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"ok": True}
    stats = (await api_client.get("/api/trust-safety/triage/stats?limit=300", headers=headers)).json()
    assert stats["stats"]["accepted"] == 1
    assert stats["stats"]["rejected"] == 1
    assert stats["stats"]["mismatchRatePct"] == 50.0

    page = await api_brain.events.query(
        api_brain.tenant_id, AuditQuery(action_prefix="trust_safety.triage.feedback")
    )
    assert [e.metadata["reportId"] for e in page.events] == ["report-17", "report-18"]
    assert page.events[0].actor_id == "staff-1"
    assert page.events[0].target == "firestore"
    assert page.events[0].metadata["finalCategory"] == "harassment"


async def test_triage_feedback_with_another_decision_is_a_400_and_not_audited(
    api_client: httpx.AsyncClient, api_brain: Brain, tokens: TokenMinter
) -> None:
    body = {**load("triage_feedback.json"), "decision": "maybe"}
    response = await api_client.post(
        "/api/trust-safety/triage/feedback", json=body, headers=portal_headers(tokens, "staff-1")
    )
    assert response.status_code == 400
    page = await api_brain.events.query(
        api_brain.tenant_id, AuditQuery(action_prefix="trust_safety.triage.feedback")
    )
    assert page.events == []


async def test_triage_suggest_returns_a_suggestion_only_answer_the_reports_module_reads(
    api_client: httpx.AsyncClient, tokens: TokenMinter
) -> None:
    response = await api_client.post(
        "/api/trust-safety/triage/suggest",
        json=load("triage_suggest.json"),
        headers=portal_headers(tokens, "staff-1"),
    )
    assert response.status_code == 200
    suggestion = response.json()["suggestion"]
    assert set(suggestion) >= {
        "severity",
        "category",
        "reasonCode",
        "confidence",
        "provenance",
        "model",
        "suggestionOnly",
    }
    assert suggestion["suggestionOnly"] is True
    assert suggestion["category"] == "harassment"
    assert suggestion["severity"] == "high"
    assert set(suggestion["model"]) == {"provider", "version"}


# --- the Create-proposal form -------------------------------------------------------------------------


async def test_the_portal_form_creates_a_batch_close_that_a_second_staff_member_approves(
    api_client: httpx.AsyncClient, api_brain: Brain, tokens: TokenMinter
) -> None:
    requester = portal_headers(tokens, "staff-1")
    created = await api_client.post(
        "/api/capabilities/proposals", json=load("portal_create_batch_close.json"), headers=requester
    )
    assert created.status_code == 201, created.text
    body = created.json()
    proposal = body["proposal"]
    assert proposal["capabilityId"] == "firestore.batch.close"
    assert proposal["status"] == "pending_approval"
    assert proposal["tenantId"] == api_brain.tenant_id
    assert proposal["preview"]["input"] == {"batchId": "batch-7"}  # tenantId dropped
    assert "requestInput.tenantId" in body["ignored"]
    assert api_brain.tenant_id in body["ignored"]["requestInput.tenantId"]

    own = await api_client.post(
        f"/api/capabilities/proposals/{proposal['id']}/approve",
        json={"rationale": "looks right"},
        headers=requester,
    )
    assert own.status_code == 409  # not the requester
    approved = await api_client.post(
        f"/api/capabilities/proposals/{proposal['id']}/approve",
        json={"rationale": "checked with the member"},
        headers=portal_headers(tokens, "staff-2"),
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["proposal"]["status"] == "approved"
    assert approved.json()["proposal"]["approvedBy"] == "staff-2"


async def test_invalid_input_on_the_portal_form_is_a_400_with_the_reason_code(
    api_client: httpx.AsyncClient, api_brain: Brain, tokens: TokenMinter
) -> None:
    payload: dict[str, Any] = load("portal_create_batch_close.json")
    payload["requestInput"] = {"batchId": None, "tenantId": "staff-1"}  # an empty Batch ID field
    response = await api_client.post(
        "/api/capabilities/proposals", json=payload, headers=portal_headers(tokens, "staff-1")
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["ok"] is False
    assert body["reasonCode"] == "INPUT_INVALID"
    assert body["decision"]["reasonCode"] == "INPUT_INVALID"
    assert "batchId" in body["message"]
    assert "tenantId" not in body["message"]
    refused = await api_brain.events.query(
        api_brain.tenant_id, AuditQuery(action_prefix="capability.decision.refused", newest_first=True)
    )
    assert refused.events[0].metadata["decision"]["reasonCode"] == "INPUT_INVALID"


async def test_refusal_messages_say_an_approved_proposal(
    api_client: httpx.AsyncClient, tokens: TokenMinter
) -> None:
    created = await api_client.post(
        "/api/capabilities/proposals",
        json=load("portal_create_batch_close.json"),
        headers=portal_headers(tokens, "staff-1"),
    )
    proposal_id = created.json()["proposal"]["id"]
    approver = portal_headers(tokens, "staff-2")
    path = f"/api/capabilities/proposals/{proposal_id}/approve"
    why = {"rationale": "checked with the member"}
    assert (await api_client.post(path, json=why, headers=approver)).status_code == 200
    again = await api_client.post(path, json=why, headers=portal_headers(tokens, "staff-3"))
    assert again.status_code == 409
    assert again.json()["message"].startswith("an approved proposal cannot be approved")


async def test_a_path_the_portal_polls_that_the_brain_does_not_serve_is_logged_once_not_per_request(
    api_client: httpx.AsyncClient, tokens: TokenMinter
) -> None:
    headers = portal_headers(tokens, "staff-1")
    stream = log_stream()
    for _ in range(40):
        response = await api_client.get("/api/control-tower/overview", headers=headers)
        assert response.status_code == 404
        assert response.json()["ok"] is False  # JSON, so the Portal's banner shows the message
    out = stream.getvalue()
    assert out.count("http.path.unknown") == 1
    assert "/api/control-tower/overview" in out


async def test_a_failing_job_is_an_incident_on_the_control_tower(
    api_client: httpx.AsyncClient, api_brain: Brain, tokens: TokenMinter
) -> None:
    from studio_brain.domain.errors import CloudReadError
    from studio_brain.services.jobs import JobDefinition

    async def broken(_ctx: Any) -> dict[str, Any]:
        raise CloudReadError("Firestore did not answer")

    api_brain.jobs.register(
        JobDefinition(name="portal-test-job", description="fails", action=broken, schedule=None)
    )
    headers = portal_headers(tokens, "staff-1")
    before = (await api_client.get("/api/control-tower/state", headers=headers)).json()["state"]
    assert not any(a["id"] == "job:portal-test-job" for a in before["alerts"])
    await api_brain.jobs.run("portal-test-job")
    state = (await api_client.get("/api/control-tower/state", headers=headers)).json()["state"]
    alert = next(a for a in state["alerts"] if a["id"] == "job:portal-test-job")
    assert alert["title"] == "job portal-test-job is failing"
    assert "Firestore did not answer" in alert["summary"]
    assert state["ops"]["overallStatus"] == "error"
    assert state["counts"]["needsAttention"] >= 1
    assert any(s["id"] == "job:portal-test-job" for s in state["services"])
    render_state(state)


async def test_reports_sending_a_blank_admin_token_with_a_staff_token_is_answered(
    api_client: httpx.AsyncClient, tokens: TokenMinter
) -> None:
    """Reports always sends x-studio-brain-admin-token, blank when staff typed none (RM L352-369)."""
    headers = {**tokens.headers("staff-1", staff=True), "x-studio-brain-admin-token": ""}
    response = await api_client.get("/api/trust-safety/triage/stats?limit=300", headers=headers)
    assert response.status_code == 200, response.text
    wrong = {**headers, "x-studio-brain-admin-token": "not-the-token"}
    assert (await api_client.get("/api/trust-safety/triage/stats", headers=wrong)).status_code == 401
    blank_alone = await api_client.get(
        "/api/control-tower/state", headers={"x-studio-brain-admin-token": " "}
    )
    assert blank_alone.status_code == 401  # no credential at all
