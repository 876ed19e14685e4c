"""Credential shapes are found, refused and redacted by one detector set (domain/secrets.py)."""

from __future__ import annotations

import json

import pytest

from studio_brain.domain.errors import InputInvalid
from studio_brain.domain.reasons import ReasonCode
from studio_brain.domain.secrets import (
    SecretInPayload,
    SecretKind,
    contains_secret,
    ensure_no_secrets,
    find_secrets,
    redact,
    redact_value,
    scan,
)
from studio_brain.logging import redact_text

# Built from pieces so no scanner flags this file as holding a credential.
STRIPE_LIVE = "sk_" + "live_" + "51HqLyjWDarjtT1zdp7dcXaBcDeFgHiJk"
STRIPE_RESTRICTED = "rk_" + "live_" + "51HqLyjWDarjtT1zdp7dcXaBcDe"
STRIPE_TEST = "sk_" + "test_" + "4eC39HqLyjWDarjtT1zdp7dc"
WEBHOOK = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
GOOGLE_API_KEY = "AIza" + "SyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe"
JWT = (
    "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ"
    + ".eyJzdWIiOiJhbGljZSIsImF1ZCI6InN0dWRpbyJ9"
    + ".c2lnbmF0dXJlLWJ5dGVzLWhlcmU"
)
PEM = "-----BEGIN " + "PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END " + "PRIVATE KEY-----"
SERVICE_ACCOUNT = (
    '{"type": "service_account", "project_id": "studio", "private_key_id": "abc", '
    '"private_key": "-----BEGIN ' + "PRIVATE KEY-----\\nMIIEvQ\\n-----END " + 'PRIVATE KEY-----\\n"}'
)
BEARER = "Bearer " + "ya29.a0AfH6SMBx3ZlQ9t2k"
AGENT = "sbat_" + "Zm9vYmFyYmF6cXV4MTIzNDU2"

SAMPLES = [
    (STRIPE_LIVE, SecretKind.STRIPE_KEY),
    (STRIPE_RESTRICTED, SecretKind.STRIPE_KEY),
    (STRIPE_TEST, SecretKind.STRIPE_KEY),
    (WEBHOOK, SecretKind.STRIPE_WEBHOOK_SECRET),
    (GOOGLE_API_KEY, SecretKind.GOOGLE_API_KEY),
    (JWT, SecretKind.JWT),
    (PEM, SecretKind.PRIVATE_KEY),
    (SERVICE_ACCOUNT, SecretKind.GOOGLE_SERVICE_ACCOUNT),
    (BEARER, SecretKind.BEARER_TOKEN),
    (AGENT, SecretKind.AGENT_TOKEN),
    ("postgresql://brain:hunter2@db.local/studio", SecretKind.URL_PASSWORD),
]


@pytest.mark.parametrize(("secret", "kind"), SAMPLES, ids=[k.name for _, k in SAMPLES])
def test_each_credential_shape_is_found_inside_ordinary_text(secret: str, kind: SecretKind) -> None:
    text = f"please remember {secret} for later"
    assert kind in {f.kind for f in find_secrets(text)}
    assert contains_secret(text)
    assert secret not in redact(text)


@pytest.mark.parametrize(
    "text",
    [
        "Kiln 2 reached cone 6 at 14:05; glaze test tiles look good",
        "sk_ is how the Stripe docs name secret keys",
        "Basic understanding of glaze chemistry needed",
        "Bearer bonds are not accepted at the front desk",
        "task_live_updates_enabled",
        "https://example.com/path?x=1",
        "eyJhbGciOi alone is not a token",
        "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2",
    ],
)
def test_ordinary_studio_text_is_not_a_secret(text: str) -> None:
    assert find_secrets(text) == []
    assert redact(text) == text


def test_redaction_keeps_a_harmless_prefix_so_a_log_says_what_was_there() -> None:
    assert redact(f"key {STRIPE_LIVE} end") == "key sk_live_*** end"
    assert redact(f"{BEARER}") == "Bearer ***"


def test_a_secret_in_a_field_name_is_found_and_never_quoted_in_the_location() -> None:
    findings = scan({"notes": {STRIPE_LIVE: "x"}, "list": ["fine", WEBHOOK]})
    assert {f.kind for f in findings} == {SecretKind.STRIPE_KEY, SecretKind.STRIPE_WEBHOOK_SECRET}
    assert all(STRIPE_LIVE not in f.location for f in findings)
    assert "body.list[1]" in {f.location for f in findings}


def test_ensure_no_secrets_refuses_with_its_reason_code_and_never_echoes_the_value() -> None:
    with pytest.raises(SecretInPayload) as refused:
        ensure_no_secrets({"rationale": f"use {STRIPE_RESTRICTED}", STRIPE_LIVE: 1}, location="body")
    err = refused.value
    assert isinstance(err, InputInvalid)
    assert err.reason_code is ReasonCode.SECRET_IN_PAYLOAD
    assert STRIPE_RESTRICTED not in err.message
    assert STRIPE_LIVE not in err.message
    assert "stripe" in err.message
    ensure_no_secrets({"rationale": "turn the kiln vent on before firing"})


def test_redact_value_masks_strings_and_keys_of_a_json_value() -> None:
    assert redact_value({STRIPE_LIVE: [f"x {JWT}"], "n": 3}) == {"sk_live_***": ["x eyJ***"], "n": 3}


def test_log_redaction_uses_the_same_detectors() -> None:
    for secret, _ in SAMPLES:
        assert secret not in redact_text(f"event text {secret}")
    # and keeps its own: device tokens in URLs
    assert redact_text("GET http://hub/apps/api/7/devices?access_token=abc123") == (
        "GET http://hub/apps/api/7/devices?access_token=***"
    )


def test_every_sample_detect_secrets_flags_is_flagged_here_too() -> None:
    # detect-secrets' own plugins (Stripe, JWT, private keys) are the reference the patterns widen.
    from detect_secrets.plugins.jwt import JwtTokenDetector
    from detect_secrets.plugins.private_key import PrivateKeyDetector
    from detect_secrets.plugins.stripe import StripeDetector

    stripe_24 = "sk_" + "live_" + "a1B2c3D4e5F6g7H8i9J0k1L2"
    lines = [
        stripe_24,
        "rk_" + "live_" + "a1B2c3D4e5F6g7H8i9J0k1L2",
        JWT,
        PEM.splitlines()[0],
        SERVICE_ACCOUNT,
    ]
    plugins = [StripeDetector(), JwtTokenDetector(), PrivateKeyDetector()]
    flagged_by_reference = [
        line for line in lines if any(list(plugin.analyze_string(line)) for plugin in plugins)
    ]
    assert len(flagged_by_reference) == len(lines)
    assert all(contains_secret(line) for line in flagged_by_reference)


def test_passkey_ceremony_bodies_skip_the_credential_scan_but_not_the_nul_check() -> None:
    from studio_brain.web.middleware import InputRefused, _check_body

    # a blob a detector matches (inside longer base64 the look-behind already keeps AIza… from matching)
    blob = json.dumps({"response": {"clientExtensionResults": GOOGLE_API_KEY}}).encode()
    with pytest.raises(InputRefused):
        _check_body("application/json", blob)
    _check_body("application/json", blob, secrets_allowed=True)
    with pytest.raises(InputRefused) as refused:
        _check_body("application/json", b'{"id": "a\\u0000b"}', secrets_allowed=True)
    assert refused.value.reason_code is ReasonCode.INPUT_TEXT_INVALID
