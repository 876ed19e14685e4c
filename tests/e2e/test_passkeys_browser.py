"""Passkeys in a real browser: Debian's Chromium with its virtual authenticator (DevTools ``WebAuthn``
domain over Playwright's CDP session) enrols two people from one-time invites, signs each in with their
passkey, and the second person approves what the first proposed; the first cannot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from studio_brain.bootstrap import Brain
from studio_brain.domain.audit import AuditQuery
from studio_brain.domain.identity import AuthMethod, CredentialKind, break_glass_principal
from tests.e2e.conftest import CockpitServer, screenshot, start_server
from tests.e2e.seed import propose_note

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def server(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CockpitServer]:
    async def prepare(_brain: Brain) -> None:
        return None

    yield from start_server(database_url, tmp_path, prepare, monkeypatch)


def with_authenticator(browser: Any) -> tuple[Any, Any]:
    """A browser context whose page has a virtual platform authenticator (user verification on)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return context, page


def enrol_in_browser(page: Any, url: str, label: str) -> None:
    page.goto(url)
    page.get_by_label('Name this passkey (e.g. "front desk laptop")').fill(label)
    page.get_by_role("button", name="Create my passkey").click()
    page.wait_for_url("**/")


def sign_in_with_passkey(page: Any, server: CockpitServer) -> None:
    page.goto(server.base_url + "/login")
    page.get_by_role("button", name="Sign in with a passkey").click()
    page.wait_for_url(server.base_url + "/")


def test_two_people_enrol_sign_in_with_passkeys_and_the_second_approves(
    server: CockpitServer, browser: Any
) -> None:
    identity = server.brain.identity
    gateway = server.brain.gateway
    assert identity is not None
    assert gateway is not None
    # the first owner, as `studio-brain staff create-owner` makes her (break-glass)
    invite = server.call(
        lambda: identity.create_first_owner(break_glass_principal(server.brain.tenant_id), "Ada Owner")
    )

    ada_context, ada = with_authenticator(browser)
    ada.goto(invite.url(server.base_url))
    assert "Welcome, Ada Owner" in ada.content()
    screenshot(ada, "11-identity-enrol")
    enrol_in_browser(ada, invite.url(server.base_url), "Ada's laptop")
    assert "Ada Owner" in ada.get_by_test_id("signed-in-as").inner_text()

    # Ada invites Grace from the Staff page; the one-time link is shown once
    ada.get_by_role("link", name="Staff").click()
    ada.get_by_label("Name").fill("Grace Manager")
    ada.get_by_role("button", name="Create invite").click()
    grace_url = ada.get_by_test_id("invite-url").inner_text()
    assert "/enrol?invite=sbi_" in grace_url
    screenshot(ada, "11-identity-staff")

    grace_context, grace = with_authenticator(browser)
    enrol_in_browser(grace, grace_url, "Grace's phone")
    assert "Grace Manager" in grace.get_by_test_id("signed-in-as").inner_text()
    grace.goto(grace_url)  # the invite worked once
    assert "This invite does not work" in grace.content()
    screenshot(grace, "11-identity-invite-used")

    # both sign out (the server ends the sessions) and sign in again with their passkeys
    for page in (ada, grace):
        page.goto(server.base_url + "/")
        page.get_by_test_id("sign-out").get_by_role("button", name="Sign out").click()
        page.wait_for_url("**/login/signed-out")
    screenshot(grace, "11-identity-signed-out")
    grace.goto(server.base_url + "/")
    assert "Sign in to the cockpit" in grace.content()
    grace.goto(server.base_url + "/login")
    screenshot(grace, "11-identity-sign-in")
    sign_in_with_passkey(ada, server)
    sign_in_with_passkey(grace, server)
    assert "Ada Owner" in ada.get_by_test_id("signed-in-as").inner_text()
    assert "Grace Manager" in grace.get_by_test_id("signed-in-as").inner_text()

    # Ada proposes; only Grace (a distinct, signed-in person) may approve
    people = {p.display_name: p for p in server.call(identity.persons)}
    ada_principal = people["Ada Owner"].principal(
        via=AuthMethod.SESSION, kind=CredentialKind.PASSKEY, credential_id="(proposed in the test)"
    )
    proposal = server.call(lambda: propose_note(gateway, ada_principal))
    ada.goto(f"{server.base_url}/proposals/{proposal.id}")
    assert "another staff member must approve it" in ada.get_by_test_id("own-proposal").inner_text()
    assert ada.get_by_role("button", name="Approve").count() == 0
    grace.goto(f"{server.base_url}/proposals/{proposal.id}")
    grace.get_by_label("Why approve?").fill("Checked the kiln log: the shelf is cracked")
    grace.get_by_role("button", name="Approve").click()
    assert grace.get_by_test_id("proposal-status").inner_text() == "approved"
    screenshot(grace, "11-identity-approved-by-second-person")

    # the audit row names Grace and how she signed in: her passkey (never a secret)
    events = server.brain.events
    page_of = server.call(
        lambda: events.query(server.brain.tenant_id, AuditQuery(action_prefix="capability.proposal.approved"))
    )
    [approved] = page_of.events
    assert approved.actor_id == people["Grace Manager"].id
    assert approved.metadata["credential"]["kind"] == "passkey"
    assert approved.metadata["credential"]["personId"] == people["Grace Manager"].id
    keys = server.call(lambda: identity.passkeys_of(people["Grace Manager"].id))
    assert approved.metadata["credential"]["id"] in {k.id for k in keys}

    # the account page lists her passkey and gives a one-time CLI code
    grace.get_by_test_id("signed-in-as").get_by_role("link").click()
    assert "Grace's phone" in grace.content()
    grace.get_by_role("button", name="Show a one-time code for studio-brain login").click()
    assert grace.get_by_test_id("cli-code-value").inner_text().startswith("sbc_")
    screenshot(grace, "11-identity-account")
    ada_context.close()
    grace_context.close()
