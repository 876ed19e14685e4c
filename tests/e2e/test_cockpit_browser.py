"""The cockpit in a real browser: sign in with the one-time link, read today's numbers, walk every page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from studio_brain.bootstrap import Brain
from studio_brain.domain.audit import ActorType
from studio_brain.domain.identity import AuthMethod, Principal
from tests.e2e.conftest import CockpitServer, screenshot, start_server
from tests.e2e.seed import propose_note, seed_snapshots, snapshot_document

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.slow]


async def prepare(brain: Brain) -> None:
    today = datetime.now(brain.settings.zone).date()
    await seed_snapshots(brain.state_store, tenant_id=brain.tenant_id, last_day=today, days=30)


@pytest.fixture
def server(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CockpitServer]:
    yield from start_server(database_url, tmp_path, prepare, monkeypatch)


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


def staff(actor_id: str, name: str) -> Principal:
    return Principal(
        tenant_id="monsoonfire-main",
        actor_type=ActorType.STAFF,
        actor_id=actor_id,
        via=AuthMethod.SESSION,
        roles=frozenset({"staff"}),
        display_name=name,
    )


def test_a_second_staff_member_approves_executes_and_finds_it_in_the_audit_log(
    server: CockpitServer, browser: Any
) -> None:
    gateway = server.brain.gateway
    assert gateway is not None
    ada, grace = staff("ada", "Ada"), staff("grace", "Grace")
    proposal = server.call(lambda: propose_note(gateway, ada))

    # the requester may not approve her own proposal: the page says why, in words
    first = browser.new_context(viewport={"width": 1280, "height": 900})
    page = first.new_page()
    page.goto(server.login_url(ada))
    page.get_by_role("link", name="Proposals").click()
    page.get_by_role("link", name="studio.note.append").click()
    page.get_by_label("Why approve?").fill("I wrote it and I like it")
    page.get_by_role("button", name="Approve").click()
    assert "Whoever asked for this cannot also approve it" in page.get_by_test_id("refusal").inner_text()
    screenshot(page, "04-proposal-refused-self-approval")
    first.close()

    second = browser.new_context(viewport={"width": 1280, "height": 900})
    page = second.new_page()
    page.goto(server.login_url(grace))
    page.goto(f"{server.base_url}/proposals?status=pending_approval")
    screenshot(page, "03-proposals")
    page.get_by_role("link", name="studio.note.append").click()
    page.get_by_label("Why approve?").fill("Checked the kiln log: the shelf is cracked")
    page.get_by_role("button", name="Approve").click()
    assert page.get_by_test_id("proposal-status").inner_text() == "approved"
    # execute asks for a confirmation first; the browser refuses to submit without the box ticked
    page.get_by_role("button", name="Execute").click()
    assert page.get_by_test_id("proposal-status").inner_text() == "approved"
    page.get_by_label("I have checked the input").check()
    page.get_by_role("button", name="Execute").click()
    assert page.get_by_test_id("proposal-status").inner_text() == "executed"
    timeline = page.get_by_test_id("timeline")
    actions = [
        timeline.locator("li").nth(i).get_attribute("data-action")
        for i in range(timeline.locator("li").count())
    ]
    assert actions[0] == "capability.proposal.created"
    assert "capability.decision.refused" in actions
    assert "capability.proposal.approved" in actions
    assert actions[-1] == "capability.proposal.executed"
    screenshot(page, "04-proposal-executed")

    page.get_by_role("link", name="Audit", exact=True).click()
    page.get_by_label("Actor id").fill("grace")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/audit?**actor=grace**")
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
    for path, heading, name in (
        ("/connectors", "Connectors", "05-connectors"),
        ("/policy", "Policy", "06-policy"),
    ):
        page.goto(server.base_url + path)
        assert page.locator("h1").inner_text() == heading
        page.wait_for_load_state("networkidle")
        screenshot(page, name)
