"""Keyed records: MACs a database writer cannot compute, because the key lives outside the database.

One brain holds a :class:`Keyring` of HMAC-SHA256 keys (loaded by ``adapters/keys.py`` from a 0600 file
under ``STUDIO_BRAIN_HOME``). New MACs use the ``current`` key; every MAC names its key id, so after a
rotation old records still verify with the key that made them.

Two uses:

- the audit chain: every format-2 event carries ``mac`` over its hash (``domain/audit/mac.py``);
- rows of security state (proposals, agent tokens, exemptions, kill switches, staff credentials):
  :func:`seal_record` MACs a row's canonical JSON together with its *kind*, its *id* and a *version*
  counter, so a row cannot be edited, copied onto another id or kind, or restored to an older version
  without :func:`check_record` saying so. The version must be part of the row and bumped by every write
  (the stores already keep one for optimistic locking); restoring an older row restores an older version,
  which the caller compares with the newest one it knows (e.g. from the audit events that created it).

Pure: the key bytes are passed in; no I/O, no clock.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from studio_brain.domain.errors import InputInvalid
from studio_brain.domain.hashing import canonical_json

#: a key id: short, printable, stored beside every MAC
KEY_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
KEY_BYTES = 32
#: what :func:`seal_record` MACs is prefixed with this, so a record MAC is never an audit-event MAC
RECORD_DOMAIN = b"studio-brain.record/1\n"


_SHA256_BLOCK = 64


@dataclass(frozen=True, slots=True)
class MacKey:
    """One HMAC-SHA256 key and its id. The secret never appears in a repr."""

    key_id: str
    secret: bytes = field(repr=False)
    # RFC 2104 with the padded key's two SHA-256 states computed once: the same MAC as hmac.digest, in
    # half the time (verification MACs every audit event)
    _inner: Any = field(init=False, repr=False, compare=False)
    _outer: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not KEY_ID_PATTERN.match(self.key_id):
            raise InputInvalid(f"MAC key id {self.key_id!r} must be lowercase letters, digits and '-'")
        if len(self.secret) < KEY_BYTES:
            raise InputInvalid(f"a MAC key must hold at least {KEY_BYTES} bytes")
        block = self.secret if len(self.secret) <= _SHA256_BLOCK else hashlib.sha256(self.secret).digest()
        block = block.ljust(_SHA256_BLOCK, b"\0")
        object.__setattr__(self, "_inner", hashlib.sha256(bytes(b ^ 0x36 for b in block)))
        object.__setattr__(self, "_outer", hashlib.sha256(bytes(b ^ 0x5C for b in block)))

    def mac(self, message: bytes) -> str:
        """HMAC-SHA256 of ``message``, hex."""
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return str(outer.hexdigest())


@dataclass(frozen=True, slots=True)
class Keyring:
    """Every MAC key this brain has had: ``current`` signs new records, all of them verify old ones."""

    current: MacKey
    keys: Mapping[str, MacKey] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.keys.get(self.current.key_id, self.current) != self.current:
            raise InputInvalid("the current MAC key differs from the key of the same id in the keyring")
        if self.current.key_id not in self.keys:
            object.__setattr__(self, "keys", {**self.keys, self.current.key_id: self.current})

    @property
    def key_ids(self) -> list[str]:
        return sorted(self.keys)

    def key(self, key_id: str | None) -> MacKey | None:
        return None if key_id is None else self.keys.get(key_id)

    def verify(self, key_id: str | None, message: bytes, mac: object) -> bool:
        """True only when ``mac`` is the MAC of ``message`` under the key ``key_id`` (constant time)."""
        key = self.key(key_id)
        if key is None or not isinstance(mac, str):
            return False
        return hmac.compare_digest(key.mac(message), mac)


@dataclass(frozen=True, kw_only=True, slots=True)
class RecordSeal:
    """What :func:`seal_record` returns, stored beside the row: the key id and the MAC."""

    key_id: str
    mac: str


def record_message(*, kind: str, record_id: str, version: int, body: Mapping[str, Any]) -> bytes:
    """The exact bytes a record MAC covers: a domain prefix, then canonical JSON of kind, id, version, body."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InputInvalid(f"a keyed record's version must be a positive integer, got {version!r}")
    payload = {"kind": kind, "id": record_id, "version": version, "body": dict(body)}
    return RECORD_DOMAIN + canonical_json(payload)


def seal_record(
    key: MacKey, *, kind: str, record_id: str, version: int, body: Mapping[str, Any]
) -> RecordSeal:
    """The MAC of one row of security state (see the module docstring)."""
    message = record_message(kind=kind, record_id=record_id, version=version, body=body)
    return RecordSeal(key_id=key.key_id, mac=key.mac(message))


def check_record(
    keyring: Keyring,
    seal: RecordSeal | None,
    *,
    kind: str,
    record_id: str,
    version: int,
    body: Mapping[str, Any],
) -> bool:
    """True only when ``seal`` is a MAC this brain made over exactly this kind, id, version and body."""
    if seal is None:
        return False
    try:
        message = record_message(kind=kind, record_id=record_id, version=version, body=body)
    except InputInvalid:
        return False
    return keyring.verify(seal.key_id, message, seal.mac)


def key_id_for(secret: bytes) -> str:
    """A key id derived from the key (its SHA-256, cut short): stable, and reveals nothing useful."""
    return "mk-" + hashlib.sha256(b"studio-brain.key-id\n" + secret).hexdigest()[:16]
