"""Canonical JSON and SHA-256: the only place in Studio Brain that turns a value into a hash.

Rules (ADR 0003):
- the bytes hashed are RFC 8785 (JCS) canonical JSON of the value;
- every string (keys included) is NFC-normalised first, so equivalent Unicode spellings hash alike;
- integers must lie within ±(2**53 - 1): larger ids must be carried as strings (JSON numbers beyond
  that are not exact in every consumer, and JCS serialises numbers as IEEE doubles);
- floats must be finite; ``bool`` stays a JSON boolean;
- ``bytes`` become lowercase hex strings; ``datetime`` must be timezone-aware and becomes an ISO-8601
  UTC string with microseconds and a ``Z`` suffix; ``date`` becomes ``YYYY-MM-DD``;
  ``Decimal`` becomes its plain string form (``str(d)``), never a float;
  ``UUID`` becomes its canonical lowercase string; tuples and lists are arrays; mappings need
  string keys; frozen dataclasses are not accepted implicitly — convert them on purpose.
"""

from __future__ import annotations

import hashlib
import math
import unicodedata
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeAlias
from uuid import UUID

import rfc8785

from studio_brain.domain.errors import CanonicalisationError

JSONValue: TypeAlias = bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"] | None

MAX_SAFE_INTEGER = 2**53 - 1
SHA256_HEX_LENGTH = 64


def to_json_value(value: Any, *, _path: str = "$") -> JSONValue:
    """Convert ``value`` to plain JSON by the rules above, or raise CanonicalisationError."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise CanonicalisationError(
                f"{_path}: integer {value} is outside ±(2^53-1); carry it as a string"
            )
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CanonicalisationError(f"{_path}: {value} is not a finite number")
        return value
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise CanonicalisationError(f"{_path}: datetime {value!r} has no timezone")
        try:
            utc = value.astimezone(UTC)
        except OverflowError:
            raise CanonicalisationError(f"{_path}: datetime {value!r} is outside the UTC range") from None
        # isoformat, not strftime: glibc's %Y does not zero-pad years before 1000 ("1-01-01T...").
        return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise CanonicalisationError(f"{_path}: {value} is not a finite decimal")
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Mapping):
        converted: dict[str, JSONValue] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalisationError(f"{_path}: key {key!r} is not a string")
            normal_key = unicodedata.normalize("NFC", key)
            if normal_key in converted:
                raise CanonicalisationError(f"{_path}: keys collide after NFC normalisation: {key!r}")
            converted[normal_key] = to_json_value(item, _path=f"{_path}.{normal_key}")
        return converted
    if isinstance(value, list | tuple):
        return [to_json_value(item, _path=f"{_path}[{i}]") for i, item in enumerate(value)]
    raise CanonicalisationError(f"{_path}: values of type {type(value).__name__} cannot be hashed")


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical JSON bytes of ``value`` (after :func:`to_json_value`)."""
    try:
        return bytes(rfc8785.dumps(to_json_value(value)))
    except rfc8785.CanonicalizationError as err:  # pragma: no cover - to_json_value guards first
        raise CanonicalisationError(str(err)) from err


def sha256_hex(value: Any) -> str:
    """SHA-256 hex digest of the canonical JSON of ``value``."""
    return hashlib.sha256(canonical_json(value)).hexdigest()


def sha256_bytes_hex(data: bytes) -> str:
    """SHA-256 hex digest of raw bytes (for files and payloads that are not JSON values)."""
    return hashlib.sha256(data).hexdigest()


def is_sha256_hex(text: object) -> bool:
    """True when ``text`` looks like a SHA-256 hex digest (64 lowercase hex characters)."""
    return (
        isinstance(text, str)
        and len(text) == SHA256_HEX_LENGTH
        and all(c in "0123456789abcdef" for c in text)
    )
