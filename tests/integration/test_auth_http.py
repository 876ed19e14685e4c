"""Every request is authenticated: Firebase ID tokens, the admin token, agent tokens and the cockpit session."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest

from studio_brain.bootstrap import Brain
from studio_brain.domain.audit import ActorType
from studio_brain.domain.errors import PermissionDenied, ReasonCode
from studio_brain.domain.identity import AuthMethod, Principal
from studio_brain.web.auth import SESSION_COOKIE, Authenticator
from tests.fakes import FakeClock
from tests.fixtures.auth import TEST_PROJECT_ID, TokenMinter, make_signing_key
from tests.fixtures.identity import enrol_person, with_clock

pytestmark = pytest.mark.postgres

PROTECTED = "/api/v1/state/history"


def authenticator(client: httpx.AsyncClient) -> Authenticator:
    app = client._transport.app  # type: ignore[attr-defined]
    auth: Authenticator = app.state.auth
    return auth


async def test_a_request_without_credentials_is_401_with_the_portal_error_shape(
    api_client: httpx.AsyncClient,
) -> None:
    response = await api_client.get(PROTECTED)
    assert response.status_code == 401
    body = response.json()
    assert body["ok"] is False
    assert body["reasonCode"] == "AUTH_REQUIRED"
    assert "authentication required" in body["message"]
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_health_and_readiness_stay_anonymous(api_client: httpx.AsyncClient) -> None:
    assert (await api_client.get("/healthz")).status_code == 200
    assert (await api_client.get("/readyz")).status_code == 200


async def test_a_staff_firebase_token_is_accepted(api_client: httpx.AsyncClient, tokens: TokenMinter) -> None:
    response = await api_client.get(PROTECTED, headers=tokens.headers("staff-1", staff=True))
    assert response.status_code == 200, response.text


async def test_staff_may_also_come_from_the_roles_claim(
    api_client: httpx.AsyncClient, tokens: TokenMinter
) -> None:
    response = await api_client.get(PROTECTED, headers=tokens.headers("staff-2", roles=["member", "staff"]))
    assert response.status_code == 200


async def test_a_signed_in_member_without_the_staff_claim_is_403(
    api_client: httpx.AsyncClient, tokens: TokenMinter
) -> None:
    response = await api_client.get(PROTECTED, headers=tokens.headers("member-1", roles=["member"]))
    assert response.status_code == 403
    assert response.json()["reasonCode"] == "SCOPE_REQUIRED"


@pytest.mark.parametrize(
    ("case", "kwargs"),
    [
        ("expired", {"expires_in": -3600}),
        ("another project's audience", {"audience": "someone-else"}),
        ("another issuer", {"issuer": "https://securetoken.google.com/someone-else"}),
    ],
)
async def test_a_token_failing_a_check_is_401(
    api_client: httpx.AsyncClient, tokens: TokenMinter, case: str, kwargs: dict[str, object]
) -> None:
    response = await api_client.get(PROTECTED, headers=tokens.headers("staff-1", staff=True, **kwargs))
    assert response.status_code == 401, case
    assert response.json()["reasonCode"] == "AUTH_TOKEN_INVALID"


async def test_a_token_signed_by_an_untrusted_key_is_401(api_client: httpx.AsyncClient) -> None:
    stranger = TokenMinter(key=make_signing_key("test-key-1"), project_id=TEST_PROJECT_ID)
    response = await api_client.get(PROTECTED, headers=stranger.headers("staff-1", staff=True))
    assert response.status_code == 401


async def test_a_token_with_an_unknown_key_id_is_401(api_client: httpx.AsyncClient) -> None:
    stranger = TokenMinter(key=make_signing_key("unknown-kid"), project_id=TEST_PROJECT_ID)
    response = await api_client.get(PROTECTED, headers=stranger.headers("staff-1", staff=True))
    assert response.status_code == 401


async def test_an_unsigned_token_is_401(api_client: httpx.AsyncClient, tokens: TokenMinter) -> None:
    header, payload, _signature = tokens.token("staff-1", staff=True).split(".")
    response = await api_client.get(PROTECTED, headers={"authorization": f"Bearer {header}.{payload}."})
    assert response.status_code == 401


async def test_a_malformed_authorization_header_is_401(api_client: httpx.AsyncClient) -> None:
    for value in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer not-a-jwt"):
        response = await api_client.get(PROTECTED, headers={"authorization": value})
        assert response.status_code == 401, value


async def test_the_admin_token_alone_authenticates_the_local_admin(
    api_client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await api_client.get(PROTECTED, headers=admin_headers)
    assert response.status_code == 200


async def test_a_wrong_admin_token_is_401_even_with_a_valid_staff_token(
    api_client: httpx.AsyncClient, tokens: TokenMinter
) -> None:
    headers = {**tokens.headers("staff-1", staff=True), "x-studio-brain-admin-token": "wrong-token-value"}
    response = await api_client.get(PROTECTED, headers=headers)
    assert response.status_code == 401
    assert response.json()["reasonCode"] == "AUTH_ADMIN_TOKEN_INVALID"


async def test_the_openapi_document_needs_authentication(
    api_client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    assert (await api_client.get("/api/v1/openapi.json")).status_code == 401
    response = await api_client.get("/api/v1/openapi.json", headers=admin_headers)
    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.")


async def test_a_login_link_sets_an_httponly_strict_session_cookie_and_redirects_home(
    api_client: httpx.AsyncClient,
) -> None:
    url = await authenticator(api_client).login_url("http://127.0.0.1:8000")
    response = await api_client.get(url)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert (await api_client.get(PROTECTED)).status_code == 200  # the client kept the cookie


async def test_a_login_link_works_only_once(api_client: httpx.AsyncClient) -> None:
    url = await authenticator(api_client).login_url("http://127.0.0.1:8000")
    assert (await api_client.get(url)).status_code == 303
    api_client.cookies.clear()
    again = await api_client.get(url)
    assert again.status_code == 401
    assert SESSION_COOKIE not in again.headers.get("set-cookie", "")


async def test_an_expired_login_link_is_refused(api_client: httpx.AsyncClient, api_brain: Brain) -> None:
    auth = authenticator(api_client)
    url = await auth.login_url("http://127.0.0.1:8000")
    clock = FakeClock(api_brain.clock.now())
    with_clock(api_brain, clock)  # the identity services read the Clock port, never time.time
    clock.advance(auth.settings.login_link_minutes * 60 + 5)
    assert (await api_client.get(url)).status_code == 401


async def test_a_tampered_login_link_is_refused(api_client: httpx.AsyncClient) -> None:
    url = await authenticator(api_client).login_url("http://127.0.0.1:8000")
    token = urlsplit(url).query.removeprefix("token=")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert (await api_client.get(f"/login?token={forged}")).status_code == 401
    assert (await api_client.get(url)).status_code == 303  # the real one still works, once


async def test_a_login_link_opens_a_break_glass_session_never_a_person(
    api_client: httpx.AsyncClient, api_brain: Brain
) -> None:
    # login links used to carry any identity (``sub``/``roles``) the holder of the admin token chose; now a
    # link is the break-glass way in only, and persons sign in with their own passkeys
    auth = authenticator(api_client)
    await api_client.get(await auth.login_url("http://127.0.0.1:8000"))
    session = api_client.cookies[SESSION_COOKIE]
    principal = await auth.identity.credentials.principal_for_session(session)
    assert principal is not None
    assert principal.is_break_glass
    assert principal.person_id is None
    assert principal.tenant_id == api_brain.tenant_id
    grace = await enrol_person(api_brain, "Grace", owner=True)
    with pytest.raises(PermissionDenied) as refused:
        await auth.identity.credentials.issue_login_link(grace.principal)
    assert refused.value.reason_code is ReasonCode.BREAK_GLASS_REQUIRED


async def test_a_forged_session_cookie_is_401_not_anonymous(api_client: httpx.AsyncClient) -> None:
    api_client.cookies.set(SESSION_COOKIE, "eyJzdWIiOiJ4In0.bm90LWEtbWFj")
    response = await api_client.get(PROTECTED)
    assert response.status_code == 401
    assert response.json()["reasonCode"] == "AUTH_SESSION_INVALID"


async def test_an_expired_session_is_refused(api_client: httpx.AsyncClient, api_brain: Brain) -> None:
    auth = authenticator(api_client)
    await api_client.get(await auth.login_url("http://127.0.0.1:8000"))
    assert (await api_client.get(PROTECTED)).status_code == 200
    clock = FakeClock(api_brain.clock.now())
    with_clock(api_brain, clock)
    clock.advance(auth.settings.session_minutes * 60 + 5)
    assert (await api_client.get(PROTECTED)).status_code == 401


class _Gateway:
    """Stands in for the gateway's agent-token check (the real one is tested by the gateway area)."""

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id

    async def verify_agent_token(self, raw: str) -> Principal | None:
        if raw != "sbat_good":
            return None
        return Principal(
            tenant_id=self.tenant_id,
            actor_type=ActorType.AGENT,
            actor_id="agent-1",
            via=AuthMethod.AGENT_TOKEN,
            scopes=frozenset({"state:read"}),
        )


async def test_an_agent_token_is_checked_by_the_gateway(
    api_client: httpx.AsyncClient, api_brain: Brain
) -> None:
    authenticator(api_client).agents = _Gateway(api_brain.tenant_id)
    good = await api_client.get(PROTECTED, headers={"authorization": "Bearer sbat_good"})
    assert good.status_code == 200
    bad = await api_client.get(PROTECTED, headers={"authorization": "Bearer sbat_revoked"})
    assert bad.status_code == 401


async def test_an_agent_is_refused_staff_only_paths(api_client: httpx.AsyncClient, api_brain: Brain) -> None:
    authenticator(api_client).agents = _Gateway(api_brain.tenant_id)
    response = await api_client.get("/api/support-ops/queue", headers={"authorization": "Bearer sbat_good"})
    assert response.status_code == 403
    assert response.json()["reasonCode"] == "STAFF_REQUIRED"


async def test_an_agent_token_of_another_tenant_is_401(api_client: httpx.AsyncClient) -> None:
    authenticator(api_client).agents = _Gateway("another-studio")
    response = await api_client.get(PROTECTED, headers={"authorization": "Bearer sbat_good"})
    assert response.status_code == 401
    assert response.json()["reasonCode"] == "AUTH_TENANT_MISMATCH"


async def test_the_login_link_printed_at_start_up_is_accepted_by_the_running_app(
    api_client: httpx.AsyncClient, api_brain: Brain
) -> None:
    printed = await Authenticator.for_brain(api_brain).login_url("http://127.0.0.1:8000")  # as `serve` does
    response = await api_client.get(printed)
    assert response.status_code == 303
    assert (await api_client.get(PROTECTED)).status_code == 200


async def test_a_removed_persons_session_is_refused(api_client: httpx.AsyncClient, api_brain: Brain) -> None:
    ada = await enrol_person(api_brain, "Ada", owner=True)
    grace = await enrol_person(api_brain, "Grace")
    assert (await api_client.get(PROTECTED, headers=grace.cookies)).status_code == 200
    await authenticator(api_client).identity.remove(ada.principal, grace.person_id, "left the studio")
    assert (await api_client.get(PROTECTED, headers=grace.cookies)).status_code == 401


async def test_serve_announces_a_login_link_that_signs_in_once(
    api_client: httpx.AsyncClient, api_brain: Brain, capsys: pytest.CaptureFixture[str]
) -> None:
    from studio_brain.cli.main import _announce
    from studio_brain.cli.staff import sign_in_lines

    _announce(api_brain.settings, api_brain, "0.0.0.0", 8000, await sign_in_lines(api_brain, demo=False))
    printed = capsys.readouterr().out
    assert 'no owner yet: run `studio-brain staff create-owner "Your Name"`' in printed  # the upgrade path
    url = next(word for word in printed.split() if "/login?token=" in word)
    assert url.startswith(f"{api_brain.settings.cockpit_url}/login?token=")
    assert (await api_client.get(url)).status_code == 303
    api_client.cookies.clear()
    assert (await api_client.get(url)).status_code == 401


async def test_a_verified_caller_refused_for_want_of_a_role_is_audited(
    api_client: httpx.AsyncClient, api_brain: Brain, tokens: TokenMinter
) -> None:
    from studio_brain.domain.audit import AuditQuery

    response = await api_client.get(
        PROTECTED, headers={**tokens.headers("member-1", roles=["member"]), "x-request-id": "req-refused-1"}
    )
    assert response.status_code == 403
    page = await api_brain.events.query(api_brain.tenant_id, AuditQuery(action_prefix="http.request.refused"))
    [event] = page.events
    assert event.actor_id == "member-1"
    assert event.request_id == "human:member-1/req-refused-1"  # the caller's id, in its namespace
    assert event.metadata["reasonCode"] == "SCOPE_REQUIRED"
    assert event.metadata["path"] == PROTECTED


async def test_an_anonymous_refusal_is_not_audited(api_client: httpx.AsyncClient, api_brain: Brain) -> None:
    from studio_brain.domain.audit import AuditQuery

    assert (await api_client.get(PROTECTED)).status_code == 401
    page = await api_brain.events.query(api_brain.tenant_id, AuditQuery(action_prefix="http"))
    assert page.events == []


async def test_a_cookie_authenticated_change_from_another_origin_is_refused(
    api_client: httpx.AsyncClient,
) -> None:
    await api_client.get(await authenticator(api_client).login_url("http://127.0.0.1:8000"))
    url = "/api/v1/proposals/some-id/submit"
    cross = await api_client.post(url, headers={"origin": "http://localhost:5173"})
    assert cross.status_code == 403
    assert cross.json()["reasonCode"] == "CROSS_ORIGIN_REFUSED"
    same = await api_client.post(url, headers={"origin": "http://127.0.0.1:8000"})
    # passes the origin check and reaches the gateway, which does not know the proposal
    assert same.status_code == 404
    assert same.json()["reasonCode"] == "NOT_FOUND"


async def test_every_documented_operation_but_health_refuses_an_anonymous_caller(
    api_client: httpx.AsyncClient,
) -> None:
    app = api_client._transport.app  # type: ignore[attr-defined]
    document = app.openapi()
    # public on purpose (docs/api.md, docs/cloud-writes.md): the approval-attestation key's public half, which
    # the studio fetches without credentials to check an `approvedBy` attestation
    public_keys = {"/.well-known/jwks.json", "/api/v1/attestations/jwks"}
    anonymous_ok = {"/healthz", "/readyz", *public_keys}
    checked = 0
    for path, operations in document["paths"].items():
        concrete = path
        for name in (
            "proposal_id",
            "exemption_id",
            "bucket",
            "draft_id",
            "intake_id",
            "kind",
            "snapshot_date",
        ):
            concrete = concrete.replace("{" + name + "}", "ops" if name == "kind" else "x")
        for method in operations:
            response = await api_client.request(
                method.upper(), concrete, json={} if method == "post" else None
            )
            if path in anonymous_ok:
                assert response.status_code == 200, path
                if path in public_keys:  # only public key material is ever served anonymously
                    keys = response.json()["keys"]
                    assert keys, path
                    assert all(key["kty"] == "OKP" for key in keys), path
                    assert not any("d" in key for key in keys), path
            else:
                assert response.status_code == 401, f"{method.upper()} {path} answered {response.status_code}"
            checked += 1
    assert checked > 50
