"""Audit pages encoded once per chain head (issue 18, web/audit_pages.py): an unchanged page is served
without reading the log again, any appended event is on the next page, the head is the page's ETag, and an
event appended while a page is read is never hidden by the page kept."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from studio_brain.bootstrap import Brain
from studio_brain.domain.audit import ActorType, ApprovalState, AuditDraft, AuditPage, AuditQuery
from studio_brain.web.app import create_app
from tests.fixtures.auth import TokenMinter

pytestmark = pytest.mark.postgres

#: the native page and the Portal's rows, each with the list the test looks in
PAGES = [
    ("/api/v1/audit?newestFirst=true&limit=20", "events"),
    ("/api/capabilities/audit?limit=20", "rows"),
]


@pytest.fixture
async def client(api_brain: Brain) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(brain=api_brain))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        yield client


@pytest.fixture
def log_reads(api_brain: Brain, monkeypatch: pytest.MonkeyPatch) -> list[AuditQuery]:
    """Every page query the brain's event store answers."""
    reads: list[AuditQuery] = []
    original = api_brain.events.query

    async def counted(tenant_id: str, query: AuditQuery) -> AuditPage:
        reads.append(query)
        return await original(tenant_id, query)

    monkeypatch.setattr(api_brain.events, "query", counted)
    return reads


async def note(brain: Brain, n: int) -> None:
    await brain.events.append(
        AuditDraft(
            tenant_id=brain.tenant_id,
            actor_type=ActorType.SYSTEM,
            actor_id="test",
            action="test.page.note",
            target="studio",
            rationale=f"note {n}",
            approval_state=ApprovalState.NOT_APPLICABLE,
            input_hash="0" * 64,
            correlation_id=f"note-{n}",
            request_id=f"note-{n}",
        )
    )


def rationales(response: httpx.Response, field: str) -> list[str]:
    assert response.status_code == 200, response.text
    return [row["rationale"] for row in response.json()[field]]


@pytest.mark.parametrize(("path", "field"), PAGES)
async def test_an_unchanged_page_is_served_again_without_reading_the_log(
    client: httpx.AsyncClient,
    api_brain: Brain,
    tokens: TokenMinter,
    log_reads: list[AuditQuery],
    path: str,
    field: str,
) -> None:
    await note(api_brain, 1)
    staff = tokens.headers("staff-1", staff=True)
    first = await client.get(path, headers=staff)
    reads = len(log_reads)
    assert reads >= 1
    second = await client.get(path, headers=staff)
    assert len(log_reads) == reads
    assert second.content == first.content
    assert "note 1" in rationales(second, field)


@pytest.mark.parametrize(("path", "field"), PAGES)
async def test_an_appended_event_is_on_the_next_page_with_a_new_etag(
    client: httpx.AsyncClient, api_brain: Brain, tokens: TokenMinter, path: str, field: str
) -> None:
    await note(api_brain, 1)
    staff = tokens.headers("staff-1", staff=True)
    first = await client.get(path, headers=staff)
    await note(api_brain, 2)
    second = await client.get(path, headers=staff)
    assert rationales(second, field)[0] == "note 2"
    assert second.headers["etag"] != first.headers["etag"]


@pytest.mark.parametrize(("path", "field"), PAGES)
async def test_a_page_names_its_chain_head_and_answers_304_until_the_head_moves(
    client: httpx.AsyncClient, api_brain: Brain, tokens: TokenMinter, path: str, field: str
) -> None:
    await note(api_brain, 1)
    staff = tokens.headers("staff-1", staff=True)
    first = await client.get(path, headers=staff)
    head = await api_brain.events.chain_head(api_brain.tenant_id)
    assert head is not None
    assert first.headers["etag"] == f'"audit-{head.seq}-{head.hash[:16]}"'
    assert first.headers["cache-control"] == "private, no-cache"
    unchanged = await client.get(path, headers={**staff, "if-none-match": first.headers["etag"]})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    await note(api_brain, 2)
    moved = await client.get(path, headers={**staff, "if-none-match": first.headers["etag"]})
    assert rationales(moved, field)[0] == "note 2"


@pytest.mark.parametrize(("path", "field"), PAGES)
async def test_an_etag_without_credentials_is_still_refused(
    client: httpx.AsyncClient, api_brain: Brain, tokens: TokenMinter, path: str, field: str
) -> None:
    await note(api_brain, 1)
    first = await client.get(path, headers=tokens.headers("staff-1", staff=True))
    anonymous = await client.get(path, headers={"if-none-match": first.headers["etag"]})
    assert anonymous.status_code == 401


@pytest.mark.parametrize(("path", "field"), PAGES)
async def test_an_event_appended_while_a_page_is_read_is_on_the_next_page(
    client: httpx.AsyncClient,
    api_brain: Brain,
    tokens: TokenMinter,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    field: str,
) -> None:
    """The head is read before the page: a page that missed an append is kept under the older head, which
    no later read names (a cache that took the head after the page would hide ``note 2`` for good)."""
    await note(api_brain, 1)
    original = api_brain.events.query

    async def append_after_reading(tenant_id: str, query: AuditQuery) -> AuditPage:
        page = await original(tenant_id, query)
        monkeypatch.setattr(api_brain.events, "query", original)
        await note(api_brain, 2)  # commits after the page was read, before it is kept
        return page

    monkeypatch.setattr(api_brain.events, "query", append_after_reading)
    staff = tokens.headers("staff-1", staff=True)
    assert rationales(await client.get(path, headers=staff), field)[0] == "note 1"
    assert rationales(await client.get(path, headers=staff), field)[0] == "note 2"


async def test_each_filter_of_a_page_is_kept_apart(
    client: httpx.AsyncClient, api_brain: Brain, tokens: TokenMinter
) -> None:
    await note(api_brain, 1)
    staff = tokens.headers("staff-1", staff=True)
    notes = await client.get("/api/capabilities/audit?actionPrefix=test.page", headers=staff)
    others = await client.get("/api/capabilities/audit?actionPrefix=capability", headers=staff)
    assert rationales(notes, "rows") == ["note 1"]
    assert "note 1" not in rationales(others, "rows")
    await note(api_brain, 2)
    one = await client.get("/api/v1/audit?newestFirst=true&limit=1", headers=staff)
    two = await client.get("/api/v1/audit?newestFirst=true&limit=2", headers=staff)
    assert one.headers["etag"] == two.headers["etag"]  # one head, two pages
    assert rationales(one, "events") == ["note 2"]
    assert rationales(two, "events") == ["note 2", "note 1"]


async def test_each_app_keeps_its_own_pages(api_brain: Brain) -> None:
    """Another brain's chain reaches the same seq with other events: a cache is bound with its brain."""
    first, second = create_app(brain=api_brain), create_app(brain=api_brain)
    assert first.state.audit_pages is not second.state.audit_pages
