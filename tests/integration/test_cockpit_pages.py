"""The cockpit's pages over HTTP: sign-in gate, Today's numbers, cross-site form protection, static files."""

from __future__ import annotations

import re
import weakref
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from studio_brain.adapters.clock import SystemClock
from studio_brain.bootstrap import Brain, DatabaseTarget, open_brain
from studio_brain.domain.audit import AuditQuery
from studio_brain.domain.identity import Principal
from studio_brain.domain.state import Completeness
from studio_brain.services.identity import IdentityService
from studio_brain.settings import load_settings
from studio_brain.web import pages_audit
from studio_brain.web.app import create_app
from studio_brain.web.auth import SESSION_COOKIE
from studio_brain.web.pages_view import metric_values
from tests.e2e.seed import (
    aim_connectors_at_fakes,
    audit_draft,
    propose_note,
    seed_snapshots,
    snapshot_document,
    snapshot_run,
)
from tests.fakes import FakeClock
from tests.fixtures.auth import TokenMinter
from tests.fixtures.identity import TestPerson, enrol_person

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)  # 10:00 in Phoenix
TODAY = date(2026, 11, 25)
BASE = "http://localhost:8787"  # an allowed Host (see the Host allow-list in web/middleware.py)


@pytest.fixture
async def brain(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Brain]:
    monkeypatch.setenv("STUDIO_BRAIN_DATABASE_URL", database_url)
    monkeypatch.setenv("STUDIO_BRAIN_HOME", str(tmp_path))
    monkeypatch.setenv("STUDIO_BRAIN_ADMIN_TOKEN", "test-admin-token-0123456789")
    async with open_brain(load_settings(), target=DatabaseTarget(url=database_url, embedded=None)) as opened:
        yield replace(opened, clock=FakeClock(NOW))


@pytest.fixture
async def client(brain: Brain) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(brain=brain)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        yield http


#: the people each test's brain has enrolled (real staff accounts with passkeys), by first name
_PEOPLE: weakref.WeakKeyDictionary[IdentityService, dict[str, TestPerson]] = weakref.WeakKeyDictionary()


async def person(brain: Brain, name: str, *, admin: bool = False) -> TestPerson:
    """A real staff person (``admin``: an owner), enrolled once per test through the passkey ceremony."""
    known = _PEOPLE.setdefault(brain.identity, {})
    if name not in known:
        known[name] = await enrol_person(brain, name.title(), owner=admin)
    return known[name]


async def staff(brain: Brain, name: str, *, admin: bool = False) -> Principal:
    return (await person(brain, name, admin=admin)).principal


async def sign_in(client: httpx.AsyncClient, name: str, *, admin: bool = False) -> TestPerson:
    """Sign the client in as ``name``: the cookie of that person's server-side passkey session."""
    brain: Brain = client._transport.app.state.brain  # type: ignore[attr-defined]
    who = await person(brain, name, admin=admin)
    client.cookies.set(SESSION_COOKIE, who.session)
    return who


async def head_seq(brain: Brain) -> int:
    """The audit log's last seq (signing a person in writes identity.* rows before a test's own)."""
    head = await brain.events.head(brain.tenant_id)
    return 0 if head is None else head.seq


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', html)
    assert match, "page has no form token"
    return match.group(1)


async def test_a_visitor_without_a_session_gets_a_friendly_sign_in_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/html")
    assert "Sign in with your passkey" in response.text
    assert "studio-brain login-link" in response.text  # the break-glass way in, on the studio machine


async def test_a_forged_session_cookie_is_told_to_sign_in_again(client: httpx.AsyncClient) -> None:
    client.cookies.set("studio_brain_session", "forged.cookie")
    response = await client.get("/proposals")
    assert response.status_code == 401
    assert "Please sign in again" in response.text


async def test_a_signed_in_person_without_the_staff_role_is_refused(
    api_client: httpx.AsyncClient, tokens: TokenMinter
) -> None:
    # every staff account is staff; a Portal member's Firebase token is the signed-in non-staff person
    # (on a brain with the real clock: the token's times are checked against it)
    response = await api_client.get(
        "/", headers={**tokens.headers("member-1", roles=["member"]), "host": "localhost"}
    )
    assert response.status_code == 403
    assert "Staff only" in response.text


async def test_today_without_snapshots_says_none_was_computed_yet(client: httpx.AsyncClient) -> None:
    await sign_in(client, "ada")
    response = await client.get("/")
    assert response.status_code == 200
    assert "No snapshot of the studio has been computed yet" in response.text


async def test_today_shows_every_metric_with_its_change_from_yesterday(
    client: httpx.AsyncClient, brain: Brain
) -> None:
    await seed_snapshots(brain.state_store, tenant_id=brain.tenant_id, last_day=TODAY, days=30)
    await sign_in(client, "ada")
    html = (await client.get("/")).text
    today = snapshot_document(TODAY, 30, tenant_id=brain.tenant_id)
    yesterday = snapshot_document(TODAY - timedelta(days=1), 29, tenant_id=brain.tenant_id)
    for section in ("counts", "ops", "finance"):
        for key, value in today[section].items():
            shown = re.search(rf'data-testid="value-{section}.{key}">([^<]*)<', html)
            assert shown is not None, f"{section}.{key} missing"
            assert shown.group(1) == f"{value:,}"
            delta = value - yesterday[section][key]
            change = re.search(rf'data-testid="change-{section}.{key}">.*?</span>([^<]*)</div>', html, re.S)
            assert change is not None
            expected = "no change" if delta == 0 else ("+" if delta > 0 else "−") + str(abs(delta))
            assert change.group(1).strip() == expected
    assert html.count('<svg class="spark"') == 10
    assert "Complete" in html
    assert "Fresh" in html


async def test_today_flags_a_partial_stale_snapshot_and_its_own_warnings(
    client: httpx.AsyncClient, brain: Brain
) -> None:
    day = TODAY - timedelta(days=3)
    document = snapshot_document(day, 1, tenant_id=brain.tenant_id)
    document["diagnostics"] = {
        "warnings": [{"code": "STRIPE_SKIPPED", "message": "Stripe figures were not read"}]
    }
    await brain.state_store.save_run(
        snapshot_run(day, 1, tenant_id=brain.tenant_id, completeness=Completeness.FULL, document=document)
    )
    await sign_in(client, "ada")
    html = (await client.get("/")).text
    assert "Stale" in html
    assert "Stripe figures were not read" in html
    assert f"There is no snapshot for {TODAY.isoformat()} yet" in html
    assert "changes cannot be shown" in html


async def test_a_form_post_without_the_session_form_token_is_refused(client: httpx.AsyncClient) -> None:
    await sign_in(client, "ada", admin=True)
    response = await client.post(
        "/policy/kill-switch",
        data={"enabled": "on", "rationale": "storm", "confirm": "yes"},
        headers={"origin": BASE},
    )
    assert response.status_code == 403
    assert "reload the page" in response.text


async def test_a_form_post_from_another_site_is_refused_even_with_a_token(client: httpx.AsyncClient) -> None:
    await sign_in(client, "ada", admin=True)
    token = csrf_of((await client.get("/")).text)
    response = await client.post(
        "/policy/kill-switch",
        data={"enabled": "on", "rationale": "storm", "confirm": "yes", "csrf_token": token},
        headers={"origin": "http://evil.example"},
    )
    assert response.status_code == 403


async def test_pages_are_not_cached_and_send_a_real_origin_on_posts(client: httpx.AsyncClient) -> None:
    await sign_in(client, "ada")
    response = await client.get("/")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["x-frame-options"] == "DENY"


async def test_static_files_serve_the_vendored_htmx_and_nothing_outside_their_folder(
    client: httpx.AsyncClient,
) -> None:
    htmx = await client.get("/static/vendor/htmx.min.js")
    assert htmx.status_code == 200
    assert "htmx" in htmx.text[:200]
    assert (await client.get("/static/cockpit.css")).status_code == 200
    assert (await client.get("/static/../pages.py")).status_code == 404
    assert (await client.get("/static/%2e%2e/pages.py")).status_code == 404


async def test_audit_pages_newest_first_and_walks_older_and_newer(
    client: httpx.AsyncClient, brain: Brain
) -> None:
    await sign_in(client, "ada")  # enrolling her writes audit rows first (identity.*)
    base = await head_seq(brain)
    await brain.events.append_many([audit_draft(brain.tenant_id, n) for n in range(1, 121)])
    # by default the page shows people and decisions: the 120 system rows are not there
    people = [int(s) for s in re.findall(r'data-seq="(\d+)"', (await client.get("/audit")).text)]
    assert people
    assert all(seq <= base for seq in people)
    first = (await client.get("/audit", params={"rows": "all"})).text
    seqs = [int(s) for s in re.findall(r'data-seq="(\d+)"', first)]
    assert seqs == list(range(base + 120, base + 70, -1))
    older = re.search(rf'href="(/audit\?rows=all&amp;before={base + 71})"', first)
    assert older is not None  # the pager keeps "show system rows too"
    second = (await client.get(older.group(1).replace("&amp;", "&"))).text
    assert [int(s) for s in re.findall(r'data-seq="(\d+)"', second)] == list(range(base + 70, base + 20, -1))
    newer = re.search(rf'href="(/audit\?rows=all&amp;after={base + 70})"', second)
    assert newer is not None
    back = (await client.get(newer.group(1).replace("&amp;", "&"))).text
    assert [int(s) for s in re.findall(r'data-seq="(\d+)"', back)] == list(range(base + 120, base + 70, -1))


async def test_audit_filters_by_action_and_actor_and_answers_htmx_with_the_table_only(
    client: httpx.AsyncClient, brain: Brain
) -> None:
    await brain.events.append_many(
        [audit_draft(brain.tenant_id, n) for n in range(1, 4)]
        + [audit_draft(brain.tenant_id, 10, action="capability.proposal.approved", actor_id="grace")]
    )
    await sign_in(client, "ada")
    # the seeded rows are written by the system: they are listed with "show system rows too"
    people_only = await client.get(
        "/audit", params={"action": "capability.proposal", "actor": "grace"}, headers={"hx-request": "true"}
    )
    assert re.findall(r'data-seq="(\d+)"', people_only.text) == []
    response = await client.get(
        "/audit",
        params={"action": "capability.proposal", "actor": "grace", "rows": "all"},
        headers={"hx-request": "true"},
    )
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<section id="audit-results"')
    assert re.findall(r'data-seq="(\d+)"', response.text) == ["4"]
    none = await client.get("/audit", params={"actor": "nobody"})
    assert "No audit events match these filters." in none.text


# --- proposals and policy ------------------------------------------------------------------------


async def post_form(client: httpx.AsyncClient, path: str, page_path: str, **fields: str) -> httpx.Response:
    """Post a form the way the browser does from ``page_path``: same Origin, the page's form token."""
    token = csrf_of((await client.get(page_path)).text)
    return await client.post(path, data={**fields, "csrf_token": token}, headers={"origin": BASE})


async def test_the_queue_lists_pending_proposals_and_filters_by_status_capability_and_risk(
    client: httpx.AsyncClient, brain: Brain
) -> None:
    proposal = await propose_note(brain.gateway, (await staff(brain, "ada")))
    await sign_in(client, "grace")
    html = (await client.get("/proposals")).text
    assert f'data-proposal="{proposal.id}"' in html
    assert "pending approval" in html
    for query, shown in (
        ({"status": "pending_approval"}, True),
        ({"status": "executed"}, False),
        ({"capability": "studio.note.append"}, True),
        ({"capability": "hubitat.switch.set"}, False),
        ({"risk": "low"}, True),
        ({"risk": "critical"}, False),
    ):
        page = (await client.get("/proposals", params=query)).text
        assert (f'data-proposal="{proposal.id}"' in page) is shown, query
    assert "1 proposal awaiting approval" in (await client.get("/")).text


async def test_the_detail_page_shows_input_effects_hashes_and_the_audit_timeline(
    client: httpx.AsyncClient, brain: Brain
) -> None:
    proposal = await propose_note(brain.gateway, (await staff(brain, "ada")))
    await sign_in(client, "grace")
    html = (await client.get(f"/proposals/{proposal.id}")).text
    assert "Kiln 2 shelf cracked" in html
    assert "one staff note appended to the local note store" in html
    assert proposal.input_hash in html
    assert brain.gateway.binding(proposal) in html  # keyed with the brain's key (issue 12)
    assert 'data-action="capability.proposal.created"' in html
    assert "No approvals yet." in html


async def test_the_requester_cannot_approve_their_own_proposal_and_is_told_why(
    client: httpx.AsyncClient, brain: Brain
) -> None:
    proposal = await propose_note(brain.gateway, (await staff(brain, "ada")))
    await sign_in(client, "ada")
    page = f"/proposals/{proposal.id}"
    offered = (await client.get(page)).text
    assert "another staff member must approve it" in offered
    assert 'action="/proposals/' + proposal.id + '/approve"' not in offered
    # a hand-made post is still refused by the gateway, audited, and explained
    response = await post_form(client, f"{page}/approve", page, rationale="looks fine to me, go ahead")
    assert response.status_code == 409
    assert "Whoever asked for this cannot also approve it" in response.text
    assert "SELF_APPROVAL_FORBIDDEN" in response.text
    refused = await brain.events.query(
        brain.tenant_id, AuditQuery(action_prefix="capability.decision.refused")
    )
    assert [e.metadata["decision"]["reasonCode"] for e in refused.events] == ["SELF_APPROVAL_FORBIDDEN"]
    timeline = (await client.get(page)).text
    assert "Refused: Whoever asked for this cannot also approve it" in timeline


async def test_a_second_staff_member_approves_and_the_execution_needs_a_confirmation(
    client: httpx.AsyncClient, brain: Brain
) -> None:
    proposal = await propose_note(brain.gateway, (await staff(brain, "ada")))
    await sign_in(client, "grace")
    page = f"/proposals/{proposal.id}"
    approved = await post_form(client, f"{page}/approve", page, rationale="checked the kiln log, agreed")
    assert approved.status_code == 303
    assert approved.headers["location"] == f"{page}?done=approved"
    html = (await client.get(approved.headers["location"])).text
    assert "Approval recorded." in html
    assert "checked the kiln log, agreed" in html

    unconfirmed = await post_form(client, f"{page}/execute", page)
    assert unconfirmed.status_code == 400
    assert "Tick the confirmation box" in unconfirmed.text

    executed = await post_form(client, f"{page}/execute", page, confirm="yes")
    assert executed.status_code == 303
    done = (await client.get(executed.headers["location"])).text
    assert 'data-testid="proposal-status">executed<' in done
    assert 'data-action="capability.proposal.executed"' in done


async def test_execution_under_the_kill_switch_is_refused_in_plain_words(
    client: httpx.AsyncClient, brain: Brain
) -> None:
    proposal = await propose_note(brain.gateway, (await staff(brain, "ada")))
    await brain.gateway.approve((await staff(brain, "grace")), proposal.id, "checked and agreed, go")
    await sign_in(client, "grace")
    turned_on = await post_form(
        client, "/policy/kill-switch", "/policy", enabled="on", rationale="kiln room flooded", confirm="yes"
    )
    assert turned_on.status_code == 303
    assert "ON — nothing is executed." in (await client.get("/policy")).text
    page = f"/proposals/{proposal.id}"
    refused = await post_form(client, f"{page}/execute", page, confirm="yes")
    assert refused.status_code == 409
    assert "The kill switch is on" in refused.text


async def test_the_kill_switch_needs_its_confirmation_box(client: httpx.AsyncClient) -> None:
    await sign_in(client, "grace")
    response = await post_form(
        client, "/policy/kill-switch", "/policy", enabled="on", rationale="just testing it"
    )
    assert response.status_code == 400
    assert "Off" in response.text


async def test_staff_add_and_revoke_an_exemption_and_a_forbidden_one_is_explained(
    client: httpx.AsyncClient, brain: Brain
) -> None:
    await sign_in(client, "grace")
    added = await post_form(
        client,
        "/policy/exemptions",
        "/policy",
        capability_id="studio.note.append",
        hours="24",
        justification="notes are harmless; the morning crew adds many",
    )
    assert added.status_code == 303
    html = (await client.get("/policy")).text
    exemption_id = re.search(r'data-exemption="([^"]+)"', html)
    assert exemption_id is not None
    assert "active" in html
    revoked = await post_form(
        client,
        f"/policy/exemptions/{exemption_id.group(1)}/revoke",
        "/policy",
        reason="the crew is back to normal size",
    )
    assert revoked.status_code == 303
    assert "revoked" in (await client.get("/policy")).text
    forbidden = await post_form(
        client,
        "/policy/exemptions",
        "/policy",
        capability_id="hubitat.switch.set",
        hours="24",
        justification="power switching without approval please",
    )
    assert forbidden.status_code == 409
    assert "can never be exempt" in forbidden.text


async def test_connectors_show_health_breaker_and_device_readings(
    client: httpx.AsyncClient, brain: Brain
) -> None:
    devices = await aim_connectors_at_fakes(brain)
    try:
        await sign_in(client, "grace")
        checked = await post_form(client, "/connectors/check", "/connectors")
        assert checked.status_code == 303
        html = (await client.get(checked.headers["location"])).text
        assert "Health checked just now." in html
        for connector in ("hubitat", "roborock"):
            row = re.search(rf'<tr data-connector="{connector}">(.*?)</tr>', html, re.S)
            assert row is not None
            assert "healthy" in row.group(1)
            assert "closed" in row.group(1)
            assert "read only" in row.group(1)
        # without JavaScript the devices come with the page on request; with htmx as a fragment
        assert 'hx-get="/connectors/devices"' in html
        with_devices = (await client.get("/connectors", params={"devices": "1"})).text
        fragment = await client.get("/connectors/devices", headers={"hx-request": "true"})
        assert fragment.text.lstrip().startswith('<div id="devices">')
        for page in (with_devices, fragment.text):
            assert page.count('<section class="panel" aria-labelledby="dev-') == 2
            assert "Could not read devices" not in page
            assert "online" in page
    finally:
        devices.stop()


async def test_connectors_not_configured_say_what_to_set(client: httpx.AsyncClient) -> None:
    await sign_in(client, "grace")
    html = (await client.get("/connectors")).text
    assert "not configured" in html
    assert "STUDIO_BRAIN_HUBITAT_URL" in html


async def test_an_admin_sees_a_tenant_selector_when_several_studios_have_data(
    client: httpx.AsyncClient, brain: Brain
) -> None:
    await brain.events.append_many([audit_draft(brain.tenant_id, 1), audit_draft("studio-two", 2)])
    await sign_in(client, "grace")
    assert 'id="tenant-picker"' not in (await client.get("/audit")).text  # staff see their own studio only
    await sign_in(client, "root", admin=True)
    own = (await client.get("/audit")).text
    assert 'id="tenant-picker"' in own
    assert '<option value="studio-two">' in own
    # the seeded rows are system rows: "show system rows too" lists them
    other = (await client.get("/audit", params={"tenant": "studio-two", "rows": "all"})).text
    assert re.findall(r'data-seq="(\d+)"', other) == ["1"]
    assert "demo event 2" in other
    assert 'href="/proposals?tenant=studio-two"' in other
    # proposals and policy stay with the studio the admin is signed in for, and the page says so
    assert (
        "managed by a cockpit signed in for that studio"
        in (await client.get("/proposals", params={"tenant": "studio-two"})).text
    )
    unknown = (await client.get("/audit", params={"tenant": "nobody-here", "rows": "all"})).text
    assert "demo event 1" in unknown


# --- audit verification badge --------------------------------------------------------------------


def verification_of(html: str) -> str:
    match = re.search(r'data-testid="verification">([^<]*)<', html)
    assert match is not None
    return match.group(1)


async def test_the_audit_badge_says_how_far_the_chain_is_intact_and_when_it_was_last_checkpointed(
    client: httpx.AsyncClient, brain: Brain
) -> None:
    await sign_in(client, "grace")  # enrolling her writes audit rows first (identity.*)
    base = await head_seq(brain)
    await brain.events.append_many([audit_draft(brain.tenant_id, n) for n in range(1, 8)])
    html = (await client.get("/audit")).text
    assert verification_of(html) == f"Chain intact up to seq {base + 7}"
    assert "no signed checkpoint yet" in html
    await brain.audit.checkpoint(brain.tenant_id)
    await brain.events.append(audit_draft(brain.tenant_id, 8))
    html = (await client.get("/audit")).text
    assert verification_of(html) == f"Chain intact up to seq {base + 8}"
    assert re.search(rf"last checkpoint at \d{{4}}-\d\d-\d\d \d\d:\d\d \(seq {base + 7}\)", html)


async def test_a_tampered_row_shows_the_chain_broken_after_a_full_verification(
    client: httpx.AsyncClient, brain: Brain, database_url: str
) -> None:
    await sign_in(client, "grace")
    base = await head_seq(brain)
    await brain.events.append_many([audit_draft(brain.tenant_id, n) for n in range(1, 6)])
    assert verification_of((await client.get("/audit")).text) == f"Chain intact up to seq {base + 5}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE audit_events DISABLE TRIGGER USER")
        try:
            conn.execute("UPDATE audit_events SET rationale = 'nothing happened' WHERE seq = %s", (base + 3,))
        finally:
            conn.execute("ALTER TABLE audit_events ENABLE TRIGGER USER")
    verified = await post_form(client, "/audit/verify", "/audit")
    assert verified.status_code == 303
    badge = verification_of((await client.get("/audit")).text)
    assert badge == f"Chain broken at seq {base + 3} (modified)"


async def test_a_long_unverified_stretch_waits_for_verify_now_instead_of_slowing_the_page(
    client: httpx.AsyncClient, brain: Brain, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pages_audit, "VERIFY_INLINE_MAX", 10)
    await sign_in(client, "grace")
    base = await head_seq(brain)
    await brain.events.append_many([audit_draft(brain.tenant_id, n) for n in range(1, 26)])
    html = (await client.get("/audit")).text
    assert verification_of(html) == "Verification pending"
    assert f"{base + 25} newer events not yet verified" in html
    await post_form(client, "/audit/verify", "/audit")
    assert verification_of((await client.get("/audit")).text) == f"Chain intact up to seq {base + 25}"
    await brain.events.append_many([audit_draft(brain.tenant_id, n) for n in range(26, 31)])
    # five new events are within the page's budget: verified from the remembered position
    assert verification_of((await client.get("/audit")).text) == f"Chain intact up to seq {base + 30}"


async def test_today_shows_the_demo_studios_own_snapshot_as_the_state_service_computed_it(
    client: httpx.AsyncClient, brain: Brain
) -> None:
    from studio_brain.cli.state import prepare_demo_state

    # the demo studio's history ends today
    assert await prepare_demo_state(replace(brain, clock=SystemClock())) > 1
    latest = await brain.state_store.latest_snapshot(brain.tenant_id)
    assert latest is not None
    await sign_in(client, "ada")
    html = (await client.get("/")).text
    shown = dict(re.findall(r'data-testid="value-([a-zA-Z.]+)">([^<]*)<', html))
    expected = {key: f"{int(value):,}" for key, value in metric_values(latest.document).items()}
    assert shown == expected
    assert len(expected) >= 10
