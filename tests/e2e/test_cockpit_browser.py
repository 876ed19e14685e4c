"""The cockpit in a real browser: sign in (passkey sessions; the break-glass link), read today's numbers,
walk every page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from studio_brain.adapters.connectors.fakes.demo import DemoDevices
from studio_brain.bootstrap import Brain
from studio_brain.web.auth import SESSION_COOKIE
from tests.e2e.conftest import CockpitServer, screenshot, start_server
from tests.e2e.seed import aim_connectors_at_fakes, propose_note, seed_snapshots, snapshot_document
from tests.fixtures.identity import TestPerson, enrol_person

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def server(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CockpitServer]:
    """The cockpit over 30 days of snapshots, with the connectors aimed at the fake device servers."""
    started: list[DemoDevices] = []

    async def prepare(brain: Brain) -> None:
        today = datetime.now(brain.settings.zone).date()
        await seed_snapshots(brain.state_store, tenant_id=brain.tenant_id, last_day=today, days=30)
        started.append(await aim_connectors_at_fakes(brain))

    try:
        yield from start_server(database_url, tmp_path, prepare, monkeypatch)
    finally:
        for devices in started:
            devices.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


def test_staff_sign_in_with_the_login_link_and_read_todays_numbers(server: CockpitServer, page: Any) -> None:
    page.goto(server.base_url + "/")
    assert "Sign in to the cockpit" in page.content()
    screenshot(page, "00-sign-in-required")

    page.goto(server.login_url())
    assert page.url == server.base_url + "/"
    today = datetime.now(server.brain.settings.zone).date()
    expected = snapshot_document(today, 30, tenant_id=server.brain.tenant_id)
    yesterday = snapshot_document(today - timedelta(days=1), 29, tenant_id=server.brain.tenant_id)
    assert page.get_by_test_id("value-counts.batchesActive").inner_text() == str(
        expected["counts"]["batchesActive"]
    )
    assert page.get_by_test_id("value-finance.pendingOrders").inner_text() == str(
        expected["finance"]["pendingOrders"]
    )
    delta = expected["counts"]["reservationsOpen"] - yesterday["counts"]["reservationsOpen"]
    shown = page.get_by_test_id("change-counts.reservationsOpen").inner_text()
    assert shown.endswith("no change" if delta == 0 else f"{'+' if delta > 0 else '−'}{abs(delta)}")
    assert page.locator("svg.spark").count() == 10
    screenshot(page, "01-today")


def signed_in(browser: Any, server: CockpitServer, who: TestPerson) -> Any:
    """A browser context carrying ``who``'s passkey session (enrolled through the real verifier)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies([{"name": SESSION_COOKIE, "value": who.session, "url": server.base_url}])
    return context


def test_a_second_staff_member_approves_executes_and_finds_it_in_the_audit_log(
    server: CockpitServer, browser: Any
) -> None:
    gateway = server.brain.gateway
    assert gateway is not None
    ada = server.call(lambda: enrol_person(server.brain, "Ada", owner=True))
    grace = server.call(lambda: enrol_person(server.brain, "Grace", by=ada.principal))
    proposal = server.call(lambda: propose_note(gateway, ada.principal))

    # the requester is not offered the approval: another staff member must give it
    first = signed_in(browser, server, ada)
    ada_page = first.new_page()
    ada_page.goto(server.base_url + "/")
    ada_page.get_by_role("link", name="Proposals").click()
    ada_page.get_by_role("link", name="studio.note.append").click()
    assert "another staff member must approve it" in ada_page.get_by_test_id("own-proposal").inner_text()
    assert ada_page.get_by_role("button", name="Approve").count() == 0

    second = signed_in(browser, server, grace)
    page = second.new_page()
    page.goto(f"{server.base_url}/proposals?status=pending_approval")
    screenshot(page, "03-proposals")
    page.get_by_role("link", name="studio.note.append").click()
    page.get_by_label("Why approve?").fill("Checked the kiln log: the shelf is cracked")
    page.get_by_role("button", name="Approve").click()
    assert page.get_by_test_id("proposal-status").inner_text() == "approved"
    detail = page.url.split("?")[0]
    assert detail.endswith(f"/proposals/{proposal.id}")

    # meanwhile Ada stops everything with the kill switch (confirmation and rationale required)
    ada_page.get_by_role("link", name="Policy").click()
    ada_page.get_by_label("Why turn it on?").fill("Water on the kiln room floor")
    ada_page.get_by_label("I confirm every execution should stop now.").check()
    ada_page.get_by_role("button", name="Turn the kill switch on").click()
    assert "ON — nothing is executed." in ada_page.get_by_test_id("kill-state").inner_text()
    screenshot(ada_page, "06-policy-kill-switch-on")

    # execute asks for a confirmation first; the browser will not submit without the box ticked
    page.goto(detail)
    page.get_by_role("button", name="Execute").click()
    assert page.get_by_test_id("proposal-status").inner_text() == "approved"
    page.get_by_label("I have checked the input").check()
    page.get_by_role("button", name="Execute").click()
    assert "The kill switch is on" in page.get_by_test_id("refusal").inner_text()
    screenshot(page, "04-proposal-refused-kill-switch")

    ada_page.get_by_label("Why turn it off?").fill("Floor is dry, kilns checked")
    ada_page.get_by_label("I confirm executions may resume.").check()
    ada_page.get_by_role("button", name="Turn the kill switch off").click()
    assert ada_page.get_by_test_id("kill-state").inner_text().startswith("Off")
    first.close()

    page.goto(detail)
    page.get_by_label("I have checked the input").check()
    page.get_by_role("button", name="Execute").click()
    assert page.get_by_test_id("proposal-status").inner_text() == "executed"
    timeline = page.get_by_test_id("timeline").locator("li")
    actions = [timeline.nth(i).get_attribute("data-action") for i in range(timeline.count())]
    assert actions[0] == "capability.proposal.created"
    assert "capability.proposal.approved" in actions
    assert "capability.decision.refused" in actions
    assert actions[-1] == "capability.proposal.executed"
    screenshot(page, "04-proposal-executed")

    page.get_by_role("link", name="Audit", exact=True).click()
    page.get_by_label("Actor id").fill(grace.person_id)
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(f"**/audit?**actor={grace.person_id}**")
    rows = page.locator("#audit-results tbody tr")
    texts = [rows.nth(i).inner_text() for i in range(rows.count())]
    assert any("capability.proposal.executed" in t for t in texts)
    assert all("grace" in t for t in texts)
    assert "Chain intact up to seq" in page.get_by_test_id("verification").inner_text()
    screenshot(page, "02-audit")
    second.close()


def test_every_page_answers_and_is_reachable_by_keyboard(server: CockpitServer, page: Any) -> None:
    page.goto(server.login_url())
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Drafts"  # issue 14: Today, Drafts, ...
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Proposals"
    page.keyboard.press("Enter")
    page.wait_for_url("**/proposals")

    page.goto(server.base_url + "/connectors")
    # htmx fetches the device readings after the page has loaded
    page.locator("#devices section").first.wait_for()
    assert page.locator("#devices section").count() == 2
    screenshot(page, "05-connectors")
    page.goto(server.base_url + "/policy")
    screenshot(page, "06-policy")
    # every form control has a label a screen reader can announce
    for path in (
        "/",
        "/drafts",
        "/proposals",
        "/proposals/new",
        "/trends",
        "/audit",
        "/connectors",
        "/policy",
    ):
        page.goto(server.base_url + path)
        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                 .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
                 .map(el => el.name)"""
        )
        assert unlabelled == [], (path, unlabelled)


def test_the_cockpit_works_without_javascript(server: CockpitServer, browser: Any) -> None:
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(server.login_url())
        assert page.get_by_test_id("value-counts.batchesActive").inner_text() != ""
        page.goto(server.base_url + "/audit")
        page.get_by_label("Action starts with").fill("state.snapshot")
        page.get_by_role("button", name="Filter").click()
        assert "action=state.snapshot" in page.url
        page.goto(server.base_url + "/connectors")
        page.get_by_role("link", name="Read the devices now").click()
        assert page.locator("#devices section").count() == 2
        screenshot(page, "07-connectors-without-javascript")
    finally:
        context.close()
