"""Request safety: request ids, security headers, CORS allow-list, body limit, 400 (never 500) for bad input."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.postgres

PORTAL_ORIGIN = "http://localhost:5173"


async def test_a_safe_incoming_request_id_is_echoed(api_client: httpx.AsyncClient) -> None:
    response = await api_client.get("/healthz", headers={"x-request-id": "portal-req-42"})
    assert response.headers["x-request-id"] == "portal-req-42"


async def test_a_request_id_is_created_when_none_is_sent(api_client: httpx.AsyncClient) -> None:
    first = (await api_client.get("/healthz")).headers["x-request-id"]
    second = (await api_client.get("/healthz")).headers["x-request-id"]
    assert first
    assert second != first


async def test_an_unsafe_request_id_is_replaced_not_echoed(api_client: httpx.AsyncClient) -> None:
    response = await api_client.get("/healthz", headers={"x-request-id": "x" * 300})
    assert response.headers["x-request-id"] != "x" * 300
    assert len(response.headers["x-request-id"]) <= 128


async def test_error_bodies_carry_the_request_id(api_client: httpx.AsyncClient) -> None:
    response = await api_client.get("/api/v1/state/latest", headers={"x-request-id": "req-7"})
    assert response.status_code == 401
    assert response.json()["requestId"] == "req-7"


async def test_every_response_has_the_security_headers(api_client: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/api/v1/state/latest", "/no-such-page"):
        headers = (await api_client.get(path)).headers
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["x-frame-options"] == "DENY", path
        assert headers["referrer-policy"] == "no-referrer", path
        assert "frame-ancestors 'none'" in headers["content-security-policy"], path


async def test_api_responses_are_not_cached(
    api_client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await api_client.get("/api/v1/state/history", headers=admin_headers)
    assert response.headers["cache-control"] == "no-store"


async def test_a_portal_origin_passes_the_cors_preflight(api_client: httpx.AsyncClient) -> None:
    response = await api_client.options(
        "/api/capabilities",
        headers={
            "origin": PORTAL_ORIGIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type, x-studio-brain-admin-token",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == PORTAL_ORIGIN
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed
    assert "x-studio-brain-admin-token" in allowed


async def test_an_unlisted_origin_gets_no_cors_grant(api_client: httpx.AsyncClient) -> None:
    preflight = await api_client.options(
        "/api/capabilities",
        headers={"origin": "https://evil.example", "access-control-request-method": "GET"},
    )
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    simple = await api_client.get("/healthz", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


async def test_the_cors_allow_list_comes_from_settings(
    database_url: str, auth_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from studio_brain.bootstrap import DatabaseTarget, open_brain
    from studio_brain.settings import load_settings
    from studio_brain.web.app import create_app

    monkeypatch.setenv("STUDIO_BRAIN_CORS_ORIGINS", '["https://portal.studio.example"]')
    settings = load_settings()
    async with open_brain(settings, target=DatabaseTarget(url=database_url, embedded=None)) as brain:
        transport = httpx.ASGITransport(app=create_app(brain=brain))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8787") as client:
            ok = await client.get("/healthz", headers={"origin": "https://portal.studio.example"})
            dev = await client.get("/healthz", headers={"origin": PORTAL_ORIGIN})
    assert ok.headers["access-control-allow-origin"] == "https://portal.studio.example"
    assert "access-control-allow-origin" not in dev.headers


async def test_a_body_over_the_limit_is_413_before_it_is_read(
    api_client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await api_client.post(
        "/api/ops/degraded",
        headers={**admin_headers, "content-type": "application/json"},
        content=b"{" + b" " * 2_000_000 + b"}",
    )
    assert response.status_code == 413
    assert response.json() == {
        "ok": False,
        "message": "the request body is larger than the limit of 1048576 bytes",
        "reasonCode": "BODY_TOO_LARGE",
    }


async def test_malformed_json_is_400_never_500(
    api_client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await api_client.post(
        "/api/ops/degraded",
        headers={**admin_headers, "content-type": "application/json"},
        content=b'{"status": "entered",',
    )
    assert response.status_code == 400
    body = response.json()
    assert body["ok"] is False
    assert body["reasonCode"] == "INPUT_MALFORMED_JSON"
    assert body["message"] == "the request body is not valid JSON"


async def test_an_invalid_field_is_400_naming_the_field(
    api_client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await api_client.post(
        "/api/ops/degraded", headers=admin_headers, json={"status": "sideways", "mode": "offline"}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["reasonCode"] == "INPUT_INVALID"
    assert body["message"].startswith("status:")
    assert all("input" not in problem for problem in body["errors"])  # the input is never echoed back


async def test_an_invalid_query_parameter_is_400(
    api_client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await api_client.get("/api/v1/state/history?start=yesterday", headers=admin_headers)
    assert response.status_code == 400
    assert response.json()["message"].startswith("query.start:")


async def test_an_unknown_path_is_a_json_404(
    api_client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await api_client.get("/api/v1/nothing-here", headers=admin_headers)
    assert response.status_code == 404
    assert response.json()["ok"] is False
