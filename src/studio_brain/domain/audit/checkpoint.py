"""Signed checkpoints: "tenant T's chain had ``hash`` at ``seq``", the exact bytes an Ed25519 signature
covers (:func:`checkpoint_message`), and their JSON form (checkpoint file, export manifests)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from studio_brain.domain.errors import InputInvalid
from studio_brain.domain.hashing import canonical_json, to_json_value


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditCheckpoint:
    """A signed statement "tenant T's chain had ``hash`` at ``seq``", kept in the DB and in a file."""

    tenant_id: str
    seq: int
    hash: str
    at: datetime
    #: Ed25519 signature (hex) over :func:`checkpoint_message`
    signature: str
    #: the signer's raw Ed25519 public key (hex)
    public_key: str


def checkpoint_message(*, tenant_id: str, seq: int, hash: str, at: datetime) -> bytes:
    """The bytes a checkpoint signature covers: canonical JSON of ``{tenantId, seq, hash, at}``."""
    return canonical_json({"tenantId": tenant_id, "seq": seq, "hash": hash, "at": at})


def checkpoint_to_json(checkpoint: AuditCheckpoint) -> dict[str, Any]:
    return {
        "tenantId": checkpoint.tenant_id,
        "seq": checkpoint.seq,
        "hash": checkpoint.hash,
        "at": to_json_value(checkpoint.at),
        "signature": checkpoint.signature,
        "publicKey": checkpoint.public_key,
    }


def checkpoint_from_json(data: object) -> AuditCheckpoint:
    """A checkpoint read from a file or manifest; InputInvalid when its shape is wrong."""
    if not isinstance(data, dict):
        raise InputInvalid("a checkpoint must be a JSON object")
    try:
        tenant_id, seq, hash_, at_text = data["tenantId"], data["seq"], data["hash"], data["at"]
        signature, public_key = data["signature"], data["publicKey"]
    except KeyError as err:
        raise InputInvalid(f"a checkpoint lacks {err.args[0]!r}") from None
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise InputInvalid("a checkpoint has a non-integer seq")
    if not all(isinstance(v, str) for v in (tenant_id, hash_, at_text, signature, public_key)):
        raise InputInvalid("a checkpoint has a non-string field")
    try:
        at = datetime.fromisoformat(at_text)
    except ValueError:
        raise InputInvalid(f"a checkpoint has an unreadable time {at_text!r}") from None
    if at.tzinfo is None:
        raise InputInvalid(f"a checkpoint has a time without zone {at_text!r}")
    return AuditCheckpoint(
        tenant_id=tenant_id, seq=seq, hash=hash_, at=at, signature=signature, public_key=public_key
    )
