"""``studio-brain attestations``: print the JWKS of the approval-attestation key, and verify one
attestation offline (a compact JWS, an ``approvedBy`` value from a pilot action doc, or the notes of a
batch-close timeline event) read from stdin or a file — an attestation is JWT-shaped, so the command line's
credential guard (issue 12) refuses it as an argument."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from studio_brain.bootstrap import attestation_signer, jwks_from_file, verify_attestation
from studio_brain.cli.common import EXIT_FAILURE, fail, settings_or_exit

attestations_app = typer.Typer(help="Approval attestations sent with cloud writes (docs/cloud-writes.md).")
MARKER = "studio-brain-approval: "


def token_from(text: str) -> str:
    """The compact JWS inside what the studio has at hand: the token itself, the ``approvedBy`` JSON of a
    pilot action doc, or batch-close notes ending in ``studio-brain-approval: <token>``."""
    text = text.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError:
            fail("the input looks like JSON but is not valid JSON", code=2)
        if isinstance(value, dict) and isinstance(value.get("attestation"), str):
            return str(value["attestation"])
        fail("the JSON has no attestation field", code=2)
    if MARKER in text:
        return text.rsplit(MARKER, 1)[1].split()[0]
    return text


@attestations_app.command("jwks")
def jwks_command() -> None:
    """Print the JWKS (public key) studios verify attestations with; creates the key at first use."""
    typer.echo(json.dumps(attestation_signer(settings_or_exit()).jwks(), indent=2))


@attestations_app.command("verify")
def verify_command(
    attestation: Annotated[
        str,
        typer.Argument(
            help="'-' reads it from stdin (the usual way), or a file path prefixed with @. A token typed as "
            "an argument is refused by the command line's credential guard: an attestation is JWT-shaped."
        ),
    ] = "-",
    jwks: Annotated[
        Path | None, typer.Option("--jwks", help="A JWKS file (default: this brain's own public key).")
    ] = None,
    proposal: Annotated[str | None, typer.Option("--proposal", help="The proposal id it must name.")] = None,
    input_hash: Annotated[
        str | None, typer.Option("--input-hash", help="The input hash it must name.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Check one attestation offline: signature, format and (optionally) what it must say. Exit 1 if invalid."""
    if attestation == "-":
        text = typer.get_text_stream("stdin").read()
    elif attestation.startswith("@"):
        try:
            text = Path(attestation[1:]).read_text(encoding="utf-8")
        except OSError as err:
            fail(f"cannot read {attestation[1:]}: {err.strerror}", code=2)
    else:
        text = attestation
    if jwks is not None:
        document: dict[str, Any] = jwks_from_file(jwks)
    else:
        document = attestation_signer(settings_or_exit()).jwks()
    expected: dict[str, Any] = {}
    if proposal:
        expected["proposalId"] = proposal
    if input_hash:
        expected["inputHash"] = input_hash
    result = verify_attestation(token_from(text), document, expected=expected or None)
    if as_json:
        typer.echo(json.dumps(result.as_json(), indent=2))
    else:
        typer.echo(("valid" if result.valid else "INVALID") + f": {result.reason}")
        if result.claims is not None:
            for name, value in result.claims.as_json().items():
                typer.echo(f"  {name}: {value}")
    if not result.valid:
        raise typer.Exit(EXIT_FAILURE)


def register(app: typer.Typer) -> None:
    app.add_typer(attestations_app, name="attestations")
