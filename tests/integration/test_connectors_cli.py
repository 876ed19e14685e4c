"""`studio-brain connectors health|devices`: statuses, JSON, exit codes, no secret on screen."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from studio_brain.adapters.connectors.fakes import FakeMakerApi
from tests.integration.test_cli import cli

pytestmark = pytest.mark.postgres

HUB_TOKEN = "cli-hub-secret-77"


@pytest.fixture
def hub() -> Iterator[FakeMakerApi]:
    with FakeMakerApi(token=HUB_TOKEN) as server:
        yield server  # type: ignore[misc]


def env(database_url: str, hub: FakeMakerApi) -> dict[str, str]:
    return {
        "STUDIO_BRAIN_DATABASE_URL": database_url,
        "STUDIO_BRAIN_HUBITAT_URL": hub.hub_url,
        "STUDIO_BRAIN_HUBITAT_APP_ID": hub.app_id,
        "STUDIO_BRAIN_HUBITAT_TOKEN": HUB_TOKEN,
        "STUDIO_BRAIN_LOG_LEVEL": "debug",
    }


def test_health_json_lists_every_connector_and_an_unconfigured_one_is_not_configured(
    database_url: str, hub: FakeMakerApi
) -> None:
    result = cli("connectors", "health", "--json", env=env(database_url, hub))
    assert result.returncode == 0, result.stderr
    statuses = {h["connector"]: (h["status"], h["breaker"]) for h in json.loads(result.stdout)}
    assert statuses == {
        "functions": ("not_configured", "closed"),
        "hubitat": ("healthy", "closed"),
        "roborock": ("not_configured", "closed"),
    }
    assert HUB_TOKEN not in result.stdout + result.stderr


def test_health_exits_1_when_a_configured_connector_is_down(database_url: str, hub: FakeMakerApi) -> None:
    settings = env(database_url, hub)
    hub.stop()
    result = cli("connectors", "health", env=settings)
    assert result.returncode == 1
    assert "hubitat" in result.stdout
    assert "down" in result.stdout
    assert "UNAVAILABLE" not in result.stderr
    assert "Traceback" not in result.stderr
    assert HUB_TOKEN not in result.stdout + result.stderr


def test_devices_prints_the_studio_devices_normalised(database_url: str, hub: FakeMakerApi) -> None:
    result = cli("connectors", "devices", "--connector", "hubitat", env=env(database_url, hub))
    assert result.returncode == 0, result.stderr
    assert "Kiln Room Outlet" in result.stdout
    assert "power=1520.4" in result.stdout
    assert "Storage Room Contact" in result.stdout
    assert "OFFLINE" in result.stdout
    assert HUB_TOKEN not in result.stdout + result.stderr
    assert hub.writes == []


def test_devices_of_an_unknown_connector_is_one_clear_line(database_url: str, hub: FakeMakerApi) -> None:
    result = cli("connectors", "devices", "--connector", "nest", env=env(database_url, hub))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("studio-brain: no connector 'nest'")
    assert "Traceback" not in result.stderr
