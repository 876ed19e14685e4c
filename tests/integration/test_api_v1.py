"""The native JSON API under /api/v1: state, proposals, audit, capabilities, policy, connectors, drafts."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from studio_brain.bootstrap import Brain
from studio_brain.domain.audit import ActorType, ApprovalState, AuditDraft, event_from_json
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.identity import AuthMethod, Principal
from studio_brain.domain.state import Completeness, SnapshotRun
from tests.fixtures.auth import TokenMinter

pytestmark = pytest.mark.postgres

DAY = date(2026, 11, 24)


async def save_day(brain: Brain, day: date, batches: int, *, run_id: str | None = None) -> None:
    document = {"schemaVersion": "v3.0", "counts": {"batchesActive": batches, "kilnsFiring": 1}}
    await brain.state_store.save_run(
        SnapshotRun(
            id=run_id or f"run-{day.isoformat()}",
            tenant_id=brain.tenant_id,
            snapshot_date=day,
            generated_at=datetime(day.year, day.month, day.day, 13, 0, tzinfo=UTC),
            completeness=Completeness.FULL,
            source="demo",
            document=document,
            snapshot_hash=sha256_hex(document),
        )
    )


async def append_events(brain: Brain, count: int, action: str = "ops.test.event") -> None:
    await brain.events.append_many(
        [
            AuditDraft(
                tenant_id=brain.tenant_id,
                actor_type=ActorType.SYSTEM,
                actor_id="studio-brain",
                action=action,
                target="local",
                rationale=f"event {n}",
                approval_state=ApprovalState.NOT_APPLICABLE,
                input_hash=sha256_hex({"n": n}),
                request_id=f"r-{n}",
                correlation_id=f"c-{n}",
            )
            for n in range(count)
        ]
    )


# --- state ------------------------------------------------------------------------------------------


async def test_state_latest_by_date_history_and_diff(
    api_client: httpx.AsyncClient, api_brain: Brain, admin_headers: dict[str, str]
) -> None:
    await save_day(api_brain, DAY - timedelta(days=1), 3)
    await save_day(api_brain, DAY, 5)

    latest = (await api_client.get("/api/v1/state/latest", headers=admin_headers)).json()["snapshot"]
    assert latest["snapshotDate"] == DAY.isoformat()
    assert latest["document"]["counts"]["batchesActive"] == 5
    assert latest["snapshotHash"] == sha256_hex(latest["document"])

    one = await api_client.get(
        f"/api/v1/state/{(DAY - timedelta(days=1)).isoformat()}", headers=admin_headers
    )
    assert one.json()["snapshot"]["document"]["counts"]["batchesActive"] == 3

    history = await api_client.get(
        f"/api/v1/state/history?start={(DAY - timedelta(days=10)).isoformat()}&end={DAY.isoformat()}",
        headers=admin_headers,
    )
    assert [s["snapshotDate"] for s in history.json()["snapshots"]] == [
        (DAY - timedelta(days=1)).isoformat(),
        DAY.isoformat(),
    ]

    diff = await api_client.get(
        f"/api/v1/state/diff?from={(DAY - timedelta(days=1)).isoformat()}&to={DAY.isoformat()}",
        headers=admin_headers,
    )
    assert diff.status_code == 200, diff.text
    assert diff.json()["changes"] == {"counts.batchesActive": {"from": 3, "to": 5}}


async def test_state_answers_404_for_a_day_without_a_snapshot_and_400_for_a_huge_range(
    api_client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    missing = await api_client.get("/api/v1/state/2020-01-01", headers=admin_headers)
    assert missing.status_code == 404
    assert missing.json()["reasonCode"] == "NOT_FOUND"
    assert (await api_client.get("/api/v1/state/latest", headers=admin_headers)).status_code == 404
    huge = await api_client.get(
        "/api/v1/state/history?start=2020-01-01&end=2026-01-01", headers=admin_headers
    )
    assert huge.status_code == 400


# --- proposals ----------------------------------------------------------------------------------------


async def test_a_native_proposal_lifecycle_with_two_people(
    api_client: httpx.AsyncClient, tokens: TokenMinter
) -> None:
    alice = tokens.headers("alice", staff=True)
    bob = tokens.headers("bob", staff=True)
    created = await api_client.post(
        "/api/v1/proposals",
        json={
            "capabilityId": "studio.note.append",
            "input": {"text": "Clay order arrives Friday"},
            "rationale": "Tell the team about the delivery",
        },
        headers={**alice, "x-request-id": "native-req-1"},
    )
    assert created.status_code == 201, created.text
    pid = created.json()["proposal"]["id"]
    # the request id, carried through — in the caller's own namespace (domain/caller_ids.py)
    assert created.json()["proposal"]["correlationId"] == "staff:alice/native-req-1"
    assert created.json()["proposal"]["brainStatus"] == "pending_approval"

    own = await api_client.post(
        f"/api/v1/proposals/{pid}/approve", json={"rationale": "self approve"}, headers=alice
    )
    assert own.status_code == 409
    assert own.json()["reasonCode"] == "SELF_APPROVAL_FORBIDDEN"

    approved = await api_client.post(
        f"/api/v1/proposals/{pid}/approve", json={"rationale": "Good to share"}, headers=bob
    )
    assert approved.status_code == 200, approved.text
    executed = await api_client.post(f"/api/v1/proposals/{pid}/execute", json={}, headers=alice)
    assert executed.status_code == 200, executed.text
    assert executed.json()["ok"] is True
    assert executed.json()["proposal"]["brainStatus"] == "executed"

    detail = (await api_client.get(f"/api/v1/proposals/{pid}", headers=bob)).json()["proposal"]
    assert detail["approvals"][0]["approverId"] == "bob"
    assert detail["executedBy"] == "alice"


async def test_proposals_list_filters_and_pages_by_cursor(
    api_client: httpx.AsyncClient, tokens: TokenMinter
) -> None:
    alice = tokens.headers("alice", staff=True)
    for n in range(5):
        response = await api_client.post(
            "/api/v1/proposals",
            json={
                "capabilityId": "studio.note.append",
                "input": {"text": f"note {n}"},
                "rationale": "A useful note",
            },
            headers=alice,
        )
        assert response.status_code == 201
    first = (await api_client.get("/api/v1/proposals?limit=3", headers=alice)).json()
    assert len(first["proposals"]) == 3
    assert first["nextCursor"]
    second = (
        await api_client.get(
            "/api/v1/proposals", params={"limit": 3, "before": first["nextCursor"]}, headers=alice
        )
    ).json()
    ids = [p["id"] for p in first["proposals"]] + [p["id"] for p in second["proposals"]]
    assert len(ids) == len(set(ids)) == 5
    assert second["nextCursor"] is None
    pending = (await api_client.get("/api/v1/proposals?status=pending_approval", headers=alice)).json()
    assert len(pending["proposals"]) == 5
    none = (await api_client.get("/api/v1/proposals?status=executed", headers=alice)).json()
    assert none["proposals"] == []
    bad = await api_client.get("/api/v1/proposals?before=not-a-cursor", headers=alice)
    assert bad.status_code == 400


async def test_an_unknown_capability_is_refused_with_its_reason_code(
    api_client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await api_client.post(
        "/api/v1/proposals",
        json={"capabilityId": "kiln.fire.now", "input": {}, "rationale": "Fire the kiln please"},
        headers=admin_headers,
    )
    assert response.status_code == 409
    assert response.json()["reasonCode"] == "CAPABILITY_UNKNOWN"


async def test_an_agent_with_the_propose_scope_may_propose_but_never_approve(
    api_client: httpx.AsyncClient, api_brain: Brain, tokens: TokenMinter
) -> None:
    staff = Principal(
        tenant_id=api_brain.tenant_id,
        actor_type=ActorType.STAFF,
        actor_id="alice",
        via=AuthMethod.FIREBASE,
        roles=frozenset({"staff"}),
    )
    issued = await api_brain.gateway.issue_agent_token(
        staff,
        agent_id="notes-bot",
        scopes=["capability:studio.note.append:propose", "proposals:read"],
        lifetime=timedelta(hours=1),
        reason="notes bot for the daily summary",
    )
    agent = {"authorization": f"Bearer {issued.raw}"}
    created = await api_client.post(
        "/api/v1/proposals",
        json={
            "capabilityId": "studio.note.append",
            "input": {"text": "bot note"},
            "rationale": "Daily summary note",
        },
        headers=agent,
    )
    assert created.status_code == 201, created.text
    assert created.json()["proposal"]["requesterType"] == "agent"
    pid = created.json()["proposal"]["id"]
    approve = await api_client.post(
        f"/api/v1/proposals/{pid}/approve", json={"rationale": "bot approves"}, headers=agent
    )
    assert approve.status_code == 403
    assert approve.json()["reasonCode"] == "APPROVER_NOT_ELIGIBLE"
    assert (await api_client.get("/api/v1/policy/kill-switch", headers=agent)).status_code == 403


# --- audit --------------------------------------------------------------------------------------------


async def test_audit_pages_by_keyset_without_gaps_or_repeats(
    api_client: httpx.AsyncClient, api_brain: Brain, admin_headers: dict[str, str]
) -> None:
    await append_events(api_brain, 25)
    seen: list[int] = []
    cursor: int | None = None
    while True:
        params: dict[str, str | int] = {"limit": 10, "actionPrefix": "ops.test"}
        if cursor is not None:
            params["after"] = cursor
        page = (await api_client.get("/api/v1/audit", params=params, headers=admin_headers)).json()
        seen += [e["seq"] for e in page["events"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert len(seen) == 25
    assert seen == sorted(seen)
    newest = (await api_client.get("/api/v1/audit?newestFirst=true&limit=3", headers=admin_headers)).json()
    assert [e["seq"] for e in newest["events"]] == sorted(seen, reverse=True)[:3]


async def test_audit_refuses_contradictory_paging(
    api_client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await api_client.get("/api/v1/audit?before=10", headers=admin_headers)
    assert response.status_code == 400


async def test_the_audit_export_downloads_every_event_in_the_export_line_format(
    api_client: httpx.AsyncClient, api_brain: Brain, admin_headers: dict[str, str]
) -> None:
    await append_events(api_brain, 30)
    response = await api_client.get("/api/v1/audit/export", headers=admin_headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert "attachment" in response.headers["content-disposition"]
    events = [event_from_json(json.loads(line)) for line in response.text.splitlines()]
    assert [e.seq for e in events] == list(range(1, 31))


async def test_audit_verify_reports_an_intact_chain(
    api_client: httpx.AsyncClient, api_brain: Brain, admin_headers: dict[str, str]
) -> None:
    await append_events(api_brain, 12)
    body = (await api_client.get("/api/v1/audit/verify", headers=admin_headers)).json()
    assert body["intact"] is True
    assert body["report"]["checked"] == 12
    assert body["report"]["lastSeq"] == 12


# --- capabilities, policy, connectors, drafts --------------------------------------------------------


async def test_capabilities_lint_and_policy(
    api_client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    capabilities = (await api_client.get("/api/v1/capabilities", headers=admin_headers)).json()
    assert len(capabilities["registryVersion"]) == 64
    assert "studio.note.append" in {c["id"] for c in capabilities["capabilities"]}
    lint = (await api_client.get("/api/v1/capabilities/lint", headers=admin_headers)).json()
    assert lint["capabilitiesChecked"] == len(capabilities["capabilities"])

    switched = await api_client.post(
        "/api/v1/policy/kill-switch",
        json={"enabled": True, "rationale": "Storm tonight, no writes", "capabilityId": "studio.note.append"},
        headers=admin_headers,
    )
    assert switched.status_code == 200, switched.text
    assert switched.json()["killSwitch"]["enabled"] is False  # the global switch is untouched
    assert switched.json()["killSwitch"]["capabilities"][0]["capabilityId"] == "studio.note.append"

    past = await api_client.post(
        "/api/v1/policy/exemptions",
        json={
            "capabilityId": "studio.note.append",
            "justification": "Too late",
            "expiresAt": "2020-01-01T00:00:00Z",
        },
        headers=admin_headers,
    )
    assert past.status_code == 400
    buckets = await api_client.get("/api/v1/policy/rate-buckets", headers=admin_headers)
    assert buckets.json()["buckets"] == []


async def test_connector_health_lists_every_connector(
    api_client: httpx.AsyncClient, api_brain: Brain, admin_headers: dict[str, str]
) -> None:
    response = await api_client.get("/api/v1/connectors/health", headers=admin_headers)
    assert response.status_code == 200, response.text
    listed = {c["connector"]: c for c in response.json()["connectors"]}
    # every connector of the registry, configured or not, each once and with a real status
    assert sorted(listed) == sorted(api_brain.connectors)
    assert len(response.json()["connectors"]) == len(api_brain.connectors)
    for connector_id, health in listed.items():
        configured = api_brain.connectors.is_configured(connector_id)
        assert (health["status"] == "not_configured") is not configured, health
        assert health["checkedAt"]


async def test_drafts_list_by_kind_and_refuse_an_unknown_kind(
    api_client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    ops = await api_client.get("/api/v1/drafts/ops", headers=admin_headers)
    assert ops.status_code == 200, ops.text
    assert ops.json()["rows"] == []
    assert (await api_client.get("/api/v1/drafts/poetry", headers=admin_headers)).status_code == 400
