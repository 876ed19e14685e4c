"""Reads that rarely change are encoded once and revalidated cheaply (issue 18), never served past auth."""

from __future__ import annotations

from typing import Any

import httpx

from studio_brain.bootstrap import Brain
from tests.fixtures.auth import TokenMinter


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
