"""The approval-attestation key: an Ed25519 key under STUDIO_BRAIN_HOME (PKCS#8 PEM, mode 0600, created at
first use), the signer of :mod:`studio_brain.domain.attestation` tokens, and the JWKS of its public half.

A separate key from the audit checkpoint key: the attestation key's public half is published to the
studio (JWKS on the API and in the docs), the audit key's is not needed outside. The private key never
leaves this module: no log line, repr or error shows it.
"""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from studio_brain.adapters.keys import create_ed25519_key_file
from studio_brain.domain import attestation
from studio_brain.domain.attestation import ApprovalClaims, Verification
from studio_brain.domain.errors import ConfigError
from studio_brain.logging import get_logger

log = get_logger(__name__)

KEY_FILE_MODE = 0o600
KEY_FILE_NAME = "attestation-ed25519.pem"


def key_path(home: Path) -> Path:
    return home / "keys" / KEY_FILE_NAME


class AttestationSigner:
    """Signs approval claims as compact JWS; loads (or creates) its key file on first use."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self._path = path
        self._create = create
        self._key: Ed25519PrivateKey | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AttestationSigner(path={str(self._path)!r})"

    @property
    def path(self) -> Path:
        return self._path

    def _private(self) -> Ed25519PrivateKey:
        with self._lock:
            if self._key is None:
                self._key = _load(self._path, create=self._create)
            return self._key

    @property
    def public_key(self) -> bytes:
        return (
            self._private()
            .public_key()
            .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        )

    @property
    def key_id(self) -> str:
        return attestation.public_jwk(self.public_key)["kid"]

    def jwks(self) -> dict[str, Any]:
        return attestation.jwks([self.public_key])

    def attest(self, claims: ApprovalClaims) -> str:
        key = self._private()
        return attestation.compact(claims, self.key_id, key.sign)


def check_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Ed25519 verification; never raises on bad input."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def verify_token(token: str, jwks: dict[str, Any], *, expected: dict[str, Any] | None = None) -> Verification:
    return attestation.verify(token, jwks, check_signature, expected=expected)


def read_jwks(path: Path) -> dict[str, Any]:
    """A JWKS document from a file (as published by the brain); ConfigError when it is not one."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read a JWKS document from {path}: {err}") from err
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ConfigError(f"{path} is not a JWKS document (no keys list)")
    return document


def _load(path: Path, *, create: bool) -> Ed25519PrivateKey:
    try:
        if not path.exists():
            if not create:
                raise ConfigError(f"no attestation key at {path}")
            create_ed25519_key_file(path, event="attestation.key.created")
        if os.name == "posix":
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                raise ConfigError(
                    f"attestation key {path} is readable by others (mode {mode:04o}); run `chmod 600 {path}`"
                )
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as err:
        raise ConfigError(f"cannot use the attestation key file {path}: {err.strerror}") from err
    except (ValueError, TypeError) as err:
        raise ConfigError(f"attestation key {path} is not an unencrypted PEM private key") from err
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"attestation key {path} is not an Ed25519 key")
    return key
