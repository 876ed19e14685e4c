"""Reads that rarely change are encoded once and revalidated cheaply (issue 18), never served past auth."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from studio_brain.bootstrap import Brain, DatabaseTarget, open_brain
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.state import Completeness, SnapshotRun
from studio_brain.settings import load_settings
from studio_brain.web.api.state import SnapshotResponse, encode_snapshot, snapshot_view
from tests.fixtures.auth import TokenMinter

DAY = date(2026, 11, 20)


async def test_the_capability_list_carries_the_registry_version_as_etag_and_answers_304_to_it(
    api_client: httpx.AsyncClient, api_brain: Brain, admin_headers: dict[str, str]
) -> None:
    first = await api_client.get("/api/v1/capabilities", headers=admin_headers)
    assert first.status_code == 200
    version = api_brain.gateway.registry.version
    assert first.headers["etag"] == f'"{version}"'
    body = first.json()
    assert body["registryVersion"] == version
    assert [c["id"] for c in body["capabilities"]] == sorted(c.id for c in api_brain.gateway.capabilities())
    again = await api_client.get("/api/v1/capabilities", headers=admin_headers)
    assert again.content == first.content

    revalidated = await api_client.get(
        "/api/v1/capabilities", headers={**admin_headers, "if-none-match": first.headers["etag"]}
    )
    assert revalidated.status_code == 304
    assert revalidated.content == b""
    stale = await api_client.get(
        "/api/v1/capabilities", headers={**admin_headers, "if-none-match": '"other"'}
    )
    assert stale.status_code == 200


async def test_a_matching_etag_without_credentials_is_still_a_401(
    api_client: httpx.AsyncClient, api_brain: Brain
) -> None:
    etag = f'"{api_brain.gateway.registry.version}"'
    response = await api_client.get("/api/v1/capabilities", headers={"if-none-match": etag})
    assert response.status_code == 401


async def _one_proposal_event(api_client: httpx.AsyncClient, tokens: TokenMinter) -> dict[str, Any]:
    created = await api_client.post(
        "/api/v1/proposals",
        json={
            "capabilityId": "studio.note.append",
            "input": {"text": "kiln 2"},
            "rationale": "note for the crew",
        },
        headers=tokens.headers("staff-1", staff=True),
    )
    assert created.status_code == 201, created.text
    return dict(created.json()["proposal"])


async def test_an_audit_list_row_summarises_the_proposal_record_and_names_the_route_with_all_of_it(
    api_client: httpx.AsyncClient, tokens: TokenMinter, admin_headers: dict[str, str]
) -> None:
    proposal = await _one_proposal_event(api_client, tokens)
    listed = await api_client.get(
        "/api/v1/audit", params={"actionPrefix": "capability.proposal.created"}, headers=admin_headers
    )
    (row,) = listed.json()["events"]
    summary = row["metadata"]["proposal"]
    assert summary["summarised"] is True
    assert row["metadata"]["proposalId"] == proposal["id"]  # the summary's id is said once, here
    assert "id" not in summary
    assert summary["status"] == "pending_approval"
    assert "input" not in summary

    detail = await api_client.get(row["detail"], headers=admin_headers)
    assert detail.status_code == 200
    full = detail.json()["event"]
    assert full["metadata"]["proposal"]["input"] == {"text": "kiln 2"}
    assert full["metadata"]["proposal"]["id"] == proposal["id"]
    assert "summarised" not in full["metadata"]["proposal"]
    assert {k: v for k, v in full.items() if k in row and k != "metadata"} == {
        k: v for k, v in row.items() if k != "metadata"
    }

    everything = await api_client.get(
        "/api/v1/audit",
        params={"actionPrefix": "capability.proposal.created", "details": "full"},
        headers=admin_headers,
    )
    assert everything.json()["events"] == [full]

    portal = await api_client.get(
        "/api/capabilities/audit",
        params={"actionPrefix": "capability.proposal.created"},
        headers=tokens.headers("staff-2", staff=True),
    )
    assert portal.status_code == 200
    assert portal.json()["rows"][0]["metadata"]["proposal"]["summarised"] is True


async def _lifecycle_events(api_client: httpx.AsyncClient, tokens: TokenMinter, lifecycles: int) -> None:
    """``lifecycles`` × create → approve (a second person) → execute, through the gateway over HTTP."""
    requester = tokens.headers("staff-1", staff=True)
    approver = tokens.headers("staff-2", staff=True)
    for n in range(lifecycles):
        created = await api_client.post(
            "/api/v1/proposals",
            json={
                "capabilityId": "studio.note.append",
                "input": {"text": f"kiln {n}"},
                "rationale": "a note for the crew",
            },
            headers=requester,
        )
        assert created.status_code == 201, created.text
        pid = created.json()["proposal"]["id"]
        approved = await api_client.post(
            f"/api/v1/proposals/{pid}/approve", json={"rationale": "fine by me"}, headers=approver
        )
        assert approved.status_code == 200, approved.text
        executed = await api_client.post(f"/api/v1/proposals/{pid}/execute", json={}, headers=approver)
        assert executed.status_code == 200, executed.text


#: what the Portal reads of an audit row (its reference: ``AuditEvent``)
PORTAL_AUDIT_FIELDS = {
    "id", "at", "actorType", "actorId", "action", "rationale", "target", "approvalState", "inputHash",
    "outputHash", "metadata",
}  # fmt: skip

#: what a list row leaves to the detail route (issue 18)
DETAIL_ONLY_FIELDS = {"tenantId", "requestId", "prevHash", "hash"}


async def test_a_page_of_100_lifecycle_events_fits_in_80_kb_natively_and_for_the_portal(
    api_client: httpx.AsyncClient, tokens: TokenMinter, admin_headers: dict[str, str]
) -> None:
    await _lifecycle_events(api_client, tokens, 26)
    native = await api_client.get("/api/v1/audit", params={"limit": 100}, headers=admin_headers)
    assert len(native.json()["events"]) == 100
    assert {e["action"] for e in native.json()["events"]} >= {
        "capability.proposal.created", "capability.proposal.approved", "capability.proposal.executed",
    }  # fmt: skip
    assert len(native.content) <= 80_000

    portal = await api_client.get(
        "/api/capabilities/audit", params={"limit": 100}, headers=tokens.headers("staff-3", staff=True)
    )
    rows = portal.json()["rows"]
    assert len(rows) == 100
    assert len(portal.content) <= 80_000
    for row in rows:
        assert row.keys() >= PORTAL_AUDIT_FIELDS
        assert row["approvalState"] in {"required", "approved", "rejected", "exempt"}


async def test_the_detail_route_gives_every_field_a_list_row_leaves_out(
    api_client: httpx.AsyncClient, api_brain: Brain, tokens: TokenMinter, admin_headers: dict[str, str]
) -> None:
    await _lifecycle_events(api_client, tokens, 2)
    rows = (await api_client.get("/api/v1/audit", headers=admin_headers)).json()["events"]
    full_rows = (
        await api_client.get("/api/v1/audit", params={"details": "full"}, headers=admin_headers)
    ).json()["events"]
    assert len(rows) == len(full_rows) >= 8
    for row, full_row in zip(rows, full_rows, strict=True):
        assert not DETAIL_ONLY_FIELDS & row.keys()
        assert "credential" not in row["metadata"]
        detail = await api_client.get(row["detail"], headers=admin_headers)
        event = detail.json()["event"]
        assert event == full_row
        assert event.keys() >= DETAIL_ONLY_FIELDS
        assert event["tenantId"] == api_brain.tenant_id
        assert detail.headers["etag"] == f'"{event["hash"]}"'
        assert event["metadata"]["credential"]["kind"] == "firebase"
        assert {k: v for k, v in event.items() if k in row and k != "metadata"} == {
            k: v for k, v in row.items() if k != "metadata"
        }
        for key, value in row["metadata"].items():  # a list row's metadata is a part of the event's
            stored = event["metadata"][key]
            if isinstance(value, dict):
                assert {k: stored[k] for k in value if k != "summarised"} == {
                    k: v for k, v in value.items() if k != "summarised"
                }
                left_out = stored.keys() - value.keys()
                if key != "proposal":  # only nested copies of the row's own fields
                    assert all(stored[k] == event[k] for k in left_out), (key, left_out)
            else:
                assert stored == value


async def test_the_portal_export_bundle_carries_full_rows(
    api_client: httpx.AsyncClient, tokens: TokenMinter, admin_headers: dict[str, str]
) -> None:
    await _lifecycle_events(api_client, tokens, 2)
    full_rows = (
        await api_client.get("/api/v1/audit", params={"details": "full"}, headers=admin_headers)
    ).json()["events"]
    exported = await api_client.get(
        "/api/capabilities/audit/export", params={"limit": 500}, headers=tokens.headers("staff-3", staff=True)
    )
    assert exported.status_code == 200
    bundle = exported.json()["bundle"]
    rows = bundle["rows"]
    assert [r["seq"] for r in rows] == [r["seq"] for r in full_rows]
    for row, full_row in zip(rows, full_rows, strict=True):
        assert row["metadata"] == full_row["metadata"]
        assert "summarised" not in row["metadata"].get("proposal", {})
        assert {k: v for k, v in row.items() if k not in {"approvalState", "brainApprovalState"}} == {
            k: v for k, v in full_row.items() if k != "approvalState"
        }
        assert row["brainApprovalState"] == full_row["approvalState"]
    assert bundle["manifest"]["rowHashes"] == [r["hash"] for r in full_rows]


async def test_an_audit_event_is_immutable_so_its_hash_is_its_etag(
    api_client: httpx.AsyncClient, tokens: TokenMinter, admin_headers: dict[str, str]
) -> None:
    await _one_proposal_event(api_client, tokens)
    first = await api_client.get("/api/v1/audit/1", headers=admin_headers)
    assert first.status_code == 200
    assert first.headers["etag"] == f'"{first.json()["event"]["hash"]}"'
    again = await api_client.get(
        "/api/v1/audit/1", headers={**admin_headers, "if-none-match": first.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.content == b""
    anonymous = await api_client.get("/api/v1/audit/1", headers={"if-none-match": first.headers["etag"]})
    assert anonymous.status_code == 401
    missing = await api_client.get("/api/v1/audit/999999", headers=admin_headers)
    assert missing.status_code == 404
    assert (await api_client.get("/api/v1/audit/0", headers=admin_headers)).status_code in (400, 422)


# --- the latest state -------------------------------------------------------------------------------


async def _save_latest(
    brain: Brain, run_id: str, document: dict[str, Any], *, day: date = DAY, snapshot_hash: str | None = None
) -> SnapshotRun:
    run = SnapshotRun(
        id=run_id,
        tenant_id=brain.tenant_id,
        snapshot_date=day,
        generated_at=datetime(day.year, day.month, day.day, 13, 0, 5, 123456, tzinfo=UTC),
        completeness=Completeness.FULL,
        source="demo",
        document=document,
        snapshot_hash=snapshot_hash or sha256_hex(document),
    )
    await brain.state_store.save_run(run)
    return run


async def test_the_latest_state_carries_its_run_as_etag_answers_304_to_it_and_a_new_run_replaces_it(
    api_client: httpx.AsyncClient, api_brain: Brain, admin_headers: dict[str, str]
) -> None:
    assert (await api_client.get("/api/v1/state/latest", headers=admin_headers)).status_code == 404
    first_run = await _save_latest(api_brain, "run-a", {"counts": {"batchesActive": 3}})
    first = await api_client.get("/api/v1/state/latest", headers=admin_headers)
    assert first.status_code == 200
    assert first.headers["etag"] == f'"run-a.{first_run.snapshot_hash}"'
    assert first.headers["cache-control"] == "private, no-cache"
    assert first.json()["snapshot"]["document"] == {"counts": {"batchesActive": 3}}
    again = await api_client.get("/api/v1/state/latest", headers=admin_headers)
    assert again.content == first.content

    revalidated = await api_client.get(
        "/api/v1/state/latest", headers={**admin_headers, "if-none-match": first.headers["etag"]}
    )
    assert revalidated.status_code == 304
    assert revalidated.content == b""

    await _save_latest(api_brain, "run-b", {"counts": {"batchesActive": 4}}, day=DAY + timedelta(days=1))
    newer = await api_client.get(
        "/api/v1/state/latest", headers={**admin_headers, "if-none-match": first.headers["etag"]}
    )
    assert newer.status_code == 200
    assert newer.json()["snapshot"]["id"] == "run-b"
    assert newer.json()["snapshot"]["document"] == {"counts": {"batchesActive": 4}}
    assert newer.headers["etag"] != first.headers["etag"]


async def test_a_matching_latest_state_etag_without_credentials_is_still_a_401(
    api_client: httpx.AsyncClient, api_brain: Brain, admin_headers: dict[str, str]
) -> None:
    await _save_latest(api_brain, "run-a", {"counts": {"batchesActive": 3}})
    etag = (await api_client.get("/api/v1/state/latest", headers=admin_headers)).headers["etag"]
    anonymous = await api_client.get("/api/v1/state/latest", headers={"if-none-match": etag})
    assert anonymous.status_code == 401
    assert "document" not in anonymous.text


async def test_the_latest_state_is_the_same_json_value_as_the_models_encoding(
    api_client: httpx.AsyncClient, api_brain: Brain, admin_headers: dict[str, str]
) -> None:
    document = {
        "schemaVersion": "v3.0",
        "studio": {"name": "Töpferei am Fluss ☕", "kilns": [{"id": "k1", "tempC": 1221.5, "on": True}]},
        "counts": {"batchesActive": 5, "none": None, "big": 2**70, "neg": -(2**63)},
        "nested": [[], {}, [1, 2.0, "3"]],
    }
    # a 70-bit integer cannot be hashed canonically (nor encoded by orjson): stored as found, the model's
    # encoder serves it
    run = await _save_latest(api_brain, "run-a", document, snapshot_hash=sha256_hex("as found"))
    stored = await api_brain.state_store.latest_snapshot(api_brain.tenant_id)
    assert stored is not None
    expected = SnapshotResponse(snapshot=snapshot_view(stored)).model_dump(mode="json")
    served = await api_client.get("/api/v1/state/latest", headers=admin_headers)
    assert served.json() == expected
    assert served.json()["snapshot"]["document"]["counts"]["big"] == 2**70
    small = {k: v for k, v in document.items() if k != "counts"}  # orjson's own path (no 70-bit integer)
    assert orjson.loads(encode_snapshot(replace(run, document=small))) == SnapshotResponse(
        snapshot=snapshot_view(replace(run, document=small))
    ).model_dump(mode="json")


async def test_the_latest_state_of_one_tenant_is_never_served_to_another(
    api_client: httpx.AsyncClient,
    api_brain: Brain,
    admin_headers: dict[str, str],
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from studio_brain.web.app import create_app

    await _save_latest(api_brain, "run-a", {"counts": {"batchesActive": 3}})
    ours = await api_client.get("/api/v1/state/latest", headers=admin_headers)
    assert ours.status_code == 200
    monkeypatch.setenv("STUDIO_BRAIN_TENANT_ID", "another-studio")
    settings = load_settings()
    async with open_brain(settings, target=DatabaseTarget(url=database_url, embedded=None)) as theirs:
        assert theirs.tenant_id == "another-studio"
        transport = httpx.ASGITransport(app=create_app(brain=theirs))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as other:
            nothing = await other.get(
                "/api/v1/state/latest", headers={**admin_headers, "if-none-match": ours.headers["etag"]}
            )
            assert nothing.status_code == 404
            await _save_latest(theirs, "run-other", {"counts": {"batchesActive": 9}})
            mine = await other.get(
                "/api/v1/state/latest", headers={**admin_headers, "if-none-match": ours.headers["etag"]}
            )
            assert mine.status_code == 200
            assert mine.json()["snapshot"]["tenantId"] == "another-studio"
            assert mine.json()["snapshot"]["document"] == {"counts": {"batchesActive": 9}}
    still_ours = await api_client.get("/api/v1/state/latest", headers=admin_headers)
    assert still_ours.content == ours.content


async def test_the_latest_state_reads_its_document_once_per_run(
    api_client: httpx.AsyncClient,
    api_brain: Brain,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await _save_latest(api_brain, "run-once", {"counts": {"batchesActive": 3}})
    store = api_brain.state_store
    reads = 0
    original = store.latest_snapshot

    async def counted(tenant_id: str) -> SnapshotRun | None:
        nonlocal reads
        reads += 1
        return await original(tenant_id)

    monkeypatch.setattr(store, "latest_snapshot", counted)
    bodies = [(await api_client.get("/api/v1/state/latest", headers=admin_headers)).content for _ in range(3)]
    assert bodies[0] == bodies[1] == bodies[2]
    assert reads == 1
