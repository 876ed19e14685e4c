"""The Portal's staff cockpit works against this brain: its 15-request load answers 200 in its shapes, and
its proposal actions (create, approve as a second person, dry-run, execute, refusals) behave as it expects."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from studio_brain.bootstrap import Brain
from studio_brain.domain.audit import AuditQuery
from tests.e2e.seed import snapshot_run
from tests.fixtures.auth import TEST_ADMIN_TOKEN, TokenMinter

pytestmark = pytest.mark.postgres

#: the 15 GETs the Portal's cockpit sends in one Promise.all (StudioBrainModule.tsx)
COCKPIT_LOAD = [
    "/api/capabilities",
    "/api/capabilities/quotas?limit=50",
    "/api/capabilities/audit?limit=100",
    "/api/capabilities/delegation/traces?limit=50",
    "/api/capabilities/rate-limits/events?limit=50",
    "/api/capabilities/policy-lint",
    "/api/ops/recommendations/drafts?limit=30",
    "/api/marketing/drafts?limit=30",
    "/api/finance/reconciliation/drafts?limit=30",
    "/api/intake/review-queue?limit=50",
    "/api/ops/scorecard",
    "/api/ops/audit?limit=50",
    "/api/support-ops/queue?limit=20",
    "/api/support-ops/dead-letters?limit=10",
    "/api/memory/review-cases?limit=20",
]

PORTAL_STATUSES = {"draft", "pending_approval", "approved", "rejected", "executed"}


def portal_headers(tokens: TokenMinter, uid: str) -> dict[str, str]:
    """What the Portal sends: a staff ID token, the admin token staff typed, and JSON."""
    return {
        **tokens.headers(uid, staff=True),
        "x-studio-brain-admin-token": TEST_ADMIN_TOKEN,
        "content-type": "application/json",
    }


def create_payload(text: str = "Kiln 2 glaze test went well") -> dict[str, Any]:
    """The Portal's create payload, identity fields included (they are ignored: the token decides)."""
    return {
        "actorType": "staff",
        "actorId": "someone-else",
        "ownerUid": "someone-else",
        "tenantId": "another-studio",
        "capabilityId": "studio.note.append",
        "rationale": "Record the glaze test result for the team",
        "previewSummary": "Append a note",
        "requestInput": {"text": text, "topic": "glaze"},
        "expectedEffects": ["one note appended"],
        "requestedBy": "someone-else",
    }


async def test_the_cockpit_load_answers_200_for_every_request_in_the_portal_shapes(
    api_client: httpx.AsyncClient, tokens: TokenMinter
) -> None:
    headers = portal_headers(tokens, "staff-1")
    responses = await asyncio.gather(*(api_client.get(path, headers=headers) for path in COCKPIT_LOAD))
    failing = {
        path: r.status_code for path, r in zip(COCKPIT_LOAD, responses, strict=True) if r.status_code != 200
    }
    assert failing == {}
    bodies = dict(zip(COCKPIT_LOAD, (r.json() for r in responses), strict=True))
    assert all(body["ok"] is True for body in bodies.values())
    overview = bodies["/api/capabilities"]
    assert {"capabilities", "proposals", "policy", "connectors"} <= set(overview)
    note = next(c for c in overview["capabilities"] if c["id"] == "studio.note.append")
    assert set(note) >= {
        "id",
        "target",
        "description",
        "readOnly",
        "requiresApproval",
        "maxCallsPerHour",
        "risk",
    }
    assert set(overview["policy"]["killSwitch"]) >= {"enabled", "updatedAt", "updatedBy", "rationale"}
    assert isinstance(bodies["/api/capabilities/quotas?limit=50"]["buckets"], list)
    lint = bodies["/api/capabilities/policy-lint"]
    assert set(lint) >= {"checkedAt", "capabilitiesChecked", "violations"}
    scorecard = bodies["/api/ops/scorecard"]["scorecard"]
    assert set(scorecard) >= {"computedAt", "overallStatus", "lastBreachAt", "metrics"}
    assert bodies["/api/support-ops/queue?limit=20"]["recentCases"] == []
    assert bodies["/api/memory/review-cases?limit=20"]["latestVerificationRuns"] == []
    assert bodies["/api/intake/review-queue?limit=50"]["rows"] == []


async def test_the_cockpit_load_without_a_staff_token_is_refused_on_every_path(
    api_client: httpx.AsyncClient, tokens: TokenMinter
) -> None:
    member = tokens.headers("member-1", roles=["member"])
    for path in COCKPIT_LOAD:
        anonymous = await api_client.get(path)
        assert anonymous.status_code == 401, path
        assert (await api_client.get(path, headers=member)).status_code == 403, path


async def test_a_proposal_walks_create_approve_dry_run_execute_with_the_portal_payloads(
    api_client: httpx.AsyncClient, tokens: TokenMinter, api_brain: Brain
) -> None:
    requester = portal_headers(tokens, "staff-1")
    approver = portal_headers(tokens, "staff-2")

    created = await api_client.post(
        "/api/capabilities/proposals",
        json=create_payload(),
        headers={**requester, "x-request-id": "portal-req-1"},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["ok"] is True
    assert body["decision"]["allowed"] is True
    assert body["decision"]["reasonCode"] == "ALLOWED"
    proposal = body["proposal"]
    assert proposal["status"] == "pending_approval"
    assert proposal["requestedBy"] == "staff-1"  # from the token, not the body
    assert proposal["tenantId"] == api_brain.tenant_id  # from configuration, not the body
    assert proposal["preview"]["input"] == {"text": "Kiln 2 glaze test went well", "topic": "glaze"}
    # the server's prediction, never the requester's text (issue 12); the requester's is kept as a claim
    assert proposal["preview"]["expectedEffects"] == [
        "append one staff note (27 characters) under topic 'glaze'"
    ]
    assert proposal["claimedEffects"] == ["one note appended"]
    assert len(proposal["inputHash"]) == 64
    pid = proposal["id"]

    approved = await api_client.post(
        f"/api/capabilities/proposals/{pid}/approve",
        json={"approvedBy": "staff-1", "rationale": "Looks right, go ahead"},
        headers=approver,
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["proposal"]["status"] == "approved"
    assert approved.json()["proposal"]["approvedBy"] == "staff-2"

    dry = await api_client.get(f"/api/capabilities/proposals/{pid}/dry-run", headers=requester)
    assert dry.status_code == 200
    assert dry.json()["proposalId"] == pid
    assert dry.json()["dryRun"]["decision"]["allowed"] is True

    execute_payload = {
        "actorType": "staff",
        "actorId": "staff-1",
        "ownerUid": "staff-1",
        "tenantId": "another-studio",
        "idempotencyKey": "portal-exec-1",
        "output": {"claimed": "done"},
    }
    executed = await api_client.post(
        f"/api/capabilities/proposals/{pid}/execute", json=execute_payload, headers=requester
    )
    assert executed.status_code == 200, executed.text
    assert executed.json()["ok"] is True
    assert executed.json()["proposal"]["status"] == "executed"
    assert executed.json()["proposal"]["outputHash"]

    again = await api_client.post(
        f"/api/capabilities/proposals/{pid}/execute",
        json={**execute_payload, "idempotencyKey": "portal-exec-2"},
        headers=requester,
    )
    assert again.status_code == 409
    refusal = again.json()
    assert refusal["ok"] is False
    assert refusal["decision"]["reasonCode"] == "ALREADY_EXECUTED"
    assert refusal["proposal"]["id"] == pid
    assert refusal["message"]

    # the audit trail carries the Portal's request id and shows up on the Portal's audit path
    # (in the caller's namespace, so no other caller can join this timeline by reusing the id: issue 12)
    assert proposal["correlationId"].endswith(":staff-1/portal-req-1")
    page = await api_brain.events.query(
        api_brain.tenant_id, AuditQuery(correlation_id=proposal["correlationId"])
    )
    assert page.events
    assert page.events[0].request_id == proposal["correlationId"]
    rows = (await api_client.get("/api/capabilities/audit?limit=100", headers=requester)).json()["rows"]
    actions = [r["action"] for r in rows]
    assert any(a.startswith("capability.proposal") for a in actions)
    assert all(r["actorType"] in {"human", "staff", "agent", "system"} for r in rows)
    assert all(r["approvalState"] in {"required", "approved", "rejected", "exempt"} for r in rows)


async def test_a_requester_approving_their_own_proposal_gets_a_409_with_the_reason_code(
    api_client: httpx.AsyncClient, tokens: TokenMinter
) -> None:
    headers = portal_headers(tokens, "staff-1")
    pid = (
        await api_client.post("/api/capabilities/proposals", json=create_payload(), headers=headers)
    ).json()["proposal"]["id"]
    response = await api_client.post(
        f"/api/capabilities/proposals/{pid}/approve",
        json={"approvedBy": "staff-1", "rationale": "I approve my own idea"},
        headers=headers,
    )
    assert response.status_code == 409
    body = response.json()
    assert body["ok"] is False
    assert body["decision"]["reasonCode"] == "SELF_APPROVAL_FORBIDDEN"
    assert body["proposal"]["status"] == "pending_approval"
    assert body["message"]


async def test_executing_an_unapproved_proposal_is_refused_in_the_portal_shape(
    api_client: httpx.AsyncClient, tokens: TokenMinter
) -> None:
    headers = portal_headers(tokens, "staff-1")
    pid = (
        await api_client.post("/api/capabilities/proposals", json=create_payload(), headers=headers)
    ).json()["proposal"]["id"]
    response = await api_client.post(
        f"/api/capabilities/proposals/{pid}/execute", json={"idempotencyKey": "k-1"}, headers=headers
    )
    assert response.status_code == 409
    assert response.json()["decision"]["reasonCode"] == "APPROVAL_REQUIRED"
    assert response.json()["proposal"]["status"] == "pending_approval"


async def test_reject_then_reopen_is_refused_because_decisions_are_final(
    api_client: httpx.AsyncClient, tokens: TokenMinter, api_brain: Brain
) -> None:
    requester = portal_headers(tokens, "staff-1")
    approver = portal_headers(tokens, "staff-2")
    pid = (
        await api_client.post("/api/capabilities/proposals", json=create_payload(), headers=requester)
    ).json()["proposal"]["id"]
    rejected = await api_client.post(
        f"/api/capabilities/proposals/{pid}/reject", json={"reason": "Not this week"}, headers=approver
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["proposal"]["status"] == "rejected"
    reopened = await api_client.post(
        f"/api/capabilities/proposals/{pid}/reopen", json={"reason": "Changed my mind"}, headers=approver
    )
    assert reopened.status_code == 409
    assert reopened.json()["decision"]["reasonCode"] == "INVALID_TRANSITION"
    refused = await api_brain.events.query(
        api_brain.tenant_id, AuditQuery(action_prefix="capability.decision.refused", newest_first=True)
    )
    assert refused.events[0].metadata["attempted"] == "capability.proposal.reopen"


async def test_a_portal_retrying_a_rollback_fifteen_times_is_one_row_and_one_counted_row(
    api_client: httpx.AsyncClient, tokens: TokenMinter, api_brain: Brain
) -> None:
    # issue 12 item 8: the Portal's unsupported steps share the gateway's refusal windows
    requester = portal_headers(tokens, "staff-1")
    pid = (
        await api_client.post("/api/capabilities/proposals", json=create_payload(), headers=requester)
    ).json()["proposal"]["id"]
    for _ in range(15):
        rolled = await api_client.post(
            f"/api/capabilities/proposals/{pid}/rollback", json={"reason": "undo it"}, headers=requester
        )
        assert rolled.status_code == 409
        assert rolled.json()["decision"]["reasonCode"] == "INVALID_TRANSITION"
    await api_brain.gateway.flush_refusals()
    refused = await api_brain.events.query(
        api_brain.tenant_id, AuditQuery(action_prefix="capability.decision.refused")
    )
    rows = [e for e in refused.events if e.metadata["attempted"] == "capability.proposal.rollback"]
    assert [e.metadata["count"] for e in rows] == [1, 14]
    assert rows[1].metadata["aggregated"] is True
    assert rows[1].metadata["via"] == "portal"


async def test_the_kill_switch_and_exemptions_round_trip_in_the_portal_shapes(
    api_client: httpx.AsyncClient, tokens: TokenMinter
) -> None:
    headers = portal_headers(tokens, "staff-1")
    on = await api_client.post(
        "/api/capabilities/policy/kill-switch",
        json={"enabled": True, "rationale": "Hub is acting up tonight"},
        headers=headers,
    )
    assert on.status_code == 200, on.text
    assert on.json()["killSwitch"]["enabled"] is True
    assert on.json()["killSwitch"]["updatedBy"] == "staff-1"
    blocked = await api_client.post("/api/capabilities/proposals", json=create_payload(), headers=headers)
    assert blocked.status_code == 409
    assert blocked.json()["decision"]["reasonCode"] == "KILL_SWITCH_ACTIVE"
    off = await api_client.post(
        "/api/capabilities/policy/kill-switch",
        json={"enabled": False, "rationale": "Hub fixed again"},
        headers=headers,
    )
    assert off.json()["killSwitch"]["enabled"] is False

    created = await api_client.post(
        "/api/capabilities/policy/exemptions",
        json={"capabilityId": "studio.note.append", "justification": "Notes during the open studio night"},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    exemption = created.json()["exemption"]
    assert exemption["capabilityId"] == "studio.note.append"
    revoked = await api_client.post(
        f"/api/capabilities/policy/exemptions/{exemption['id']}/revoke",
        json={"reason": "Open night is over"},
        headers=headers,
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["exemption"]["revokedAt"] is not None


async def test_an_audit_read_honours_a_limit_above_200(
    api_client: httpx.AsyncClient, tokens: TokenMinter, api_brain: Brain
) -> None:
    from studio_brain.domain.audit import ActorType, ApprovalState, AuditDraft

    drafts = [
        AuditDraft(
            tenant_id=api_brain.tenant_id,
            actor_type=ActorType.SYSTEM,
            actor_id="studio-brain",
            action="ops.test.event",
            target="local",
            rationale=f"event {n}",
            approval_state=ApprovalState.NOT_APPLICABLE,
            input_hash="0" * 64,
            request_id=f"r-{n}",
            correlation_id=f"c-{n}",
        )
        for n in range(1200)
    ]
    await api_brain.events.append_many(drafts)
    headers = portal_headers(tokens, "staff-1")
    rows = (await api_client.get("/api/capabilities/audit?limit=1100", headers=headers)).json()["rows"]
    assert len(rows) == 1100
    assert rows[0]["seq"] > rows[-1]["seq"]  # newest first
    bundle = (await api_client.get("/api/capabilities/audit/export?limit=1050", headers=headers)).json()[
        "bundle"
    ]
    assert bundle["manifest"]["rowCount"] == 1050
    assert len(bundle["manifest"]["rowHashes"]) == 1050
    assert bundle["rows"][0]["seq"] < bundle["rows"][-1]["seq"]  # oldest first, as the chain reads


async def test_features_this_brain_lacks_refuse_writes_clearly(
    api_client: httpx.AsyncClient, tokens: TokenMinter
) -> None:
    response = await api_client.post(
        "/api/intake/review-queue/intake-1/override",
        json={"decision": "accept", "reasonCode": "MANUAL", "rationale": "looks fine"},
        headers=portal_headers(tokens, "staff-1"),
    )
    assert response.status_code == 404
    assert "no intake review queue" in response.json()["message"]


async def test_entering_degraded_mode_is_audited_and_turns_a_healthy_scorecard_degraded_until_exited(
    api_client: httpx.AsyncClient, api_brain: Brain, tokens: TokenMinter
) -> None:
    # a fresh snapshot first: the card is healthy, so "degraded" below can only come from the entry
    now = api_brain.clock.now()
    await api_brain.state_store.save_run(
        snapshot_run(now.date(), 1, tenant_id=api_brain.tenant_id, generated_at=now)
    )
    headers = portal_headers(tokens, "staff-1")

    async def card() -> dict[str, Any]:
        body: dict[str, Any] = (await api_client.get("/api/ops/scorecard", headers=headers)).json()
        return body["scorecard"]

    def metric(scorecard: dict[str, Any], key: str) -> dict[str, Any]:
        return next(m for m in scorecard["metrics"] if m["key"] == key)

    before = await card()
    assert before["overallStatus"] == "ok"
    assert before["lastBreachAt"] is None
    assert metric(before, "snapshot_freshness")["status"] == "ok"

    entered = await api_client.post(
        "/api/ops/degraded",
        json={
            "status": "entered",
            "mode": "offline",
            "reason": "ISP outage",
            "rationale": "Studio is offline",
        },
        headers=headers,
    )
    assert entered.status_code == 200
    during = await card()
    assert during["overallStatus"] == "degraded"
    assert metric(during, "degraded_mode") == {
        "key": "degraded_mode",
        "label": "Degraded mode",
        "value": "offline",
        "target": None,
        "status": "breach",
    }
    assert during["lastBreachAt"] is not None
    ops_rows = (await api_client.get("/api/ops/audit?limit=50", headers=headers)).json()["rows"]
    assert ops_rows[0]["action"] == "ops.degraded.entered"
    assert ops_rows[0]["actorId"] == "staff-1"
    assert ops_rows[0]["metadata"]["mode"] == "offline"

    await api_client.post(
        "/api/ops/degraded",
        json={"status": "exited", "mode": "offline", "reason": "back online", "rationale": "ISP is back"},
        headers=headers,
    )
    after = await card()
    assert metric(after, "degraded_mode")["status"] == "ok"
    assert after["overallStatus"] == "ok"
    assert after["lastBreachAt"] is None
    rows = (await api_client.get("/api/ops/audit?limit=50", headers=headers)).json()["rows"]
    assert [r["action"] for r in rows[:2]] == ["ops.degraded.exited", "ops.degraded.entered"]
