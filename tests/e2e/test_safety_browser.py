"""The Safety and Brief pages in Debian's Chromium (issue 17): after the demo's kiln-left-on scenario the
Safety page shows the high finding with its evidence, a link to the drafted switch-off proposal and the
delivered alert (target URL masked); both pages are usable on a 375 px phone."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from studio_brain.adapters.connectors.fakes.demo import DemoDevices
from studio_brain.bootstrap import Brain
from studio_brain.web.auth import SESSION_COOKIE
from tests.e2e.conftest import CockpitServer, screenshot, start_server
from tests.e2e.seed import aim_connectors_at_fakes
from tests.fixtures.identity import TestPerson, enrol_person

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.slow]


@dataclass
class Studio:
    server: CockpitServer
    ada: TestPerson


@pytest.fixture
def studio(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Studio]:
    started: list[Any] = []
    people: dict[str, TestPerson] = {}
    monkeypatch.setenv("STUDIO_BRAIN_STATE_SOURCE", "demo")

    async def prepare(brain: Brain) -> None:
        from studio_brain.cli.safety import prepare_demo_safety

        devices: DemoDevices = await aim_connectors_at_fakes(brain)
        started.append(devices)
        inbox = await prepare_demo_safety(brain, devices)
        started.append(inbox)
        assert devices.hubitat.scenario_handler is not None
        devices.hubitat.scenario_handler("kiln-left-on")
        await brain.jobs.run("safety-watch", trigger="schedule")
        people["ada"] = await enrol_person(brain, "Ada", owner=True)

    try:
        for server in start_server(database_url, tmp_path, prepare, monkeypatch):
            yield Studio(server=server, ada=people["ada"])
    finally:
        for thing in started:
            if thing is not None:
                thing.stop()


def test_the_safety_page_shows_the_kiln_finding_its_drafted_switch_off_and_the_sent_alert(
    studio: Studio, browser: Any
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies(
        [{"name": SESSION_COOKIE, "value": studio.ada.session, "url": studio.server.base_url}]
    )
    page = context.new_page()
    page.goto(studio.server.base_url + "/safety")

    row = page.locator("tr[data-rule='safety.kiln_power_without_firing']")
    assert "Kiln Room Outlet draws 1480 W and no firing is in progress" in row.inner_text()
    assert "high" in row.inner_text()
    notifications = page.locator("tr[data-notification]")
    assert notifications.count() == 1
    assert "sent" in notifications.first.inner_text()
    assert "demo-inbox" in notifications.first.inner_text()
    screenshot(page, "17-safety")
    row.get_by_role("link", name="draft switch-off").click()
    assert "hubitat.switch.set" in page.content()
    page.goto(studio.server.base_url + "/brief")
    assert "Open safety findings" in page.content()
    assert "Kiln Room Outlet draws 1480 W" in page.content()
    screenshot(page, "17-brief")
    context.close()


def test_the_safety_and_brief_pages_fit_a_375_px_phone(studio: Studio, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 812})
    context.add_cookies(
        [{"name": SESSION_COOKIE, "value": studio.ada.session, "url": studio.server.base_url}]
    )
    page = context.new_page()
    for path in ("/safety", "/brief"):
        page.goto(studio.server.base_url + path)
        scroll: int = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= 376, f"{path} scrolls sideways on a phone"
    context.close()
