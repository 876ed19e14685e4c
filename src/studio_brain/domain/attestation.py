"""Approval attestations: the claims a cloud write carries, their compact-JWS form, and their checks.

An attestation says, verifiably, *who approved what*: a compact JWS (RFC 7515) with ``alg: EdDSA``
(Ed25519, RFC 8037) over exactly these claims, serialised as RFC 8785 canonical JSON (ADR 0003):

    {proposalId, capabilityId, tenantId, inputHash, approvers, approvedAt, expiresAt}

The brain signs it with a key under STUDIO_BRAIN_HOME and publishes the public half as a JWKS
(``/.well-known/jwks.json``); the studio can check any pilot action in Firestore with nothing but that
document. This module is pure: it builds the signing input and parses and checks tokens; the Ed25519
operations themselves are passed in (``adapters/attestation_keys.py`` holds the key).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from studio_brain.domain.hashing import canonical_json, is_sha256_hex, sha256_hex

ALGORITHM = "EdDSA"
#: the JWS ``typ`` header: tells a verifier what kind of statement this is
TOKEN_TYPE = "studio-brain-approval+jws"  # noqa: S105 - a media type, not a secret
CLAIM_NAMES = (
    "proposalId",
    "capabilityId",
    "tenantId",
    "inputHash",
    "approvers",
    "approvedAt",
    "expiresAt",
)


def b64url(data: bytes) -> str:
    """base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """The inverse of :func:`b64url`; raises ValueError on anything that is not strict base64url."""
    if not text or any(c not in _B64URL for c in text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as err:
        raise ValueError("not base64url") from err


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True, kw_only=True, slots=True)
class ApprovalClaims:
    """What an approval attestation states. Times are ISO 8601 with an offset (UTC)."""

    proposal_id: str
    capability_id: str
    tenant_id: str
    input_hash: str
    #: the distinct people who approved, as the gateway knows them (sorted, never the requester)
    approvers: tuple[str, ...]
    approved_at: str
    expires_at: str

    def as_json(self) -> dict[str, Any]:
        return {
            "proposalId": self.proposal_id,
            "capabilityId": self.capability_id,
            "tenantId": self.tenant_id,
            "inputHash": self.input_hash,
            "approvers": list(self.approvers),
            "approvedAt": self.approved_at,
            "expiresAt": self.expires_at,
        }

    @classmethod
    def from_json(cls, value: Any) -> ApprovalClaims:
        """Strict: exactly the seven claims with the right types, else ValueError naming the problem."""
        if not isinstance(value, Mapping):
            raise ValueError("the payload is not a JSON object")
        names = set(value)
        if names != set(CLAIM_NAMES):
            missing = sorted(set(CLAIM_NAMES) - names)
            extra = sorted(names - set(CLAIM_NAMES))
            raise ValueError(f"claims differ from the format (missing {missing}, unexpected {extra})")
        for name in CLAIM_NAMES:
            if name != "approvers" and not isinstance(value[name], str):
                raise ValueError(f"claim {name} must be a string")
        approvers = value["approvers"]
        if not isinstance(approvers, list) or not all(isinstance(a, str) and a for a in approvers):
            raise ValueError("claim approvers must be a list of non-empty strings")
        if not is_sha256_hex(value["inputHash"]):
            raise ValueError("claim inputHash must be 64 lowercase hex characters")
        for name in ("approvedAt", "expiresAt"):
            try:
                parsed = datetime.fromisoformat(value[name])
            except ValueError as err:
                raise ValueError(f"claim {name} is not an ISO 8601 time") from err
            if parsed.tzinfo is None:
                raise ValueError(f"claim {name} has no UTC offset")
        return cls(
            proposal_id=value["proposalId"],
            capability_id=value["capabilityId"],
            tenant_id=value["tenantId"],
            input_hash=value["inputHash"],
            approvers=tuple(approvers),
            approved_at=value["approvedAt"],
            expires_at=value["expiresAt"],
        )

    @property
    def approved(self) -> datetime:
        return datetime.fromisoformat(self.approved_at)

    @property
    def expires(self) -> datetime:
        return datetime.fromisoformat(self.expires_at)


def claims_for(
    *,
    proposal_id: str,
    capability_id: str,
    tenant_id: str,
    input_hash: str,
    approvers: Sequence[str],
    approved_at: datetime,
    expires_at: datetime,
) -> ApprovalClaims:
    """The claims for an approved proposal: approvers de-duplicated and sorted (one order, one hash)."""
    return ApprovalClaims(
        proposal_id=proposal_id,
        capability_id=capability_id,
        tenant_id=tenant_id,
        input_hash=input_hash,
        approvers=tuple(sorted(set(approvers))),
        approved_at=approved_at.isoformat(),
        expires_at=expires_at.isoformat(),
    )


def header_for(key_id: str) -> dict[str, str]:
    return {"alg": ALGORITHM, "kid": key_id, "typ": TOKEN_TYPE}


def signing_input(claims: ApprovalClaims, key_id: str) -> bytes:
    """``BASE64URL(header) . BASE64URL(payload)`` — the bytes Ed25519 signs. Both parts are canonical JSON."""
    header = b64url(canonical_json(header_for(key_id)))
    payload = b64url(canonical_json(claims.as_json()))
    return f"{header}.{payload}".encode("ascii")


def compact(claims: ApprovalClaims, key_id: str, sign: Callable[[bytes], bytes]) -> str:
    """The compact JWS: the signing input, a dot, and the base64url Ed25519 signature over it."""
    message = signing_input(claims, key_id)
    return f"{message.decode('ascii')}.{b64url(sign(message))}"


# --- JWKS -------------------------------------------------------------------------------------------


def public_jwk(public_key: bytes) -> dict[str, str]:
    """The public key as an OKP JWK (RFC 8037) with its RFC 7638 thumbprint as ``kid``."""
    if len(public_key) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    x = b64url(public_key)
    # RFC 7638: the required members only, lexicographic order, no whitespace
    required = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"), sort_keys=True)
    kid = b64url(hashlib.sha256(required.encode("ascii")).digest())
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "use": "sig", "alg": ALGORITHM}


def jwks(public_keys: Sequence[bytes]) -> dict[str, Any]:
    return {"keys": [public_jwk(k) for k in public_keys]}


# --- parsing and verification --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class ParsedToken:
    header: dict[str, Any]
    claims: ApprovalClaims
    #: the exact bytes that were signed (the first two segments as received)
    message: bytes
    signature: bytes


@dataclass(frozen=True, kw_only=True, slots=True)
class Verification:
    """The outcome of checking one attestation. ``valid`` only when every check passed."""

    valid: bool
    reason: str
    claims: ApprovalClaims | None = None
    key_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "reason": self.reason,
            "keyId": self.key_id,
            "claims": None if self.claims is None else self.claims.as_json(),
        }


def parse(token: str) -> ParsedToken:
    """Split and decode a compact JWS (no signature check yet); ValueError says what is malformed."""
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise ValueError("a compact JWS has three dot-separated parts")
    try:
        header = json.loads(b64url_decode(parts[0]))
        payload = json.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"malformed compact JWS ({err})") from err
    if not isinstance(header, dict):
        raise ValueError("the JWS header is not a JSON object")
    claims = ApprovalClaims.from_json(payload)
    return ParsedToken(
        header=header,
        claims=claims,
        message=f"{parts[0]}.{parts[1]}".encode("ascii"),
        signature=signature,
    )


def verify(
    token: str,
    keys: Mapping[str, Any],
    check_signature: Callable[[bytes, bytes, bytes], bool],
    *,
    expected: Mapping[str, Any] | None = None,
) -> Verification:
    """Check ``token`` against a JWKS document ``keys``.

    ``check_signature(public_key, message, signature)`` is the Ed25519 verification. ``expected``
    optionally pins claims (``{"proposalId": ..., "inputHash": ...}``): a token that verifies but says
    something else is reported as such. Never raises on bad input."""
    try:
        parsed = parse(token)
    except ValueError as err:
        return Verification(valid=False, reason=str(err))
    header = parsed.header
    if header.get("alg") != ALGORITHM:
        return Verification(valid=False, reason=f"alg must be {ALGORITHM}", claims=parsed.claims)
    if header.get("typ") != TOKEN_TYPE:
        return Verification(valid=False, reason=f"typ must be {TOKEN_TYPE}", claims=parsed.claims)
    if set(header) - {"alg", "kid", "typ"}:
        return Verification(valid=False, reason="unexpected JWS header fields", claims=parsed.claims)
    kid = header.get("kid")
    if not isinstance(kid, str):
        return Verification(valid=False, reason="the JWS header names no kid", claims=parsed.claims)
    # canonical form: a token whose parts were re-encoded differently is not the one the brain issued
    if parsed.message != signing_input(parsed.claims, kid):
        return Verification(
            valid=False, reason="header or payload is not in canonical form", claims=parsed.claims, key_id=kid
        )
    key = _key(keys, kid)
    if key is None:
        return Verification(
            valid=False, reason=f"no published key with kid {kid}", claims=parsed.claims, key_id=kid
        )
    if not check_signature(key, parsed.message, parsed.signature):
        return Verification(valid=False, reason="bad signature", claims=parsed.claims, key_id=kid)
    for name, value in (expected or {}).items():
        actual = parsed.claims.as_json().get(name)
        if actual != value:
            return Verification(
                valid=False,
                reason=f"the attestation is valid but its {name} is {actual!r}, not {value!r}",
                claims=parsed.claims,
                key_id=kid,
            )
    return Verification(valid=True, reason="signature valid", claims=parsed.claims, key_id=kid)


def _key(keys: Mapping[str, Any], kid: str) -> bytes | None:
    entries = keys.get("keys")
    if not isinstance(entries, list):
        return None
    for entry in entries:
        if (
            isinstance(entry, Mapping)
            and entry.get("kid") == kid
            and entry.get("kty") == "OKP"
            and entry.get("crv") == "Ed25519"
            and isinstance(entry.get("x"), str)
        ):
            try:
                raw = b64url_decode(entry["x"])
            except ValueError:
                return None
            # the kid must be this key's own thumbprint: a JWKS cannot rename another key
            if len(raw) == 32 and public_jwk(raw)["kid"] == kid:
                return raw
    return None


def input_hash_of(input: Any) -> str:
    """The ``inputHash`` claim for a proposal input (the gateway's own hash of it)."""
    return sha256_hex(input)
