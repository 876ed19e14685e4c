"""Credentials below HTTP: the admin token file, claims → Principal, and Google certificates cached by max-age."""

from __future__ import annotations

import json
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import SecretStr

from studio_brain.adapters.admin_token import ADMIN_TOKEN_FILE, load_or_create_admin_token
from studio_brain.adapters.firebase_auth import FirebaseTokenVerifier, principal_from_claims
from studio_brain.domain.audit import ActorType
from studio_brain.domain.errors import ConfigError, Unauthenticated
from tests.fakes import FakeClock
from tests.fixtures.auth import TEST_PROJECT_ID, SigningKey, TokenMinter


def test_an_admin_token_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    first = load_or_create_admin_token(None, tmp_path)
    second = load_or_create_admin_token(None, tmp_path)
    assert first.get_secret_value() == second.get_secret_value()
    assert len(first.get_secret_value()) >= 32
    mode = stat.S_IMODE((tmp_path / ADMIN_TOKEN_FILE).stat().st_mode)
    assert mode == 0o600


def test_a_configured_admin_token_wins_and_nothing_is_written(tmp_path: Path) -> None:
    token = load_or_create_admin_token(SecretStr("configured-token-0123456789"), tmp_path)
    assert token.get_secret_value() == "configured-token-0123456789"
    assert not (tmp_path / ADMIN_TOKEN_FILE).exists()


def test_a_short_admin_token_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least 16"):
        load_or_create_admin_token(SecretStr("short"), tmp_path)
    (tmp_path / ADMIN_TOKEN_FILE).write_text("tiny\n")
    with pytest.raises(ConfigError, match="shorter than"):
        load_or_create_admin_token(None, tmp_path)


@pytest.mark.parametrize(
    ("claims", "roles", "actor_type"),
    [
        ({"staff": True}, {"staff"}, ActorType.STAFF),
        ({"roles": ["member", "staff"]}, {"staff"}, ActorType.STAFF),
        ({"admin": True}, {"admin"}, ActorType.STAFF),
        ({"roles": ["admin", "staff"]}, {"admin", "staff"}, ActorType.STAFF),
        ({"staff": "true"}, set(), ActorType.HUMAN),  # a string is not the boolean claim
        ({"roles": "staff"}, set(), ActorType.HUMAN),  # roles must be a list
        ({}, set(), ActorType.HUMAN),
    ],
)
def test_roles_come_from_the_staff_admin_and_roles_claims(
    claims: dict[str, object], roles: set[str], actor_type: ActorType
) -> None:
    principal = principal_from_claims({"sub": "uid-1", **claims}, tenant_id="studio-a")
    assert principal.roles == frozenset(roles)
    assert principal.actor_type is actor_type


def test_the_tenant_is_the_configured_one_whatever_the_token_claims() -> None:
    principal = principal_from_claims(
        {"sub": "uid-1", "tenantId": "studio-b", "staff": True}, tenant_id="studio-a"
    )
    assert principal.tenant_id == "studio-a"


def test_a_token_without_a_subject_is_refused() -> None:
    with pytest.raises(Unauthenticated):
        principal_from_claims({"staff": True}, tenant_id="studio-a")


class _CertServer:
    """Google's certificate endpoint, on loopback: counts fetches, answers with a Cache-Control max-age."""

    def __init__(self, certs: dict[str, str], max_age: int) -> None:
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                body = json.dumps(certs).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("cache-control", f"public, max-age={max_age}, must-revalidate")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/certs"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def cert_server(signing_key: SigningKey) -> Iterator[_CertServer]:
    server = _CertServer({signing_key.key_id: signing_key.certificate_pem}, max_age=600)
    yield server
    server.close()


async def test_google_certificates_are_fetched_once_and_refetched_after_max_age(
    cert_server: _CertServer, tokens: TokenMinter
) -> None:
    clock = FakeClock(datetime.now(UTC))  # google-auth checks expiry against the real clock
    verifier = FirebaseTokenVerifier(
        project_id=TEST_PROJECT_ID, tenant_id="studio-a", clock=clock, certs_url=cert_server.url
    )
    token = tokens.token("uid-1", staff=True)
    assert (await verifier.verify(token)).actor_id == "uid-1"
    await verifier.verify(token)
    assert cert_server.hits == 1
    clock.advance(601)
    await verifier.verify(token)
    assert cert_server.hits == 2


async def test_unreachable_certificates_are_a_401_not_a_crash(tokens: TokenMinter) -> None:
    verifier = FirebaseTokenVerifier(
        project_id=TEST_PROJECT_ID,
        tenant_id="studio-a",
        clock=FakeClock(),
        certs_url="http://127.0.0.1:9/certs",
    )
    with pytest.raises(Unauthenticated) as caught:
        await verifier.verify(tokens.token("uid-1", staff=True))
    assert caught.value.reason_code == "AUTH_CERTS_UNAVAILABLE"


async def test_a_malformed_certs_file_is_a_config_error(tmp_path: Path, tokens: TokenMinter) -> None:
    bad = tmp_path / "certs.json"
    bad.write_text("[1, 2]")
    verifier = FirebaseTokenVerifier(
        project_id=TEST_PROJECT_ID, tenant_id="studio-a", clock=FakeClock(), certs_file=bad
    )
    with pytest.raises(ConfigError, match="STUDIO_BRAIN_FIREBASE_CERTS_FILE"):
        await verifier.verify(tokens.token("uid-1", staff=True))
