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
    assert summary["id"] == proposal["id"]
    assert summary["status"] == "pending_approval"
    assert "input" not in summary
    assert row["metadata"]["proposalId"] == proposal["id"]  # every other metadata key is kept

    detail = await api_client.get(row["detail"], headers=admin_headers)
    assert detail.status_code == 200
    full = detail.json()["event"]
    assert full["hash"] == row["hash"]
    assert full["metadata"]["proposal"]["input"] == {"text": "kiln 2"}
    assert "summarised" not in full["metadata"]["proposal"]
    assert {k: v for k, v in full.items() if k != "metadata"} == {
        k: v for k, v in row.items() if k != "metadata"
    }

    everything = await api_client.get(
        "/api/v1/audit",
        params={"actionPrefix": "capability.proposal.created", "details": "full"},
        headers=admin_headers,
    )
    assert everything.json()["events"][0]["metadata"] == full["metadata"]

    portal = await api_client.get(
        "/api/capabilities/audit",
        params={"actionPrefix": "capability.proposal.created"},
        headers=tokens.headers("staff-2", staff=True),
    )
    assert portal.status_code == 200
    assert portal.json()["rows"][0]["metadata"]["proposal"]["summarised"] is True


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
