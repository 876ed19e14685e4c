"""Approval attestations: a compact EdDSA JWS over exactly seven claims, checked with the published JWKS."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from studio_brain.adapters.attestation_keys import AttestationSigner, check_signature, verify_token
from studio_brain.domain import attestation
from studio_brain.domain.attestation import CLAIM_NAMES, b64url, b64url_decode, claims_for

CLAIMS = claims_for(
    proposal_id="01938a7e-6c1f-7a51-9d2e-5b0c1f2a3b4c",
    capability_id="firestore.ops_note.append",
    tenant_id="monsoonfire-main",
    input_hash="ab" * 32,
    approvers=["manager", "owner", "manager"],
    approved_at=datetime(2026, 11, 25, 18, 0, tzinfo=UTC),
    expires_at=datetime(2026, 11, 26, 2, 0, tzinfo=UTC),
)


@pytest.fixture
def signer(tmp_path: Path) -> AttestationSigner:
    return AttestationSigner(tmp_path / "keys" / "attestation-ed25519.pem")


def test_the_key_is_created_private_and_only_its_public_half_is_published(
    signer: AttestationSigner,
) -> None:
    document = signer.jwks()
    assert stat.S_IMODE(signer.path.stat().st_mode) == 0o600
    (key,) = document["keys"]
    assert key == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": key["x"],
        "kid": signer.key_id,
        "use": "sig",
        "alg": "EdDSA",
    }
    assert "d" not in key  # no private member
    assert "PRIVATE" not in repr(signer)


def test_an_attestation_verifies_with_the_published_key(signer: AttestationSigner) -> None:
    token = signer.attest(CLAIMS)
    header = json.loads(b64url_decode(token.split(".")[0]))
    assert header == {"alg": "EdDSA", "kid": signer.key_id, "typ": "studio-brain-approval+jws"}
    result = verify_token(token, signer.jwks())
    assert result.valid, result.reason
    assert result.claims == CLAIMS
    assert result.claims is not None
    assert result.claims.approvers == ("manager", "owner")  # distinct and sorted: one form, one signature


@pytest.mark.parametrize("claim", CLAIM_NAMES)
def test_changing_any_claim_breaks_the_signature(signer: AttestationSigner, claim: str) -> None:
    header, payload, signature = signer.attest(CLAIMS).split(".")
    claims = json.loads(b64url_decode(payload))
    claims[claim] = (
        ["intruder"]
        if claim == "approvers"
        else (
            "cd" * 32
            if claim == "inputHash"
            else ("2026-11-27T00:00:00+00:00" if claim.endswith("At") else claims[claim] + "x")
        )
    )
    forged = ".".join([header, b64url(attestation.canonical_json(claims)), signature])
    result = verify_token(forged, signer.jwks())
    assert not result.valid
    assert result.reason == "bad signature"


def test_a_token_from_another_key_or_with_another_algorithm_is_refused(
    signer: AttestationSigner, tmp_path: Path
) -> None:
    other = AttestationSigner(tmp_path / "other.pem")
    token = other.attest(CLAIMS)
    assert verify_token(token, signer.jwks()).reason.startswith("no published key")
    # a JWKS that renames someone else's key cannot vouch for it
    renamed = {"keys": [{**signer.jwks()["keys"][0], "kid": other.key_id}]}
    assert not verify_token(token, renamed).valid
    _, payload, signature = signer.attest(CLAIMS).split(".")
    none_header = b64url(
        json.dumps({"alg": "none", "kid": signer.key_id, "typ": "studio-brain-approval+jws"}).encode()
    )
    assert verify_token(f"{none_header}.{payload}.{signature}", signer.jwks()).reason == "alg must be EdDSA"
    for bad in ("", "a.b", "a.b.c.d", "!!!.???.***"):
        assert not verify_token(bad, signer.jwks()).valid


def test_expected_claims_pin_what_the_token_must_say(signer: AttestationSigner) -> None:
    token = signer.attest(CLAIMS)
    assert verify_token(token, signer.jwks(), expected={"proposalId": CLAIMS.proposal_id}).valid
    pinned = verify_token(token, signer.jwks(), expected={"inputHash": "cd" * 32})
    assert not pinned.valid
    assert "inputHash" in pinned.reason


def test_extra_or_missing_claims_are_not_an_attestation() -> None:
    with pytest.raises(ValueError, match="claims differ"):
        attestation.ApprovalClaims.from_json({**CLAIMS.as_json(), "note": "extra"})
    missing = CLAIMS.as_json()
    del missing["expiresAt"]
    with pytest.raises(ValueError, match="claims differ"):
        attestation.ApprovalClaims.from_json(missing)


def test_the_signature_check_never_raises_on_garbage() -> None:
    assert check_signature(b"short", b"m", b"s") is False
    assert check_signature(b"\x00" * 32, b"m", b"\x00" * 64) is False
