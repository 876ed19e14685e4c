"""Registry from settings, health checks stored in PostgreSQL for the cockpit, readings across connectors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from studio_brain.adapters.connectors.fakes import FakeHomeAssistant, FakeMakerApi
from studio_brain.adapters.connectors.registry import build_connectors
from studio_brain.bootstrap import DatabaseTarget, open_brain
from studio_brain.cli.connectors import prepare_demo_devices
from studio_brain.domain.connectors import BreakerState, ConnectorContext, ConnectorMode, HealthStatus
from studio_brain.domain.errors import ConfigError
from studio_brain.settings import Settings, load_settings
from tests.fakes import FakeClock

pytestmark = pytest.mark.postgres

HUB_TOKEN = "hub-secret-token-1"
HA_TOKEN = "ha-secret-token-2"


@pytest.fixture
def hub() -> Iterator[FakeMakerApi]:
    with FakeMakerApi(token=HUB_TOKEN) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def ha() -> Iterator[FakeHomeAssistant]:
    with FakeHomeAssistant(token=HA_TOKEN) as server:
        yield server  # type: ignore[misc]


def settings(database_url: str, **overrides: Any) -> Settings:
    return load_settings(database_url=database_url, **overrides)


def configured(database_url: str, hub: FakeMakerApi, ha: FakeHomeAssistant, **overrides: Any) -> Settings:
    return settings(
        database_url,
        hubitat_url=hub.hub_url,
        hubitat_app_id=hub.app_id,
        hubitat_token=HUB_TOKEN,
        roborock_ha_url=ha.url,
        roborock_ha_token=HA_TOKEN,
        connector_breaker_failures=2,
        connector_read_attempts=1,
        **overrides,
    )


def target(database_url: str) -> DatabaseTarget:
    return DatabaseTarget(url=database_url, embedded=None)


async def test_an_unconfigured_connector_is_not_configured_never_healthy(database_url: str) -> None:
    async with open_brain(settings(database_url), target=target(database_url)) as brain:
        results = await brain.connector_health.check_all()
        by_id = {h.connector_id: h for h in results}
        assert {i: h.status for i, h in by_id.items()} == {
            "functions": HealthStatus.NOT_CONFIGURED,  # issue 15: the cloud-write connector
            "hubitat": HealthStatus.NOT_CONFIGURED,
            "roborock": HealthStatus.NOT_CONFIGURED,
        }
        assert "STUDIO_BRAIN_HUBITAT_URL" in by_id["hubitat"].detail
        assert "STUDIO_BRAIN_FUNCTIONS_BASE_URL" in by_id["functions"].detail
        assert brain.connectors.connector_for(brain.tenant_id, "hubitat") is None
        with pytest.raises(ConfigError, match="not configured"):
            await brain.connectors["hubitat"].read_status(
                ConnectorContext(request_id="r", timeout_seconds=1), {}
            )
        assert await brain.connector_health.read_devices() == []


async def test_health_checks_are_stored_and_the_cockpit_gets_the_newest_per_connector(
    database_url: str, hub: FakeMakerApi, ha: FakeHomeAssistant
) -> None:
    async with open_brain(configured(database_url, hub, ha), target=target(database_url)) as brain:
        service = brain.connector_health
        assert service is not None
        first = await service.check_all()
        assert [(h.connector_id, h.status, h.mode) for h in first] == [
            ("functions", HealthStatus.NOT_CONFIGURED, None),  # issue 15's cloud-write connector
            ("hubitat", HealthStatus.HEALTHY, ConnectorMode.READ_ONLY),
            ("roborock", HealthStatus.HEALTHY, ConnectorMode.READ_ONLY),
        ]
        ha.stop()
        await service.check_all()
        latest = {h.connector_id: h for h in await service.latest()}
        assert latest["hubitat"].status is HealthStatus.HEALTHY
        assert latest["roborock"].status is HealthStatus.DOWN
        assert latest["roborock"].error_kind is not None
        assert latest["roborock"].error_kind.value == "UNAVAILABLE"
        stored = await service._store.history(brain.tenant_id, "roborock")  # type: ignore[union-attr]
        assert [h.status for h in stored] == [HealthStatus.DOWN, HealthStatus.HEALTHY]


async def test_a_stopped_device_turns_down_opens_its_breaker_and_recovers_when_it_returns(
    database_url: str, hub: FakeMakerApi, ha: FakeHomeAssistant
) -> None:
    clock = FakeClock()
    registry = build_connectors(configured(database_url, hub, ha), clock=clock)
    hubitat = registry["hubitat"]
    ctx = ConnectorContext(request_id="h", timeout_seconds=2)
    hub.stop()
    assert (await hubitat.health(ctx)).status is HealthStatus.DOWN
    assert (await hubitat.health(ctx)).status is HealthStatus.DOWN
    opened = await hubitat.health(ctx)
    assert (opened.status, opened.breaker) == (HealthStatus.DOWN, BreakerState.OPEN)
    hub.start()
    assert (await hubitat.health(ctx)).breaker is BreakerState.OPEN  # still inside its window
    clock.advance(30)
    recovered = await hubitat.health(ctx)
    assert (recovered.status, recovered.breaker) == (HealthStatus.HEALTHY, BreakerState.CLOSED)


async def test_readings_come_from_every_configured_connector_and_a_failing_one_does_not_hide_the_rest(
    database_url: str, hub: FakeMakerApi, ha: FakeHomeAssistant
) -> None:
    async with open_brain(configured(database_url, hub, ha), target=target(database_url)) as brain:
        readings = {r.connector_id: r for r in await brain.connector_health.read_devices()}
        assert "Kiln Room Outlet" in [d["label"] for d in readings["hubitat"].devices]
        assert readings["roborock"].devices[0]["type"] == "vacuum"
        hub.rotate_token("new-token")
        readings = {r.connector_id: r for r in await brain.connector_health.read_devices()}
        assert readings["hubitat"].error_kind == "AUTH"
        assert readings["hubitat"].devices == []
        assert readings["roborock"].error is None
        assert HUB_TOKEN not in str(readings["hubitat"].to_dict())


async def test_the_gateway_finds_a_configured_connector_by_target(
    database_url: str, hub: FakeMakerApi, ha: FakeHomeAssistant
) -> None:
    registry = build_connectors(
        configured(database_url, hub, ha, roborock_mode="read_write"), clock=FakeClock()
    )
    assert registry.connector_for("monsoonfire-main", "roborock") is registry["roborock"]
    assert registry["roborock"].mode is ConnectorMode.READ_WRITE
    assert registry["hubitat"].mode is ConnectorMode.READ_ONLY
    assert registry.connector_for("monsoonfire-main", "firestore") is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("hubitat_url", "ftp://hub", "http:// or https://"),
        ("hubitat_url", "http://hub/?access_token=abc", "no credentials or query"),
        ("hubitat_app_id", "seven", "digits"),
        ("hubitat_write_allowlist", "21:on,lonely", "device:command"),
        ("roborock_entity_id", "sensor.x", "ROBOROCK_ENTITY_ID"),
        ("hubitat_mode", "yolo", "HUBITAT_MODE"),
    ],
)
def test_bad_connector_settings_stop_with_one_clear_line(field: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(**{field: value})
    assert message in caught.value.message
    assert "abc" not in caught.value.message


def test_connector_tokens_are_never_shown_by_config_show() -> None:
    shown = load_settings(hubitat_token="tok-visible?", roborock_ha_token="ha-visible?").redacted()
    assert shown["STUDIO_BRAIN_HUBITAT_TOKEN"] == "***"
    assert "tok-visible?" not in str(shown)
    assert "ha-visible?" not in str(shown)


async def test_the_demo_starts_both_fakes_and_reads_real_devices_through_the_real_connectors(
    database_url: str,
) -> None:
    async with open_brain(settings(database_url), target=target(database_url)) as brain:
        demo = await prepare_demo_devices(brain)
        try:
            latest = {h.connector_id: h.status for h in await brain.connector_health.latest()}
            assert latest == {
                "functions": HealthStatus.NOT_CONFIGURED,  # the demo's fake Functions come in a later step
                "hubitat": HealthStatus.HEALTHY,
                "roborock": HealthStatus.HEALTHY,
            }
            readings = {r.connector_id: r for r in await brain.connector_health.read_devices()}
            assert len(readings["hubitat"].devices) == 8
            assert all(c.mode is ConnectorMode.READ_ONLY for c in brain.connectors.values())
        finally:
            demo.stop()
        assert not demo.hubitat.running
        assert not demo.homeassistant.running
