"""The attacks of issue 12 on what enters the brain over HTTP: secrets, unstorable text, out-of-range values,
refusal floods, borrowed correlation ids and foreign Host headers — each refused with a 4xx and a reason."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest

from studio_brain.bootstrap import Brain
from studio_brain.domain.audit import ActorType, AuditQuery
from studio_brain.domain.identity import AuthMethod, Principal
from tests.fixtures.auth import TokenMinter

# Built from pieces so no scanner flags this file as holding a credential.
SK_LIVE = "sk_" + "live_" + "51HqLyjWDarjtT1zdp7dcXaBcDeFgHiJk"
RK_LIVE = "rk_" + "live_" + "51HqLyjWDarjtT1zdp7dcXaBcDe"
WHSEC = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
PEM_LINE = "-----BEGIN " + "RSA PRIVATE KEY-----"
GOOGLE_KEY = "AIza" + "SyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe"


async def agent_headers(brain: Brain, *scopes: str) -> dict[str, str]:
    staff = Principal(
        tenant_id=brain.tenant_id,
        actor_type=ActorType.STAFF,
        actor_id="alice",
        via=AuthMethod.FIREBASE,
        roles=frozenset({"staff"}),
    )
    issued = await brain.gateway.issue_agent_token(
        staff,
        agent_id="notes-bot",
        scopes=list(scopes) or ["capability:studio.note.append:propose", "proposals:read"],
        lifetime=timedelta(hours=1),
        reason="notes bot for the daily summary",
    )
    return {"authorization": f"Bearer {issued.raw}"}


async def every_audit_row_text(brain: Brain) -> str:
    page = await brain.events.query(brain.tenant_id, AuditQuery(limit=1000))
    return json.dumps(
        [
            {
                "rationale": e.rationale,
                "metadata": e.metadata,
                "request": e.request_id,
                "correlation": e.correlation_id,
                "action": e.action,
            }
            for e in page.events
        ]
    )


def note(text: str, rationale: str = "Daily summary note", **extra: object) -> dict[str, object]:
    return {"capabilityId": "studio.note.append", "input": {"text": text}, "rationale": rationale, **extra}


# --- no secret enters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (note(f"stripe key for later: {SK_LIVE}"), "body.input.text"),
        (note("ordinary note", rationale=f"so the bot can refund with {RK_LIVE}"), "body.rationale"),
        (note("ordinary note", idempotencyKey=WHSEC), "body.idempotencyKey"),
        (note("ordinary note", correlationId=GOOGLE_KEY), "body.correlationId"),
        (note(f"{PEM_LINE}\nMIIEpAIBAAKCAQEA"), "body.input.text"),
    ],
    ids=["sk_live-in-a-note", "rk_live-in-a-rationale", "whsec-idempotency", "google-key-correlation", "pem"],
)
async def test_an_agent_sending_a_secret_anywhere_in_a_proposal_is_refused_and_nothing_stores_it(
    api_client: httpx.AsyncClient, api_brain: Brain, body: dict[str, object], where: str
) -> None:
    agent = await agent_headers(api_brain)
    response = await api_client.post("/api/v1/proposals", json=body, headers=agent)
    assert response.status_code == 400, response.text
    assert response.json()["reasonCode"] == "SECRET_IN_PAYLOAD"
    assert where in response.json()["message"]
    for secret in (SK_LIVE, RK_LIVE, WHSEC, GOOGLE_KEY, PEM_LINE):
        assert secret not in response.text
    listed = await api_client.get("/api/v1/proposals", headers=agent)
    assert listed.json()["proposals"] == []
    # audited: the refusal, with the agent named and no trace of the value
    page = await api_brain.events.query(api_brain.tenant_id, AuditQuery(action_prefix="http.request.refused"))
    [refusal] = page.events
    assert refusal.actor_id == "notes-bot"
    assert refusal.metadata["reasonCode"] == "SECRET_IN_PAYLOAD"
    stored = await every_audit_row_text(api_brain)
    for secret in (SK_LIVE, RK_LIVE, WHSEC, GOOGLE_KEY, PEM_LINE):
        assert secret not in stored


async def test_an_input_field_named_like_a_stripe_key_is_refused_without_echoing_the_name(
    api_client: httpx.AsyncClient, api_brain: Brain
) -> None:
    # issue 12: "A key named sk_live_… is echoed in a 409 message"
    agent = await agent_headers(api_brain)
    body = {
        "capabilityId": "studio.note.append",
        "input": {"text": "x", SK_LIVE: 1},
        "rationale": "Daily note",
    }
    response = await api_client.post("/api/v1/proposals", json=body, headers=agent)
    assert response.status_code == 400
    assert response.json()["reasonCode"] == "SECRET_IN_PAYLOAD"
    assert SK_LIVE not in response.text
    assert SK_LIVE[8:] not in response.text


async def test_a_secret_in_a_portal_payload_a_kill_switch_reason_or_a_request_id_header_is_refused(
    api_client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    portal = await api_client.post(
        "/api/capabilities/proposals",
        json={"capabilityId": "studio.note.append", "input": {"text": SK_LIVE}, "rationale": "portal note"},
        headers=admin_headers,
    )
    assert portal.status_code == 400
    assert portal.json()["reasonCode"] == "SECRET_IN_PAYLOAD"
    switch = await api_client.post(
        "/api/v1/policy/kill-switch",
        json={"enabled": True, "rationale": f"stopping writes, key was {RK_LIVE}"},
        headers=admin_headers,
    )
    assert switch.status_code == 400
    assert switch.json()["reasonCode"] == "SECRET_IN_PAYLOAD"
    header = await api_client.get("/api/v1/proposals", headers={**admin_headers, "x-request-id": SK_LIVE})
    assert header.status_code == 400
    assert header.json()["reasonCode"] == "SECRET_IN_PAYLOAD"
    assert SK_LIVE not in header.text
    assert SK_LIVE not in header.headers.get("x-request-id", "")
    query = await api_client.get("/api/v1/audit", params={"correlationId": SK_LIVE}, headers=admin_headers)
    assert query.status_code == 400
    assert SK_LIVE not in query.text


async def test_a_cockpit_form_field_holding_a_secret_is_refused(
    api_client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await api_client.post(
        "/policy/kill-switch", data={"enabled": "on", "rationale": f"key {SK_LIVE}"}, headers=admin_headers
    )
    assert response.status_code == 400
    assert response.json()["reasonCode"] == "SECRET_IN_PAYLOAD"


# --- every bad input is a 4xx -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("GET", "/api/v1/proposals/abc%00def", None),
        ("GET", "/api/v1/proposals?requestedBy=al%00ice", None),
        ("GET", "/api/v1/proposals?capabilityId=%00", None),
        ("GET", "/api/v1/audit?correlationId=c%00", None),
        ("GET", "/api/v1/drafts/ops?status=open%00", None),
        ("GET", "/api/v1/state/snapshots/2026-11-25%00", None),
        ("POST", "/api/v1/proposals/p%00/approve", {"rationale": "looks fine"}),
        ("POST", "/api/v1/proposals", note("a\u0000b")),
        ("POST", "/api/v1/proposals", {"capabilityId": "studio.note.append\u0000", "rationale": "x"}),
        ("POST", "/api/capabilities/proposals/p%00/approve", {"rationale": "fine"}),
        ("POST", "/api/v1/policy/exemptions", {"capabilityId": "x\u0000", "justification": "j" * 30}),
    ],
)
async def test_a_nul_in_a_path_id_query_filter_or_body_id_is_a_400_not_a_storage_error(
    api_client: httpx.AsyncClient, admin_headers: dict[str, str], method: str, url: str, body: object
) -> None:
    response = await api_client.request(method, url, json=body, headers=admin_headers)
    assert response.status_code == 400, response.text
    assert response.json()["reasonCode"] == "INPUT_TEXT_INVALID"
    assert "NUL" in response.json()["message"]


async def test_an_unpaired_surrogate_in_a_json_string_is_a_400(
    api_client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    raw = '{"capabilityId": "studio.note.append", "input": {"text": "bad \\ud800 text"}, "rationale": "xx"}'
    response = await api_client.post(
        "/api/v1/proposals", content=raw, headers={**admin_headers, "content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["reasonCode"] == "INPUT_TEXT_INVALID"
    assert "surrogate" in response.json()["message"]


async def test_a_history_ending_in_year_one_is_a_400_not_a_500(
    api_client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await api_client.get(
        "/api/v1/state/history", params={"end": "0001-01-01"}, headers=admin_headers
    )
    assert response.status_code == 400, response.text
    assert response.json()["reasonCode"] == "INPUT_OUT_OF_RANGE"


@pytest.mark.parametrize("number", ["18446744073709551617", "-9007199254740993", "NaN", "Infinity", "1e400"])
async def test_a_number_out_of_range_in_a_body_is_a_400(
    api_client: httpx.AsyncClient, admin_headers: dict[str, str], number: str
) -> None:
    raw = '{"capabilityId": "studio.note.append", "input": {"text": "t", "n": NUMBER}, "rationale": "xx"}'
    raw = raw.replace("NUMBER", number)
    response = await api_client.post(
        "/api/v1/proposals", content=raw, headers={**admin_headers, "content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["reasonCode"] in {"INPUT_OUT_OF_RANGE", "INPUT_MALFORMED_JSON"}


async def test_a_verified_callers_refusal_containing_a_nul_is_audited_sanitised(
    api_client: httpx.AsyncClient, api_brain: Brain
) -> None:
    # issue 12: "Refusals containing a NUL are never audited"
    agent = await agent_headers(api_brain)
    response = await api_client.get("/api/v1/proposals/evil%00id", headers=agent)
    assert response.status_code == 400
    page = await api_brain.events.query(api_brain.tenant_id, AuditQuery(action_prefix="http.request.refused"))
    [refusal] = page.events
    assert refusal.actor_id == "notes-bot"
    assert refusal.metadata["reasonCode"] == "INPUT_TEXT_INVALID"
    assert refusal.metadata["path"] == "/api/v1/proposals/evil\\x00id"
    assert "\x00" not in json.dumps(refusal.metadata)


async def test_an_anonymous_bad_input_is_refused_but_not_audited(
    api_client: httpx.AsyncClient, api_brain: Brain
) -> None:
    response = await api_client.get("/api/v1/proposals/evil%00id")
    assert response.status_code == 400
    page = await api_brain.events.query(api_brain.tenant_id, AuditQuery(action_prefix="http"))
    assert page.events == []


# --- abuse limits -------------------------------------------------------------------------------------


async def test_fifty_refusals_from_one_claimless_token_are_audited_as_one_window_with_a_count(
    api_client: httpx.AsyncClient, api_brain: Brain, tokens: TokenMinter
) -> None:
    # issue 12: "50 requests with any Firebase token and no claims wrote 50 http.request.refused rows"
    caller = tokens.headers("drive-by")
    for _ in range(50):
        assert (await api_client.get("/api/v1/proposals", headers=caller)).status_code == 403
    await api_client._transport.app.state.refusals.flush()  # type: ignore[attr-defined]
    page = await api_brain.events.query(api_brain.tenant_id, AuditQuery(action_prefix="http.request.refused"))
    assert len(page.events) == 2  # the first at once, the other 49 in one aggregated row
    first, rest = sorted(page.events, key=lambda e: e.seq)
    assert first.metadata["count"] == 1
    assert rest.metadata["aggregated"] is True
    assert rest.metadata["count"] == 49
    assert {first.actor_id, rest.actor_id} == {"drive-by"}


async def test_an_agent_reusing_a_victims_correlation_id_stays_out_of_the_victims_timeline(
    api_client: httpx.AsyncClient, api_brain: Brain, tokens: TokenMinter
) -> None:
    alice = tokens.headers("alice", staff=True)
    created = await api_client.post(
        "/api/v1/proposals",
        json=note("Kiln 2 glaze load tonight"),
        headers={**alice, "x-request-id": "victim-1"},
    )
    assert created.status_code == 201, created.text
    victim = created.json()["proposal"]
    agent = await agent_headers(api_brain)
    # the agent borrows both the victim's request id and its stored correlation id
    for extra in ({"correlationId": victim["correlationId"]}, {"correlationId": "victim-1"}, {}):
        borrowed = await api_client.post(
            "/api/v1/proposals",
            json=note("nothing to see here", **extra),
            headers={**agent, "x-request-id": "victim-1"},
        )
        assert borrowed.status_code == 201, borrowed.text
        assert borrowed.json()["proposal"]["correlationId"] != victim["correlationId"]
    # a victim whose id the brain generated: an agent that learnt it and sends it back, in a proposal or in
    # a request the input guard refuses (and audits), stays out of that timeline as well
    plain = await api_client.post("/api/v1/proposals", json=note("Kiln 3 unload"), headers=alice)
    generated = plain.json()["proposal"]["correlationId"]
    refused = await api_client.get("/api/v1/proposals/x%00", headers={**agent, "x-request-id": generated})
    assert refused.status_code == 400
    reused = await api_client.post(
        "/api/v1/proposals", json=note("nothing here"), headers={**agent, "x-request-id": generated}
    )
    assert reused.status_code == 201
    generated_timeline = await api_brain.events.query(
        api_brain.tenant_id, AuditQuery(correlation_id=generated, limit=100)
    )
    assert {e.actor_id for e in generated_timeline.events} == {"alice"}
    timeline = await api_brain.events.query(
        api_brain.tenant_id, AuditQuery(correlation_id=victim["correlationId"], limit=100)
    )
    assert timeline.events
    assert {e.actor_id for e in timeline.events} == {"alice"}


# --- Host allow-list ----------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8787", "127.0.0.1.nip.io", "[::2]:8787"])
async def test_a_request_for_another_host_is_refused_against_dns_rebinding(
    api_client: httpx.AsyncClient, admin_headers: dict[str, str], host: str
) -> None:
    response = await api_client.get("/api/v1/proposals", headers={**admin_headers, "host": host})
    assert response.status_code == 400
    assert response.json()["reasonCode"] == "HOST_NOT_ALLOWED"


@pytest.mark.parametrize("host", ["127.0.0.1:8787", "localhost", "LOCALHOST:8787", "[::1]:8787"])
async def test_loopback_host_names_are_allowed(api_client: httpx.AsyncClient, host: str) -> None:
    assert (await api_client.get("/healthz", headers={"host": host})).status_code == 200


async def test_the_allowed_hosts_setting_extends_the_list(
    api_brain: Brain, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from studio_brain.web.app import create_app
    from studio_brain.web.middleware import allowed_hosts

    settings = api_brain.settings.model_copy(update={"allowed_hosts": ["brain.studio.lan"]})
    assert "brain.studio.lan" in allowed_hosts(settings)
    app = create_app(brain=replace(api_brain, settings=settings))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://brain.studio.lan"
    ) as c:
        assert (await c.get("/healthz")).status_code == 200
        assert (await c.get("/healthz", headers={"host": "other.lan"})).status_code == 400
