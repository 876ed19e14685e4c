"""The Portal's capabilities card encoded once per version (issue 18): the registry's, the overview's mark
(the row versions it shows and the audit chain's head) and the connectors' health. An unchanged card is
served without reading its records again; anything it shows that changes — through the brain or behind
its back — is answered exactly as an app without the cache answers it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest

from studio_brain.bootstrap import Brain
from studio_brain.domain.identity import Principal
from studio_brain.ports.gateway import PolicyOverview, ProposalFilter
from studio_brain.web.app import create_app
from tests.fixtures.auth import TokenMinter
from tests.integration.test_compat_portal import create_payload, portal_headers

pytestmark = pytest.mark.postgres

CARD = "/api/capabilities"


def _client(brain: Brain) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(brain=brain)), base_url="http://127.0.0.1:8000"
    )


@pytest.fixture
async def client(api_brain: Brain) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(api_brain) as client:
        yield client


@pytest.fixture
def overview_reads(api_brain: Brain, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each time the gateway reads the card's records (the tenant it read for)."""
    reads: list[str] = []
    original = api_brain.gateway.overview

    async def counted(principal: Principal, where: ProposalFilter) -> PolicyOverview:
        reads.append(principal.tenant_id)
        return await original(principal, where)

    monkeypatch.setattr(api_brain.gateway, "overview", counted)
    return reads


def answer(response: httpx.Response) -> tuple[int, Any]:
    """Status and body, without the request's own id."""
    return response.status_code, {k: v for k, v in response.json().items() if k != "requestId"}


async def answered_without_a_cache(brain: Brain, headers: dict[str, str]) -> tuple[int, Any]:
    async with _client(brain) as fresh:
        return answer(await fresh.get(CARD, headers=headers))


async def test_an_unchanged_card_is_served_again_without_reading_its_records(
    client: httpx.AsyncClient, tokens: TokenMinter, overview_reads: list[str]
) -> None:
    staff = portal_headers(tokens, "staff-1")
    assert (await client.post(f"{CARD}/proposals", json=create_payload(), headers=staff)).status_code == 201
    first = await client.get(CARD, headers=staff)
    assert first.status_code == 200, first.text
    assert len(overview_reads) == 1
    second = await client.get(CARD, headers=staff)
    assert len(overview_reads) == 1
    assert second.content == first.content
    assert len(second.json()["proposals"]) == 1


async def test_a_new_proposal_and_a_turned_switch_are_on_the_next_card(
    client: httpx.AsyncClient, tokens: TokenMinter
) -> None:
    staff = portal_headers(tokens, "staff-1")
    assert (await client.get(CARD, headers=staff)).json()["proposals"] == []
    created = await client.post(f"{CARD}/proposals", json=create_payload(), headers=staff)
    card = (await client.get(CARD, headers=staff)).json()
    assert [p["id"] for p in card["proposals"]] == [created.json()["proposal"]["id"]]
    assert card["policy"]["killSwitch"]["enabled"] is False
    switched = await client.post(
        f"{CARD}/policy/kill-switch", json={"enabled": True, "rationale": "Hub is acting up"}, headers=staff
    )
    assert switched.status_code == 200, switched.text
    assert (await client.get(CARD, headers=staff)).json()["policy"]["killSwitch"]["enabled"] is True


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE gateway_kill_switch SET enabled = false",
        "DELETE FROM gateway_kill_switch",
        "UPDATE gateway_proposals SET record = jsonb_set(record, '{rationale}', '\"edited behind its back\"')",
    ],
)
async def test_a_row_changed_outside_the_brain_is_answered_as_without_the_cache(
    client: httpx.AsyncClient, api_brain: Brain, database_url: str, tokens: TokenMinter, change: str
) -> None:
    staff = portal_headers(tokens, "staff-1")
    await client.post(f"{CARD}/proposals", json=create_payload(), headers=staff)
    await client.post(
        f"{CARD}/policy/kill-switch",
        json={"enabled": True, "rationale": "Hub is acting up tonight"},
        headers=staff,
    )
    cached = await client.get(CARD, headers=staff)
    assert cached.json()["policy"]["killSwitch"]["enabled"] is True
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(change)  # no audit event: the chain head does not move
    again = await client.get(CARD, headers=staff)
    assert again.content != cached.content
    assert answer(again) == await answered_without_a_cache(api_brain, staff)


async def test_each_app_keeps_its_own_cards(api_brain: Brain) -> None:
    first, second = create_app(brain=api_brain), create_app(brain=api_brain)
    assert first.state.capability_cards is not second.state.capability_cards
