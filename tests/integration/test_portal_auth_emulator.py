"""The Portal's local development flow: with ``VITE_USE_AUTH_EMULATOR=true`` it sends the Firebase Auth
emulator's unsigned ID tokens. With the explicit setting (off by default, loopback only, the emulator's
variable set) the brain accepts them for its project, as the Firebase Admin SDK does (issue 21)."""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from studio_brain.bootstrap import Brain, DatabaseTarget, open_brain
from studio_brain.domain.errors import ConfigError
from studio_brain.logging import configure_logging
from studio_brain.settings import load_settings
from studio_brain.web.app import create_app
from tests.fixtures.auth import TEST_ADMIN_TOKEN, TEST_PROJECT_ID

pytestmark = pytest.mark.postgres

EMULATOR = "127.0.0.1:9099"


def log_stream() -> io.StringIO:
    """The log, in a stream of this test's own: other tests (and the CLI) reconfigure logging process-wide."""
    stream = io.StringIO()
    configure_logging(level="info", fmt="console", stream=stream)
    return stream


def _b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def emulator_token(uid: str = "staff-1", *, project: str = TEST_PROJECT_ID, **claims: Any) -> str:
    """What the Auth emulator issues: ``alg: none``, an empty signature, the project's iss/aud."""
    now = int(time.time())
    body = {
        "iss": f"https://securetoken.google.com/{project}",
        "aud": project,
        "auth_time": now,
        "user_id": uid,
        "sub": uid,
        "iat": now,
        "exp": now + 3600,
        "email": f"{uid}@example.com",
        "firebase": {"identities": {}, "sign_in_provider": "password"},
        "staff": True,
        **claims,
    }
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(body)}."


def portal(token: str) -> dict[str, str]:
    return {
        "authorization": f"Bearer {token}",
        "x-studio-brain-admin-token": TEST_ADMIN_TOKEN,
        "content-type": "application/json",
    }


@pytest.fixture
async def emulator_brain(
    database_url: str, auth_env: None, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Brain]:
    monkeypatch.setenv("STUDIO_BRAIN_DATABASE_URL", database_url)
    monkeypatch.setenv("STUDIO_BRAIN_FIREBASE_AUTH_EMULATOR", "true")
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", EMULATOR)
    async with open_brain(load_settings(), target=DatabaseTarget(url=database_url, embedded=None)) as brain:
        yield brain


async def _client(brain: Brain) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(brain=brain)), base_url="http://127.0.0.1:8000"
    )


async def test_an_emulator_token_is_refused_when_the_setting_is_off(
    api_client: httpx.AsyncClient,
) -> None:
    response = await api_client.get("/api/control-tower/state", headers=portal(emulator_token()))
    assert response.status_code == 401
    assert response.json()["reasonCode"] == "AUTH_TOKEN_INVALID"


async def test_with_the_setting_on_the_portal_calls_pass_with_emulator_tokens_of_two_staff(
    emulator_brain: Brain,
) -> None:
    async with await _client(emulator_brain) as client:
        state = await client.get("/api/control-tower/state", headers=portal(emulator_token("staff-1")))
        assert state.status_code == 200, state.text
        created = await client.post(
            "/api/capabilities/proposals",
            json={
                "capabilityId": "firestore.batch.close",
                "rationale": "Member picked up the whole batch today",
                "requestInput": {"batchId": "batch-7", "tenantId": "staff-1"},
            },
            headers=portal(emulator_token("staff-1")),
        )
        assert created.status_code == 201, created.text
        proposal = created.json()["proposal"]
        assert proposal["requestedBy"] == "staff-1"
        approved = await client.post(
            f"/api/capabilities/proposals/{proposal['id']}/approve",
            json={"rationale": "checked with the member"},
            headers=portal(emulator_token("staff-2")),
        )
        assert approved.status_code == 200, approved.text
        assert approved.json()["proposal"]["approvedBy"] == "staff-2"


@pytest.mark.parametrize(
    ("claims", "project"),
    [
        ({}, "another-project"),  # issued for another project
        ({"exp": int(time.time()) - 3600}, TEST_PROJECT_ID),  # expired
        ({"iat": int(time.time()) + 3600}, TEST_PROJECT_ID),  # issued in the future
        ({"sub": ""}, TEST_PROJECT_ID),  # no subject
    ],
)
async def test_with_the_setting_on_a_bad_emulator_token_is_still_refused(
    emulator_brain: Brain, claims: dict[str, Any], project: str
) -> None:
    async with await _client(emulator_brain) as client:
        token = emulator_token(project=project, **claims)
        response = await client.get("/api/control-tower/state", headers=portal(token))
    assert response.status_code == 401
    assert response.json()["reasonCode"] == "AUTH_TOKEN_INVALID"


async def test_with_the_setting_on_a_warning_is_logged_at_start_and_readyz_details_carry_it(
    emulator_brain: Brain,
) -> None:
    stream = log_stream()
    async with await _client(emulator_brain) as client:
        started = stream.getvalue()
        assert "auth.firebase_emulator.enabled" in started
        assert "warning" in started
        detailed = (await client.get("/readyz", headers=portal(emulator_token()))).json()
        anonymous = (await client.get("/readyz")).json()
    assert "emulator" in detailed["checks"]["authEmulator"]["warning"].lower()
    assert anonymous["checks"]["authEmulator"] == {"ok": True}


async def test_the_setting_is_refused_without_the_emulator_variable_or_off_loopback(
    database_url: str, auth_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUDIO_BRAIN_DATABASE_URL", database_url)
    monkeypatch.setenv("STUDIO_BRAIN_FIREBASE_AUTH_EMULATOR", "true")
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    async with open_brain(load_settings(), target=DatabaseTarget(url=database_url, embedded=None)) as brain:
        with pytest.raises(ConfigError, match="FIREBASE_AUTH_EMULATOR_HOST"):
            create_app(brain=brain)
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", EMULATOR)
    monkeypatch.setenv("STUDIO_BRAIN_HOST", "0.0.0.0")
    async with open_brain(load_settings(), target=DatabaseTarget(url=database_url, embedded=None)) as brain:
        with pytest.raises(ConfigError, match="not loopback"):
            create_app(brain=brain)
