"""Stored connector health follows the breaker (issue 13): it said "healthy, breaker closed" until the next
5-minute check while the breaker was open and every call was refused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from studio_brain.adapters.connectors.fakes import FakeHomeAssistant, FakeMakerApi
from studio_brain.bootstrap import DatabaseTarget, open_brain
from studio_brain.domain.connectors import BreakerState, ConnectorContext, HealthStatus
from studio_brain.domain.errors import ConnectorError
from tests.integration.test_connector_health import HA_TOKEN, HUB_TOKEN, configured

pytestmark = pytest.mark.postgres


@pytest.fixture
def hub() -> Iterator[FakeMakerApi]:
    with FakeMakerApi(token=HUB_TOKEN) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def ha() -> Iterator[FakeHomeAssistant]:
    with FakeHomeAssistant(token=HA_TOKEN) as server:
        yield server  # type: ignore[misc]


async def test_the_stored_health_turns_down_as_soon_as_the_breaker_opens_and_back_when_it_closes(
    database_url: str, hub: FakeMakerApi, ha: FakeHomeAssistant
) -> None:
    settings = configured(database_url, hub, ha)
    async with open_brain(settings, target=DatabaseTarget(url=database_url, embedded=None)) as brain:
        service = brain.connector_health
        assert service is not None
        await service.check_all()
        stored = {h.connector_id: h for h in await service.latest()}
        assert (stored["hubitat"].status, stored["hubitat"].breaker) == (
            HealthStatus.HEALTHY,
            BreakerState.CLOSED,
        )

        hub.fail_next(503, 503, 503)  # device reads fail: the breaker opens (2 failures configured)
        hubitat = service.registry["hubitat"]
        for _ in range(2):
            with pytest.raises(ConnectorError):
                await hubitat.read_status(ConnectorContext(request_id="r", timeout_seconds=2), {})
        shown = {h.connector_id: h for h in await service.latest()}["hubitat"]
        assert (shown.status, shown.breaker) == (HealthStatus.DOWN, BreakerState.OPEN)
        # and it was stored, so every reader of the stored health sees it, not only this call
        again = {h.connector_id: h for h in await service.latest()}["hubitat"]
        assert again.request_id == shown.request_id
