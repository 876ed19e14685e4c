"""The routes' auth dependencies read credentials from the request (issue 18: no Security() parameters to
solve per request), and the OpenAPI document still names the three ways to authenticate on every operation
that authenticates, exactly as FastAPI wrote it when the schemes were parameters."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio_brain.settings import load_settings
from studio_brain.web.app import create_app

ANY_OF_THE_THREE = [{"HTTPBearer": []}, {"APIKeyHeader": []}, {"APIKeyCookie": []}]
#: public on purpose (tests/integration/test_auth_http.py names why)
PUBLIC = {"/healthz", "/readyz", "/.well-known/jwks.json", "/api/v1/attestations/jwks"}


@pytest.fixture
def document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    monkeypatch.setenv("STUDIO_BRAIN_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/unused")
    monkeypatch.setenv("STUDIO_BRAIN_HOME", str(tmp_path))
    monkeypatch.setenv("STUDIO_BRAIN_ADMIN_TOKEN", "t" * 32)
    return create_app(settings=load_settings()).openapi()


def test_every_operation_but_the_public_ones_names_the_three_ways_to_authenticate(
    document: dict[str, object],
) -> None:
    paths = document["paths"]
    assert isinstance(paths, dict)
    checked = 0
    for path, operations in paths.items():
        for method, operation in operations.items():
            if path in PUBLIC:
                assert "security" not in operation, (method, path)
            else:
                assert operation.get("security") == ANY_OF_THE_THREE, (method, path)
                checked += 1
    assert checked > 70  # the native API and the Portal's paths


def test_the_three_security_schemes_are_described_as_before(document: dict[str, object]) -> None:
    components = document["components"]
    assert isinstance(components, dict)
    assert components["securitySchemes"] == {
        "HTTPBearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "Firebase ID token, a personal token (sbpt_…) or an agent token (sbat_…)",
        },
        "APIKeyHeader": {
            "type": "apiKey",
            "in": "header",
            "name": "x-studio-brain-admin-token",
            "description": "The local admin token",
        },
        "APIKeyCookie": {
            "type": "apiKey",
            "in": "cookie",
            "name": "studio_brain_session",
            "description": "Cockpit session cookie",
        },
    }
