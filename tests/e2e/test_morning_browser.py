"""The morning cockpit in Debian's Chromium (issue 14): Today's summary and Needs attention (approve from
it), Drafts (submit one, dismiss one), the kill-switch banner, the Trends chart with its axes, the audit
table at 1400 px, and every page on a 375 px phone. Screenshots go to artifacts/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from studio_brain.adapters.connectors.fakes.demo import DemoDevices
from studio_brain.bootstrap import Brain
from studio_brain.domain.drafts import DraftKind, Evidence, Finding, Severity
from studio_brain.domain.state import CloseKind, DailyClose
from studio_brain.web.auth import SESSION_COOKIE
from tests.e2e.conftest import CockpitServer, screenshot, start_server
from tests.e2e.seed import aim_connectors_at_fakes, propose_note, seed_snapshots
from tests.fixtures.identity import TestPerson, enrol_person

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.slow]

PAGES = ("/", "/drafts", "/proposals", "/trends", "/audit", "/connectors", "/policy")


@dataclass
class Studio:
    server: CockpitServer
    ada: TestPerson
    grace: TestPerson


def _finding(title: str, kind: DraftKind, severity: Severity, body: dict[str, Any] | None = None) -> Finding:
    return Finding(
        kind=kind,
        rule_id=f"{'ops' if kind is DraftKind.OPS else 'agent'}.e2e_{abs(hash(title)) % 10_000}",
        subject=title,
        severity=severity,
        title=title,
        rationale=f"{title}, in the last 7 daily closes",
        recommendation="Ask the kiln lead to schedule two more firings this week",
        snapshot_date=None,
        evidence=Evidence(
            snapshot_ids=("run-a", "run-b"),
            snapshot_dates=(),
            metrics={"counts.batchesActive": 51, "counts.firingsScheduled": 4},
            rule_ids=("ops.firing_backlog",),
        ),
        confidence=0.82,
        body=body or {},
    )


@pytest.fixture
def studio(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Studio]:
    started: list[DemoDevices] = []
    people: dict[str, TestPerson] = {}

    async def prepare(brain: Brain) -> None:
        today = datetime.now(brain.settings.zone).date()
        runs = await seed_snapshots(brain.state_store, tenant_id=brain.tenant_id, last_day=today, days=60)
        await brain.state_store.record_close(
            DailyClose(
                tenant_id=brain.tenant_id,
                close_date=today - timedelta(days=1),
                kind=CloseKind.ON_TIME,
                run_id=runs[-2].id,
                closed_at=datetime.now(UTC),
                reason="read 5 min after midnight",
            )
        )
        sink = brain.drafts.sink("ops")
        await sink.add(
            _finding("51 active batches but only 4 firings scheduled", DraftKind.OPS, Severity.HIGH)
        )
        await sink.add(_finding("Blocked tickets doubled since Monday", DraftKind.OPS, Severity.MEDIUM))
        started.append(await aim_connectors_at_fakes(brain))
        people["ada"] = await enrol_person(brain, "Ada", owner=True)
        people["grace"] = await enrol_person(brain, "Grace", by=people["ada"].principal)

    try:
        for server in start_server(database_url, tmp_path, prepare, monkeypatch):
            yield Studio(server=server, ada=people["ada"], grace=people["grace"])
    finally:
        for devices in started:
            devices.stop()


def signed_in(browser: Any, studio: Studio, who: TestPerson, *, width: int = 1280, height: int = 900) -> Any:
    context = browser.new_context(viewport={"width": width, "height": height})
    context.add_cookies([{"name": SESSION_COOKIE, "value": who.session, "url": studio.server.base_url}])
    return context


def test_today_leads_with_the_summary_and_a_proposal_is_approved_from_needs_attention(
    studio: Studio, browser: Any
) -> None:
    gateway = studio.server.brain.gateway
    assert gateway is not None
    theirs = studio.server.call(lambda: propose_note(gateway, studio.grace.principal, "Shelf 3 cracked"))
    context = signed_in(browser, studio, studio.ada)
    page = context.new_page()
    page.goto(studio.server.base_url + "/")

    summary = page.get_by_test_id("today-summary").inner_text()
    assert "since yesterday:" in summary or summary == "No change since yesterday."
    attention = page.get_by_test_id("needs-attention")
    assert "Approve or reject: studio.note.append, requested by" in attention.inner_text()
    assert "2 ops drafts waiting" in attention.inner_text()
    screenshot(page, "14-today-needs-attention")

    attention.get_by_label("Why you approve").fill("Saw the crack on shelf 3 myself")
    attention.get_by_role("button", name="Approve").click()
    assert page.url.split("?")[0].endswith(f"/proposals/{theirs.id}")
    assert page.get_by_test_id("proposal-status").inner_text() == "approved"
    assert "more approval" not in page.get_by_test_id("approvals-badge").inner_text()
    page.goto(studio.server.base_url + "/")
    assert "Approved but not executed" in page.get_by_test_id("needs-attention").inner_text()
    assert page.get_by_role("button", name="Approve").count() == 0
    context.close()


def test_a_draft_is_submitted_and_another_dismissed_from_the_drafts_page(
    studio: Studio, browser: Any
) -> None:
    context = signed_in(browser, studio, studio.ada)
    page = context.new_page()
    page.goto(studio.server.base_url + "/drafts")
    assert page.get_by_test_id("drafts-count").inner_text().startswith("2 waiting")
    screenshot(page, "14-drafts")

    first = page.locator("li.draft").filter(has_text="51 active batches")
    first.get_by_role("button", name="Submit for approval").click()
    assert "/proposals/" in page.url
    assert page.get_by_test_id("proposal-status").inner_text() == "pending approval"
    assert "Draft submitted" in page.content()

    page.goto(studio.server.base_url + "/drafts")
    other = page.locator("li.draft").filter(has_text="Blocked tickets")
    other.get_by_label("Reason to dismiss").fill("Already handled at the Monday meeting")
    other.get_by_role("button", name="Dismiss").click()
    # the click posts a form and is redirected: read the page once that navigation has finished (a faster
    # browser asked mid-navigation got an empty document)
    page.wait_for_url("**/drafts?done=dismissed")
    page.wait_for_load_state()
    assert "Draft dismissed" in page.content()
    assert page.get_by_test_id("drafts-count").inner_text().startswith("0 waiting")
    screenshot(page, "14-drafts-after")
    context.close()


def test_the_kill_switch_banner_shows_on_every_page_while_it_is_on(studio: Studio, browser: Any) -> None:
    gateway = studio.server.brain.gateway
    assert gateway is not None
    studio.server.call(
        lambda: gateway.set_kill_switch(studio.ada.principal, enabled=True, rationale="water on the floor")
    )
    context = signed_in(browser, studio, studio.grace)
    page = context.new_page()
    for path in PAGES:
        page.goto(studio.server.base_url + path)
        banner = page.get_by_test_id("kill-switch-banner")
        assert banner.is_visible(), path
        assert "kill switch is ON" in banner.inner_text()
    page.goto(studio.server.base_url + "/")
    screenshot(page, "14-kill-switch-banner")
    context.close()


def test_trends_draws_charts_with_dated_axes(studio: Studio, browser: Any) -> None:
    context = signed_in(browser, studio, studio.ada)
    page = context.new_page()
    page.goto(studio.server.base_url + "/trends?days=30")
    charts = page.locator("svg.chart")
    assert charts.count() == 10
    first = charts.first
    box = first.bounding_box()
    assert box is not None
    assert box["width"] > 300
    x_ticks = first.locator("text.tick.x").all_text_contents()
    assert len(x_ticks) >= 4
    today = datetime.now(studio.server.brain.settings.zone).date()
    assert today.strftime("%b %d").replace(" 0", " ") in x_ticks
    assert len(first.locator("text.tick.y").all_text_contents()) >= 3
    assert first.locator("polyline.line").count() >= 1
    screenshot(page, "14-trends")
    page.goto(studio.server.base_url + "/trends?days=365&metric=counts.batchesClosed")
    assert page.locator("svg.chart").count() == 1
    context.close()


def test_a_device_action_is_chosen_by_name_and_read_only_hides_execute(studio: Studio, browser: Any) -> None:
    context = signed_in(browser, studio, studio.grace)
    page = context.new_page()
    page.goto(studio.server.base_url + "/proposals/new")
    page.get_by_test_id("device-picker").select_option(label="Kiln Room Outlet (Kiln Room) — now on")
    page.get_by_label("Turn it").select_option("off")
    page.get_by_label("Why?").fill("Kiln has cooled; cut the outlet for the weekend")
    page.get_by_role("button", name="Propose").click()
    assert "Kiln Room Outlet: on → off, drawing 1,520 W" in page.get_by_test_id("effects").inner_text()
    assert "read-only" in page.get_by_test_id("execute-blocked").inner_text()
    assert page.get_by_role("button", name="Execute").count() == 0
    screenshot(page, "14-device-proposal")
    context.close()


def _no_horizontal_overflow(page: Any, width: int) -> bool:
    scroll: int = page.evaluate("document.documentElement.scrollWidth")
    return scroll <= width + 1


def test_every_page_is_usable_on_a_375_px_phone_and_the_audit_table_fits_1400_px(
    studio: Studio, browser: Any
) -> None:
    gateway = studio.server.brain.gateway
    assert gateway is not None
    proposal = studio.server.call(lambda: propose_note(gateway, studio.grace.principal, "x" * 300))
    phone = signed_in(browser, studio, studio.ada, width=375, height=812)
    page = phone.new_page()
    for path in (*PAGES, f"/proposals/{proposal.id}"):
        page.goto(studio.server.base_url + path)
        assert _no_horizontal_overflow(page, 375), f"{path} scrolls sideways on a phone"
        assert page.locator("nav.main").is_visible(), path
    for path, name in (("/", "today"), ("/drafts", "drafts"), ("/audit", "audit"), ("/trends", "trends")):
        page.goto(studio.server.base_url + path)
        screenshot(page, f"14-phone-{name}")
        page.screenshot(path=str(screenshot(page, f"14-phone-{name}")).replace(".png", "-top.png"))
    phone.close()

    wide = signed_in(browser, studio, studio.ada, width=1400, height=900)
    page = wide.new_page()
    page.goto(studio.server.base_url + "/audit?rows=all")
    assert _no_horizontal_overflow(page, 1400)
    table = page.locator("#audit-results table")
    box = table.bounding_box()
    assert box is not None
    assert box["x"] + box["width"] <= 1400
    screenshot(page, "14-audit-1400")
    wide.close()
