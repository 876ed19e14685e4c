"""The identity MAC key: 32 random bytes in ``STUDIO_BRAIN_HOME/keys/identity.key`` (0600), created at first use.

It keys the MACs of session ids, personal tokens, one-time links, the cockpit's form tokens and the
seals of identity rows. It is random — never derived from the admin token or any other secret — and it
never appears in a repr, a log line or an error message.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import threading
from pathlib import Path

from studio_brain.domain.errors import ConfigError
from studio_brain.logging import get_logger

log = get_logger(__name__)

IDENTITY_KEY_FILE = "identity.key"
_KEY_BYTES = 32


class IdentityKey:
    """Implements the SecretMac port. Loads (or creates) the key on first use."""

    __slots__ = ("_key", "_lock", "_path")

    def __init__(self, path: Path) -> None:
        self._path = path
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"IdentityKey(path={str(self._path)!r})"

    @property
    def path(self) -> Path:
        return self._path

    def _get(self) -> bytes:
        with self._lock:
            if self._key is None:
                self._key = _load_or_create(self._path)
            return self._key

    def mac(self, purpose: str, value: bytes) -> str:
        keyed = hmac.new(self._get(), purpose.encode("utf-8") + b"\x00", hashlib.sha256)
        keyed.update(value)
        return keyed.hexdigest()


def _load_or_create(path: Path) -> bytes:
    try:
        if not path.exists():
            _create(path)
        if os.name == "posix":
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                raise ConfigError(
                    f"identity key {path} is readable by others (mode {mode:04o}); run `chmod 600 {path}`"
                )
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"cannot use the identity key file {path}: {err.strerror}") from err
    if len(raw) != _KEY_BYTES:
        raise ConfigError(f"the identity key file {path} is damaged (expected {_KEY_BYTES} bytes)")
    return raw


def _create(path: Path) -> None:
    """Write a new key atomically; when another process won the race, keep theirs."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(_KEY_BYTES))
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)  # never overwrites an existing key
            log.info("identity.key.created", path=str(path))
        except FileExistsError:
            pass
    finally:
        temporary.unlink(missing_ok=True)
