"""The demo's safety world: the fake hub's drivable kiln outlet and door contact (periodic reports that
stop when a device goes silent), the scenario switch served by the fake hub, and ``studio-brain
demo-scenario`` driving it from another process."""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from studio_brain.adapters.connectors.fakes.maker_api import FakeMakerApi
from studio_brain.adapters.demo_safety import (
    DEMO_KILN,
    DEMO_OUTLET,
    DemoFiringReader,
    DemoScenarios,
    read_scenario_file,
    write_scenario_file,
)
from studio_brain.adapters.demo_source import DemoCloud
from tests.fakes import FakeClock
from tests.integration.test_cli import cli

NOW = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)


class Moving:
    def __init__(self) -> None:
        self.at = NOW

    def __call__(self) -> datetime:
        return self.at


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - loopback
            return int(answer.status)
    except urllib.error.HTTPError as err:
        return err.code


def _outlet_date(hub: FakeMakerApi) -> str:
    return hub._full(hub.devices[DEMO_OUTLET])["date"]


def test_a_live_outlet_keeps_reporting_and_a_silent_one_freezes() -> None:
    clock = Moving()
    hub = FakeMakerApi(token="t", now=clock)
    clock.at = NOW + timedelta(minutes=30)
    live = _outlet_date(hub)
    assert live >= (clock.at - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
    hub.go_silent(DEMO_OUTLET)
    clock.at += timedelta(minutes=45)
    assert _outlet_date(hub) == live


def test_the_outlet_power_and_the_door_contact_can_be_driven() -> None:
    hub = FakeMakerApi(token="t", now=Moving())
    hub.set_power(DEMO_OUTLET, 1480.0)
    assert hub.devices[DEMO_OUTLET].attributes["power"] == (1480.0, "NUMBER")
    assert hub.devices[DEMO_OUTLET].attributes["switch"] == ("on", "ENUM")
    hub.set_power(DEMO_OUTLET, 0.0)
    assert hub.devices[DEMO_OUTLET].attributes["switch"] == ("off", "ENUM")
    hub.set_contact("31", "open")
    assert hub.devices["31"].attributes["contact"][0] == "open"


async def test_scenarios_are_served_by_the_hub_with_its_token_and_change_devices_and_firings() -> None:
    cloud = DemoCloud(seed=7, clock=FakeClock(NOW), zone=UTC)
    firings = DemoFiringReader(cloud, now=lambda: NOW)
    with FakeMakerApi(token="scenario-token") as hub:
        assert isinstance(hub, FakeMakerApi)
        hub.scenario_handler = DemoScenarios(hub, firings).apply
        base = f"{hub.url}/_demo/scenario"
        assert _get(f"{base}/kiln-left-on?access_token=wrong") == 401
        assert _get(f"{base}/melt-down?access_token=scenario-token") == 404
        assert _get(f"{base}/kiln-left-on?access_token=scenario-token") == 200
        assert hub.writes == [], "a scenario is not a device command"
    assert hub.devices[DEMO_OUTLET].attributes["power"][0] == 1480.0
    current = await firings.current_firings()
    assert not [
        f for f in current if f.kiln_id == DEMO_KILN and f.status in ("loading", "firing", "in-progress")
    ]
    firings.override = "firing"
    assert await firings.demo_kiln_firing()


def test_the_scenario_command_drives_a_running_demo_through_its_file(tmp_path: Path) -> None:
    with FakeMakerApi(token="demo-token") as hub:
        assert isinstance(hub, FakeMakerApi)
        seen: list[str] = []
        hub.scenario_handler = lambda name: seen.append(name) or {"scenario": name}
        path = write_scenario_file(tmp_path, hub)
        assert path.stat().st_mode & 0o777 == 0o600
        assert read_scenario_file(tmp_path) is not None
        result = cli("demo-scenario", "door-open", env={"STUDIO_BRAIN_HOME": str(tmp_path)})
        assert result.returncode == 0, result.stderr
        assert seen == ["door-open"]
        assert "demo-token" not in result.stdout + result.stderr
    unknown = cli("demo-scenario", "melt-down", env={"STUDIO_BRAIN_HOME": str(tmp_path)})
    assert unknown.returncode == 2
    assert "unknown scenario" in unknown.stderr


def test_the_scenario_command_says_so_when_no_demo_runs(tmp_path: Path) -> None:
    result = cli("demo-scenario", "kiln-left-on", env={"STUDIO_BRAIN_HOME": str(tmp_path)})
    assert result.returncode == 1
    assert "no running demo found" in result.stderr


@pytest.mark.parametrize("name", DemoScenarios.NAMES)
def test_every_named_scenario_applies(name: str) -> None:
    hub = FakeMakerApi(token="t", now=Moving())
    cloud = DemoCloud(seed=7, clock=FakeClock(NOW), zone=UTC)
    summary = DemoScenarios(hub, DemoFiringReader(cloud, now=lambda: NOW)).apply(name)
    assert summary is not None
    assert summary["scenario"] == name


@pytest.mark.postgres
async def test_in_the_demo_kiln_left_on_gives_a_high_finding_a_drafted_switch_off_and_an_alert(
    database_url: str, tmp_path: Path
) -> None:
    from studio_brain.bootstrap import DatabaseTarget, open_brain
    from studio_brain.cli.connectors import prepare_demo_devices
    from studio_brain.cli.safety import prepare_demo_safety
    from studio_brain.settings import load_settings

    settings = load_settings(database_url=database_url, home=tmp_path, state_source="demo", demo_seed=7)
    async with open_brain(settings, target=DatabaseTarget(url=database_url, embedded=None)) as brain:
        devices = await prepare_demo_devices(brain)
        try:
            inbox = await prepare_demo_safety(brain, devices)
            assert inbox is not None
            [calm] = await brain.jobs.run("safety-watch")
            assert "safety.kiln_power_without_firing:21" not in calm.summary["conditions"]
            found = read_scenario_file(tmp_path)
            assert found is not None
            assert _get(f"{found['hubUrl']}/_demo/scenario/kiln-left-on?access_token={found['token']}") == 200

            [run] = await brain.jobs.run("safety-watch", trigger="schedule")

            assert "safety.kiln_power_without_firing:21" in run.summary["conditions"]
            [finding] = [f for f in await brain.safety.findings(status="open") if f.subject == DEMO_OUTLET]
            assert finding.severity.value == "high"
            assert finding.proposal_id is not None
            assert [m.title for m in inbox.messages] == [
                "[HIGH] Kiln outlet drawing power with no firing in progress"
            ]
            assert devices.hubitat.writes == []
            inbox.stop()
        finally:
            devices.stop()
