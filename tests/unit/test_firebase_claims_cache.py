"""Verified Firebase tokens are remembered until their exp, by hash, bounded, and only while their key is
still trusted (issue 18: authenticate the Portal's repeated token without a fresh RS256 check each time)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from studio_brain.adapters import firebase_auth
from studio_brain.adapters.firebase_auth import FirebaseTokenVerifier
from studio_brain.domain.errors import Unauthenticated
from tests.fakes import FakeClock
from tests.fixtures.auth import TEST_PROJECT_ID, SigningKey, TokenMinter, make_signing_key


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the signature checks the verifier actually runs."""
    seen: list[str] = []
    real = firebase_auth.google_jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(firebase_auth.google_jwt, "decode", counting)
    return seen


def _verifier(certs_file: Path, clock: FakeClock, **kwargs: Any) -> FirebaseTokenVerifier:
    return FirebaseTokenVerifier(
        project_id=TEST_PROJECT_ID, tenant_id="studio-a", clock=clock, certs_file=certs_file, **kwargs
    )


async def test_the_same_token_is_checked_once_and_then_answered_from_memory(
    firebase_certs_file: Path, tokens: TokenMinter, decodes: list[str]
) -> None:
    verifier = _verifier(firebase_certs_file, FakeClock(datetime.now(UTC)))
    token = tokens.token("uid-1", staff=True)
    first = await verifier.verify(token)
    second = await verifier.verify(token)
    assert first == second
    assert first.actor_id == "uid-1"
    assert "staff" in first.roles
    assert len(decodes) == 1


async def test_the_raw_token_is_not_what_the_cache_keeps(
    firebase_certs_file: Path, tokens: TokenMinter
) -> None:
    verifier = _verifier(firebase_certs_file, FakeClock(datetime.now(UTC)))
    token = tokens.token("uid-1", staff=True)
    await verifier.verify(token)
    kept = verifier._verified
    assert all(isinstance(k, bytes) and len(k) == 32 for k in kept)
    assert token not in repr(kept)
    assert token.split(".")[2] not in repr(kept)


async def test_a_remembered_token_is_checked_afresh_once_its_exp_has_passed(
    firebase_certs_file: Path, tokens: TokenMinter, decodes: list[str]
) -> None:
    clock = FakeClock(datetime.now(UTC))
    verifier = _verifier(firebase_certs_file, clock)
    token = tokens.token("uid-1", staff=True, expires_in=120)
    await verifier.verify(token)
    clock.advance(119)
    await verifier.verify(token)
    assert len(decodes) == 1
    clock.advance(2)  # past exp by our clock: not from memory any more
    await verifier.verify(token)
    assert len(decodes) == 2


async def test_a_tampered_copy_of_a_remembered_token_is_still_refused(
    firebase_certs_file: Path, tokens: TokenMinter
) -> None:
    verifier = _verifier(firebase_certs_file, FakeClock(datetime.now(UTC)))
    token = tokens.token("uid-1", staff=True)
    await verifier.verify(token)
    head, body, signature = token.split(".")
    forged_body = json.loads(firebase_auth.base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    forged_body["user_id"] = forged_body["sub"] = "uid-2"
    forged = ".".join(
        [
            head,
            firebase_auth.base64.urlsafe_b64encode(json.dumps(forged_body).encode()).decode().rstrip("="),
            signature,
        ]
    )
    with pytest.raises(Unauthenticated):
        await verifier.verify(forged)


async def test_a_withdrawn_signing_key_stops_its_remembered_tokens(
    tmp_path: Path, signing_key: SigningKey, tokens: TokenMinter
) -> None:
    certs = tmp_path / "certs.json"
    certs.write_text(json.dumps({signing_key.key_id: signing_key.certificate_pem}), encoding="utf-8")
    clock = FakeClock(datetime.now(UTC))
    verifier = _verifier(certs, clock)
    token = tokens.token("uid-1", staff=True)
    await verifier.verify(token)
    other = make_signing_key("rotated-key")
    certs.write_text(json.dumps({other.key_id: other.certificate_pem}), encoding="utf-8")
    clock.advance(61)  # the certificates file is re-read at most once a minute
    with pytest.raises(Unauthenticated):
        await verifier.verify(token)


async def test_the_cache_holds_at_most_its_size(firebase_certs_file: Path, tokens: TokenMinter) -> None:
    verifier = _verifier(firebase_certs_file, FakeClock(datetime.now(UTC)), cache_size=2)
    for uid in ("uid-1", "uid-2", "uid-3", "uid-4"):
        await verifier.verify(tokens.token(uid, staff=True))
    assert len(verifier._verified) == 2
