"""A read whose database connection died under it is run once more (issue 13, item 2: "requests retried
once where that is safe"); writes never are, and a database that stays away still answers 503."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from studio_brain.adapters.postgres.state_store import PostgresStateStore
from studio_brain.bootstrap import Brain
from studio_brain.domain.errors import DatabaseUnavailable
from tests.fixtures.auth import TokenMinter

pytestmark = pytest.mark.postgres


class Flaky:
    """Make a store method raise DatabaseUnavailable its first ``failures`` calls (a dropped connection)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, name: str, failures: int) -> None:
        self.calls = 0
        original = getattr(PostgresStateStore, name)

        async def flaky(store: PostgresStateStore, *args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls <= failures:
                raise DatabaseUnavailable("lost the connection to PostgreSQL")
            return await original(store, *args, **kwargs)

        monkeypatch.setattr(PostgresStateStore, name, flaky)


async def test_a_read_that_lost_its_connection_once_is_answered_by_a_second_try(
    api_client: httpx.AsyncClient, admin_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    flaky = Flaky(monkeypatch, "latest_snapshot_version", failures=1)
    response = await api_client.get("/api/v1/state/latest", headers=admin_headers)
    assert response.status_code == 404  # no snapshot yet: the real answer, not the 503 of the first try
    assert flaky.calls == 2


async def test_a_database_that_stays_away_still_answers_503_after_one_retry(
    api_client: httpx.AsyncClient, admin_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    flaky = Flaky(monkeypatch, "latest_snapshot_version", failures=10)
    response = await api_client.get("/api/v1/state/latest", headers=admin_headers)
    assert response.status_code == 503
    assert response.json()["reasonCode"]
    assert flaky.calls == 2


async def test_a_write_is_never_retried(
    api_client: httpx.AsyncClient, api_brain: Brain, tokens: TokenMinter, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert api_brain.gateway is not None
    calls = 0

    async def down(*_args: Any, **_kwargs: Any) -> Sequence[Any]:
        nonlocal calls
        calls += 1
        raise DatabaseUnavailable("lost the connection to PostgreSQL")

    monkeypatch.setattr(api_brain.gateway, "create_proposal", down)
    response = await api_client.post(
        "/api/v1/proposals",
        json={
            "capabilityId": "studio.note.append",
            "input": {"text": "x"},
            "rationale": "a note for the team",
        },
        headers=tokens.headers("alice", staff=True),
    )
    assert response.status_code == 503
    assert calls == 1
