"""The morning cockpit over HTTP (issue 14): Today's summary and Needs attention, the kill-switch banner on
every page, the Drafts page (submit, dismiss, refusals), the Trends page's charts, the Audit page's
people-first view, verify message and meaningful "Why". Real PostgreSQL, real persons (passkeys)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from studio_brain.bootstrap import Brain, DatabaseTarget, open_brain
from studio_brain.domain.audit import AuditQuery
from studio_brain.domain.drafts import DraftKind, Evidence, Finding, Severity
from studio_brain.domain.proposals import Status
from studio_brain.domain.state import CloseKind, DailyClose
from studio_brain.settings import load_settings
from tests.e2e.seed import propose_note, seed_snapshots, snapshot_document, snapshot_run
from tests.fixtures.identity import TestPerson, enrol_person, session_cookie

pytestmark = pytest.mark.postgres

BASE = "http://127.0.0.1:8787"


@pytest.fixture
async def brain(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Brain]:
    monkeypatch.setenv("STUDIO_BRAIN_DATABASE_URL", database_url)
    monkeypatch.setenv("STUDIO_BRAIN_HOME", str(tmp_path))
    monkeypatch.setenv("STUDIO_BRAIN_COCKPIT_URL", BASE)
    async with open_brain(load_settings(), target=DatabaseTarget(url=database_url, embedded=None)) as opened:
        yield opened


@pytest.fixture
async def client(brain: Brain) -> AsyncIterator[httpx.AsyncClient]:
    from studio_brain.web.app import create_app

    app = create_app(brain=brain)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        yield http


@pytest.fixture
async def ada(brain: Brain) -> TestPerson:
    return await enrol_person(brain, "Ada", owner=True)


@pytest.fixture
async def grace(brain: Brain, ada: TestPerson) -> TestPerson:
    return await enrol_person(brain, "Grace", by=ada.principal)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no form token"
    return match.group(1)


async def post(client: httpx.AsyncClient, who: TestPerson, path: str, form: dict[str, str]) -> httpx.Response:
    page = await client.get("/", headers=session_cookie(who.session))
    return await client.post(
        path,
        data={"csrf_token": csrf_of(page.text), **form},
        headers={**session_cookie(who.session), "origin": BASE},
    )


def finding(title: str, *, kind: DraftKind = DraftKind.OPS, severity: Severity = Severity.MEDIUM) -> Finding:
    return Finding(
        kind=kind,
        rule_id=f"ops.test_{abs(hash(title)) % 10_000}",
        subject=title,
        severity=severity,
        title=title,
        rationale=f"{title}: seen in the last snapshots",
        recommendation="Check the kiln schedule",
        snapshot_date=None,
        evidence=Evidence(
            snapshot_ids=("run-1",), snapshot_dates=(), metrics={"counts.batchesActive": 51}, rule_ids=()
        ),
        confidence=0.8,
    )


async def add_draft(brain: Brain, title: str, **kw: object) -> None:
    await brain.drafts.sink("ops").add(finding(title, **kw))  # type: ignore[arg-type]


def today_of(brain: Brain) -> datetime:
    return datetime.now(UTC).astimezone(brain.settings.zone)


async def test_today_leads_with_the_changes_since_yesterdays_close_and_one_needs_attention_list(
    client: httpx.AsyncClient, brain: Brain, ada: TestPerson, grace: TestPerson
) -> None:
    day = today_of(brain).date()
    runs = await seed_snapshots(brain.state_store, tenant_id=brain.tenant_id, last_day=day, days=3)
    await brain.state_store.record_close(
        DailyClose(
            tenant_id=brain.tenant_id,
            close_date=day - timedelta(days=1),
            kind=CloseKind.LATE,
            run_id=runs[1].id,
            closed_at=datetime.now(UTC),
            reason="test",
        )
    )
    theirs = await propose_note(brain.gateway, grace.principal, "Shelf 3 cracked")
    mine = await propose_note(brain.gateway, ada.principal, "Order more cones")
    await add_draft(brain, "51 active batches but only 4 firings scheduled")

    html = (await client.get("/", headers=session_cookie(ada.session))).text

    summary = re.search(r'data-testid="today-summary">([^<]*)<', html)
    assert summary is not None
    before, after = runs[1].document, runs[2].document
    moved = [k for k in ("batchesActive", "batchesClosed") if before["counts"][k] != after["counts"][k]]
    assert re.match(r"\d+ changes? since yesterday: ", summary.group(1)), summary.group(1)
    assert (
        f"closed batches {before['counts']['batchesClosed']} → {after['counts']['batchesClosed']}"
        in summary.group(1)
    )
    assert moved
    assert "compared with the close of" in html
    assert "(late)" in html
    attention = html[html.index('data-testid="needs-attention"') :]
    assert f"/proposals/{theirs.id}/approve" in attention, "Grace's proposal waits for Ada"
    assert f"/proposals/{mine.id}/approve" not in attention, "never her own"
    assert "1 proposal of yours wait" in attention
    assert "1 proposal awaiting approval by you" in html
    assert "1 ops draft waiting" in attention
    assert "Audit: Chain intact" in attention


async def test_approving_from_needs_attention_clears_it_and_the_badge(
    client: httpx.AsyncClient, brain: Brain, ada: TestPerson, grace: TestPerson
) -> None:
    theirs = await propose_note(brain.gateway, grace.principal, "Shelf 3 cracked")

    done = await post(client, ada, f"/proposals/{theirs.id}/approve", {"rationale": "seen it myself"})

    assert done.status_code == 303
    approved = await brain.gateway.get(ada.principal, theirs.id)
    assert approved.status is Status.APPROVED
    html = (await client.get("/", headers=session_cookie(ada.session))).text
    assert f"/proposals/{theirs.id}/approve" not in html
    assert "awaiting approval by you" not in html
    assert "Approved but not executed: studio.note.append" in html
    detail = (await client.get(f"/proposals/{theirs.id}", headers=session_cookie(ada.session))).text
    assert "needs 1 approval" not in detail.lower()


async def test_every_page_shows_the_kill_switch_banner_while_it_is_on(
    client: httpx.AsyncClient, brain: Brain, ada: TestPerson
) -> None:
    for path in ("/", "/drafts", "/trends", "/audit", "/proposals"):
        html = (await client.get(path, headers=session_cookie(ada.session))).text
        assert 'data-testid="kill-switch-banner"' not in html, path
    await brain.gateway.set_kill_switch(ada.principal, enabled=True, rationale="kiln fault")
    for path in ("/", "/drafts", "/trends", "/audit", "/proposals", "/connectors", "/policy"):
        html = (await client.get(path, headers=session_cookie(ada.session))).text
        assert 'data-testid="kill-switch-banner"' in html, path
        assert "The kill switch is ON" in html


async def test_a_draft_is_submitted_as_a_proposal_and_another_dismissed_with_an_audited_reason(
    client: httpx.AsyncClient, brain: Brain, ada: TestPerson
) -> None:
    await add_draft(brain, "51 active batches but only 4 firings scheduled", severity=Severity.HIGH)
    await add_draft(brain, "Unsettled payments rising")
    page = (await client.get("/drafts", headers=session_cookie(ada.session))).text
    ids = re.findall(r'data-draft="([^"]+)"', page)
    assert len(ids) == 2
    assert "counts.batchesActive" in page, "the evidence is shown"

    submitted = await post(client, ada, f"/drafts/{ids[0]}/submit", {})
    assert submitted.status_code == 303
    proposal_id = submitted.headers["location"].split("/proposals/")[1].split("?")[0]
    proposal = await brain.gateway.get(ada.principal, proposal_id)
    assert proposal.status is Status.PENDING_APPROVAL
    assert proposal.capability_id == "studio.note.append"
    assert ids[0] in proposal.input["text"]

    refused = await post(client, ada, f"/drafts/{ids[1]}/dismiss", {"reason": "  "})
    assert refused.status_code == 400
    assert "needs a reason" in refused.text
    dismissed = await post(client, ada, f"/drafts/{ids[1]}/dismiss", {"reason": "already handled by phone"})
    assert dismissed.status_code == 303
    again = await post(client, ada, f"/drafts/{ids[1]}/submit", {})
    assert again.status_code == 409

    after = (await client.get("/drafts", headers=session_cookie(ada.session))).text
    assert 'data-draft="' not in after, "nothing waits any more"
    events = (await brain.events.query(brain.tenant_id, AuditQuery(action_prefix="swarm.draft"))).events
    assert [(e.action, e.actor_id) for e in events] == [
        ("swarm.draft.submitted", ada.principal.actor_id),
        ("swarm.draft.dismissed", ada.principal.actor_id),
    ]
    assert events[1].rationale == "already handled by phone"


async def test_trends_draws_each_metric_with_dated_axes_marks_anomalies_and_leaves_unclosed_days_as_gaps(
    client: httpx.AsyncClient, brain: Brain, ada: TestPerson
) -> None:
    day = today_of(brain).date()
    await seed_snapshots(brain.state_store, tenant_id=brain.tenant_id, last_day=day, days=40)
    spike_day = day - timedelta(days=2)
    spiked = snapshot_document(spike_day, 38, tenant_id=brain.tenant_id)
    spiked["counts"]["reportsOpen"] = 90
    spike = snapshot_run(
        spike_day,
        38,
        tenant_id=brain.tenant_id,
        document=spiked,
        generated_at=datetime.combine(spike_day, datetime.max.time(), tzinfo=UTC) - timedelta(hours=1),
    )
    await brain.state_store.save_run(
        spike.__class__(**{**{f: getattr(spike, f) for f in spike.__slots__}, "id": "spike"})
    )
    gap = day - timedelta(days=5)
    await brain.state_store.record_close(
        DailyClose(
            tenant_id=brain.tenant_id,
            close_date=gap,
            kind=CloseKind.NOT_CLOSED,
            run_id=None,
            closed_at=datetime.now(UTC),
            reason="test",
        )
    )

    html = (await client.get("/trends?days=30", headers=session_cookie(ada.session))).text

    assert html.count('<svg class="chart"') == 10
    assert "cdn" not in html.lower()
    first_day = (day - timedelta(days=29)).strftime("%b %d").replace(" 0", " ")
    assert f">{first_day}</text>" in html, "dates on the x axis"
    assert 'class="tick y"' in html
    reports = html[html.index('data-metric="counts.reportsOpen"') :]
    reports = reports[: reports.index("</figure>")]
    assert f'data-day="{spike_day.isoformat()}"' in reports, "the spike is marked"
    assert f"Not closed: {gap.isoformat()}" in html
    one = (
        await client.get("/trends?days=365&metric=counts.reportsOpen", headers=session_cookie(ada.session))
    ).text
    assert one.count('<svg class="chart"') == 1


async def test_the_audit_page_shows_people_first_says_what_verify_found_and_why_an_execution_ran(
    client: httpx.AsyncClient, brain: Brain, ada: TestPerson, grace: TestPerson
) -> None:
    await brain.state.compute("demo")  # a system row
    created = await propose_note(brain.gateway, grace.principal, "Kiln 2 shelf cracked")
    await brain.gateway.approve(ada.principal, created.id, "checked it")
    await brain.gateway.execute(grace.principal, created.id)

    people = (await client.get("/audit", headers=session_cookie(ada.session))).text
    assert "studio_state.computed" not in people
    assert "capability.proposal.executed" in people
    assert "Approved because:" in people
    assert "Result:" in people
    everything = (await client.get("/audit?rows=all", headers=session_cookie(ada.session))).text
    assert "studio_state.computed" in everything

    verified = await post(client, ada, "/audit/verify", {})
    assert verified.status_code == 303
    shown = (await client.get(verified.headers["location"], headers=session_cookie(ada.session))).text
    assert "Whole chain verified just now: Chain intact up to seq" in shown


async def test_a_device_action_is_proposed_by_name_shows_its_effect_in_words_and_no_execute_on_read_only(
    client: httpx.AsyncClient, brain: Brain, ada: TestPerson, grace: TestPerson
) -> None:
    from tests.e2e.seed import aim_connectors_at_fakes

    devices = await aim_connectors_at_fakes(brain)
    try:
        form = (await client.get("/proposals/new", headers=session_cookie(grace.session))).text
        assert "Kiln Room Outlet (Kiln Room) — now on" in form, "a picker by name and room, not an id box"

        made = await post(
            client,
            grace,
            "/proposals/new",
            {
                "capability": "hubitat.switch.set",
                "device": "21",
                "command": "off",
                "rationale": "kiln cooling",
            },
        )
        assert made.status_code == 303, made.text
        proposal_id = made.headers["location"].split("/proposals/")[1].split("?")[0]
        await brain.gateway.approve(ada.principal, proposal_id, "kiln is cool, safe to cut power")

        page = (await client.get(f"/proposals/{proposal_id}", headers=session_cookie(ada.session))).text
        assert "Kiln Room Outlet: on → off, drawing 1,520 W" in page
        assert "Kiln Room Outlet (device 21, Kiln Room)" in page
        assert 'data-testid="execute-blocked"' in page
        assert "read-only" in page
        assert f'action="/proposals/{proposal_id}/execute' not in page

        typo = await post(
            client,
            grace,
            "/proposals/new",
            {
                "capability": "hubitat.switch.set",
                "device": "999",
                "command": "off",
                "rationale": "kiln cooling",
            },
        )
        assert typo.status_code == 400
        assert "choose a device from the list" in typo.text
    finally:
        devices.stop()


async def test_an_executed_note_shows_its_text_as_the_result(
    client: httpx.AsyncClient, brain: Brain, ada: TestPerson, grace: TestPerson
) -> None:
    created = await propose_note(brain.gateway, grace.principal, "Kiln 2 shelf cracked")
    await brain.gateway.approve(ada.principal, created.id, "checked it")
    await brain.gateway.execute(grace.principal, created.id)

    page = (await client.get(f"/proposals/{created.id}", headers=session_cookie(ada.session))).text

    shown = re.search(r'data-testid="result-text">([^<]*)<', page)
    assert shown is not None
    assert "Kiln 2 shelf cracked" in shown.group(1)


async def test_marketing_copy_moves_through_its_review_buttons_and_is_not_submitted(
    client: httpx.AsyncClient, brain: Brain, ada: TestPerson
) -> None:
    assert brain.drafts is not None
    copy = Finding(
        kind=DraftKind.MARKETING,
        rule_id="marketing.kiln_space",
        subject="kiln-space",
        severity=Severity.INFO,
        title="Kiln space this week",
        rationale="Two firings have room",
        recommendation="Post on the studio page",
        snapshot_date=None,
        evidence=Evidence(snapshot_ids=("run-1",), snapshot_dates=(), metrics={}, rule_ids=()),
        confidence=0.7,
        body={"channel": "instagram", "copy": "Room in Thursday's glaze firing!", "templateVersion": "1"},
    )
    await brain.drafts.sink("marketing").add(copy)
    page = (await client.get("/drafts?kind=marketing", headers=session_cookie(ada.session))).text
    [draft_id] = re.findall(r'data-draft="([^"]+)"', page)
    assert "Room in Thursday&#39;s glaze firing!" in page or "Room in Thursday's glaze firing!" in page
    assert "Send for review" in page
    assert "Submit for approval" not in page

    refused = await post(client, ada, f"/drafts/{draft_id}/submit", {})
    assert refused.status_code == 400
    step = await post(
        client, ada, f"/drafts/{draft_id}/review", {"to_status": "needs_review", "kind": "marketing"}
    )
    assert step.status_code == 303
    after = (await client.get("/drafts?kind=marketing", headers=session_cookie(ada.session))).text
    assert "needs review" in after
    assert "Approve for publish" in after
    assert brain.events is not None
    reviewed = (await brain.events.query(brain.tenant_id, AuditQuery(action_prefix="marketing.draft"))).events
    assert [e.metadata.get("to") for e in reviewed] == ["needs_review"]


async def test_today_does_not_wait_for_slow_devices_and_says_where_to_see_them(
    client: httpx.AsyncClient, brain: Brain, ada: TestPerson
) -> None:
    from tests.e2e.seed import aim_connectors_at_fakes

    devices = await aim_connectors_at_fakes(brain)
    try:
        assert brain.connector_health is not None
        await brain.connector_health.check_all()  # the stored health Today shows
        devices.hubitat.inject_latency(6.0)  # the fake hub answers over real HTTP, slowly

        html = (await client.get("/", headers=session_cookie(ada.session))).text

        # the page came back without the hub's answer (no device items), saying where to find them
        assert "Device readings took longer than 3 s: see Connectors" in html
        assert "Storage Room Contact" not in html
    finally:
        devices.hubitat.inject_latency(0.0)
        devices.stop()
