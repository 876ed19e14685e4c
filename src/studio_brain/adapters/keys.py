"""Key files under STUDIO_BRAIN_HOME: the Ed25519 key of signed audit checkpoints, and the HMAC keyring
of the keyed audit chain and keyed records. Both are created at first run (mode 0600, directory 0700),
never overwritten, and never enter the database.

No secret leaves this module in a log line, a repr or an error. Checkpoint key file: unencrypted PKCS#8
PEM (readable by ``openssl pkey``), or the raw key from settings. MAC keyring file: JSON
``{"format": "studio-brain.mac-keys/1", "current": ID, "keys": [{"id": ID, "secret": HEX}, ...]}``;
:func:`rotate_mac_key` adds a key and makes it current, keeping the old ones so old records still verify.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import stat
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from studio_brain.domain.errors import ConfigError
from studio_brain.domain.records import KEY_BYTES, Keyring, MacKey, key_id_for
from studio_brain.logging import get_logger

log = get_logger(__name__)

KEY_FILE_MODE = 0o600
PUBLIC_KEY_HEX_LENGTH = 64


class Ed25519Signer:
    """Signs checkpoint messages with one private key (implements the CheckpointSigner port)."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        raw = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self._public = raw.hex()

    def __repr__(self) -> str:
        return f"Ed25519Signer(public_key={self._public[:16]}...)"

    @property
    def public_key(self) -> str:
        return self._public

    def sign(self, message: bytes) -> str:
        return self._key.sign(message).hex()


class Ed25519Verifier:
    """Checks Ed25519 signatures (implements the SignatureVerifier port). Never raises on bad input."""

    def verify(self, public_key: str, message: bytes, signature: str) -> bool:
        try:
            key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key))
            key.verify(bytes.fromhex(signature), message)
        except (ValueError, TypeError, InvalidSignature):
            return False
        return True


def signer_from_hex(secret_hex: str) -> Ed25519Signer:
    """A signer from 64 hex characters (the raw 32-byte private key), as given in settings."""
    try:
        raw = bytes.fromhex(secret_hex.strip())
        if len(raw) != 32:
            raise ValueError("wrong length")
        return Ed25519Signer(Ed25519PrivateKey.from_private_bytes(raw))
    except ValueError:
        raise ConfigError(
            "STUDIO_BRAIN_AUDIT_SIGNING_KEY: expected 64 hex characters (a raw Ed25519 private key)"
        ) from None


def _check_private(path: Path, what: str = "audit signing key") -> None:
    if os.name != "posix":  # pragma: no cover - POSIX modes only
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(f"{what} {path} is readable by others (mode {mode:04o}); run `chmod 600 {path}`")


def _read_key_file(path: Path) -> Ed25519Signer:
    _check_private(path)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"audit signing key {path} is not an unencrypted PEM private key") from err
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"audit signing key {path} is not an Ed25519 key")
    return Ed25519Signer(key)


def create_ed25519_key_file(path: Path, *, event: str = "audit.key.created") -> None:
    """Write a new Ed25519 key to ``path`` atomically (0600 in a 0700 directory); if another process won
    the race, keep theirs — a key is never overwritten. Shared by the audit and attestation keys."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)  # fails if the key exists: a key is never overwritten
            log.info(event, path=str(path))
        except FileExistsError:
            pass
    finally:
        temporary.unlink(missing_ok=True)


def load_signing_key(path: Path, *, secret_hex: str | None = None, create: bool = True) -> Ed25519Signer:
    """The configured key: ``secret_hex`` when given, else the key file (created when missing and allowed)."""
    if secret_hex:
        return signer_from_hex(secret_hex)
    try:
        if not path.exists():
            if not create:
                raise ConfigError(f"no audit signing key at {path}")
            create_ed25519_key_file(path)
        return _read_key_file(path)
    except OSError as err:
        raise ConfigError(f"cannot use the audit signing key file {path}: {err.strerror}") from err


def public_key_if_present(path: Path, *, secret_hex: str | None = None) -> str | None:
    """The configured public key without creating anything (for verifying exports); None when absent."""
    if secret_hex:
        return signer_from_hex(secret_hex).public_key
    if not path.exists():
        return None
    return load_signing_key(path, create=False).public_key


class LazySigner:
    """A CheckpointSigner that loads (or creates) its key on first use, so start-up never fails on it."""

    def __init__(self, load: Callable[[], Ed25519Signer]) -> None:
        self._load = load
        self._signer: Ed25519Signer | None = None
        self._lock = threading.Lock()

    def _get(self) -> Ed25519Signer:
        with self._lock:
            if self._signer is None:
                self._signer = self._load()
            return self._signer

    def __repr__(self) -> str:
        return "LazySigner(loaded)" if self._signer is not None else "LazySigner(not loaded)"

    @property
    def public_key(self) -> str:
        return self._get().public_key

    def sign(self, message: bytes) -> str:
        return self._get().sign(message)


# --- the HMAC keyring of keyed records (issue 12) ------------------------------------------------

MAC_KEYS_FORMAT = "studio-brain.mac-keys/1"
_MAC_WHAT = "audit MAC key file"


def _keyring_text(keys: list[MacKey], current: str) -> bytes:
    document = {
        "format": MAC_KEYS_FORMAT,
        "current": current,
        "keys": [{"id": k.key_id, "secret": k.secret.hex()} for k in keys],
    }
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def _new_mac_key() -> MacKey:
    secret = secrets.token_bytes(KEY_BYTES)
    return MacKey(key_id=key_id_for(secret), secret=secret)


def _write_private(path: Path, data: bytes, *, replace: bool) -> bool:
    """Write ``data`` to ``path`` (0600) via a temporary file; False when ``path`` existed and not ``replace``."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(temporary, path)
            return True
        try:
            os.link(temporary, path)  # fails if the file exists: a keyring is never overwritten at creation
        except FileExistsError:
            return False
        return True
    finally:
        temporary.unlink(missing_ok=True)


def _read_keyring(path: Path) -> Keyring:
    _check_private(path, _MAC_WHAT)
    try:
        document = json.loads(path.read_text("utf-8"))
        if document.get("format") != MAC_KEYS_FORMAT:
            raise ValueError("not a keyring")
        keys = {
            entry["id"]: MacKey(key_id=entry["id"], secret=bytes.fromhex(entry["secret"]))
            for entry in document["keys"]
        }
        current = keys[document["current"]]
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        # never the file's text in the message: it holds the secrets
        raise ConfigError(
            f"{_MAC_WHAT} {path} is not a Studio Brain keyring ({type(err).__name__})"
        ) from None
    return Keyring(current=current, keys=keys)


def ensure_mac_keyring(path: Path) -> tuple[Keyring, bool]:
    """The keyring at ``path``, created (one random key) when missing: (keyring, created by this call).

    Two processes creating it at once end up with one keyring: the loser reads the winner's.
    """
    try:
        created = False
        if not path.exists():
            key = _new_mac_key()
            created = _write_private(path, _keyring_text([key], key.key_id), replace=False)
            if created:
                log.info("audit.mac_key.created", path=str(path), key_id=key.key_id)
        return _read_keyring(path), created
    except OSError as err:
        raise ConfigError(f"cannot use the {_MAC_WHAT} {path}: {err.strerror}") from err


def load_mac_keyring(path: Path) -> Keyring | None:
    """The keyring at ``path`` without creating anything (for verifying); None when there is none."""
    try:
        return _read_keyring(path) if path.exists() else None
    except OSError as err:
        raise ConfigError(f"cannot read the {_MAC_WHAT} {path}: {err.strerror}") from err


def rotate_mac_key(path: Path) -> MacKey:
    """Add a new random key to the keyring at ``path`` and make it current; the old keys stay (so every
    record they made still verifies). Serialised by a lock file beside the keyring."""
    ensure_mac_keyring(path)
    lock_path = path.with_name(f".{path.name}.lock")
    try:
        fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT, KEY_FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            keyring = _read_keyring(path)
            key = _new_mac_key()
            keys = [keyring.keys[k] for k in keyring.key_ids] + [key]
            _write_private(path, _keyring_text(keys, key.key_id), replace=True)
        finally:
            os.close(fd)
    except OSError as err:
        raise ConfigError(f"cannot rotate the {_MAC_WHAT} {path}: {err.strerror}") from err
    log.info("audit.mac_key.rotated", path=str(path), key_id=key.key_id)
    return key
