"""``studio-brain attestations``: the published JWKS and an offline check of one attestation, from the
forms a studio finds in Firestore (the token, a pilot action's ``approvedBy``, batch-close notes)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from studio_brain.adapters.attestation_keys import AttestationSigner
from studio_brain.cli.attestations import attestations_app
from studio_brain.domain.attestation import b64url, b64url_decode, canonical_json, claims_for

CLAIMS = claims_for(
    proposal_id="01938a7e-6c1f-7a51-9d2e-5b0c1f2a3b4c",
    capability_id="firestore.ops_note.append",
    tenant_id="monsoonfire-main",
    input_hash="ab" * 32,
    approvers=["manager"],
    approved_at=datetime(2026, 11, 25, 18, 0, tzinfo=UTC),
    expires_at=datetime(2026, 11, 26, 2, 0, tzinfo=UTC),
)


@pytest.fixture
def signer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AttestationSigner:
    monkeypatch.setenv("STUDIO_BRAIN_HOME", str(tmp_path / "home"))
    signer = AttestationSigner(tmp_path / "home" / "keys" / "attestation-ed25519.pem")
    signer.jwks()  # the key exists before the CLI runs (its creation is logged)
    return signer


def test_jwks_prints_the_public_key_of_this_brain(signer: AttestationSigner) -> None:
    result = CliRunner().invoke(attestations_app, ["jwks"])
    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout) == signer.jwks()


def test_verify_accepts_the_token_the_approved_by_json_and_batch_close_notes(
    signer: AttestationSigner,
) -> None:
    token = signer.attest(CLAIMS)
    forms = [
        token,
        json.dumps({"approvers": ["manager"], "attestation": token}),
        f"Picked up by the member\n\nstudio-brain-approval: {token}",
    ]
    for form in forms:
        result = CliRunner().invoke(attestations_app, ["verify", form, "--proposal", CLAIMS.proposal_id])
        assert result.exit_code == 0, result.stdout
        assert result.stdout.startswith("valid: signature valid")
        assert "approvers: ['manager']" in result.stdout


def test_verify_fails_with_exit_1_when_a_field_changed_or_the_key_is_not_the_published_one(
    signer: AttestationSigner, tmp_path: Path
) -> None:
    header, payload, signature = signer.attest(CLAIMS).split(".")
    claims = json.loads(b64url_decode(payload))
    claims["approvers"] = ["owner"]  # who approved, rewritten
    forged = ".".join([header, b64url(canonical_json(claims)), signature])
    result = CliRunner().invoke(attestations_app, ["verify", forged, "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["reason"] == "bad signature"

    published = tmp_path / "jwks.json"
    published.write_text(json.dumps(AttestationSigner(tmp_path / "another.pem").jwks()))
    result = CliRunner().invoke(attestations_app, ["verify", signer.attest(CLAIMS), "--jwks", str(published)])
    assert result.exit_code == 1
    assert "no published key" in result.stdout
    wrong = CliRunner().invoke(attestations_app, ["verify", signer.attest(CLAIMS), "--input-hash", "cd" * 32])
    assert wrong.exit_code == 1


def test_a_token_on_the_command_line_is_refused_by_the_credential_guard_so_stdin_and_files_carry_it(
    signer: AttestationSigner, tmp_path: Path
) -> None:
    from studio_brain.cli.input_guard import argument_problem

    token = signer.attest(CLAIMS)
    assert argument_problem(["attestations", "verify", token]) is not None  # JWT-shaped: never an argument
    assert argument_problem(["attestations", "verify", "-"]) is None
    piped = CliRunner().invoke(attestations_app, ["verify", "-"], input=token + "\n")
    assert piped.exit_code == 0, piped.stdout
    saved = tmp_path / "approvedBy.json"
    saved.write_text(json.dumps({"approvers": ["manager"], "attestation": token}))
    from_file = CliRunner().invoke(attestations_app, ["verify", f"@{saved}", "--json"])
    assert from_file.exit_code == 0, from_file.stdout
    assert json.loads(from_file.stdout)["claims"]["proposalId"] == CLAIMS.proposal_id
