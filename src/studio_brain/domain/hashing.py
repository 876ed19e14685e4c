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

:func:`canonical_json` is the one encoder. Its fast path writes plain JSON (dicts with ASCII keys,
lists, tuples, str, safe int, bool, None, aware datetimes, dates) straight to text; anything else (floats,
non-ASCII keys, Decimal, bytes, UUID, subclasses) goes through :func:`to_json_value` and the ``rfc8785``
package. A property test proves the fast path writes exactly the bytes ``rfc8785`` writes.
"""

from __future__ import annotations

import hashlib
import json.encoder
import math
import unicodedata
from collections.abc import Mapping, Sequence
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
        return _fast(value).encode("utf-8")
    except (_NotFast, UnicodeEncodeError, OverflowError):
        return general_canonical_json(value)


def general_canonical_json(value: Any) -> bytes:
    """:func:`canonical_json` by the general path only: :func:`to_json_value`, then ``rfc8785``."""
    try:
        return bytes(rfc8785.dumps(to_json_value(value)))
    except rfc8785.CanonicalizationError as err:  # pragma: no cover - to_json_value guards first
        raise CanonicalisationError(str(err)) from err


# --- the fast path ------------------------------------------------------------------------------
# Verification re-hashes every audit event (>= 50,000 events/s), so the common shapes are written
# directly. Every rule below is the general path's rule for that type; where one would differ, the value
# is handed to the general path instead (_NotFast).

_quote = json.encoder.encode_basestring  # the C escaper; the same escapes as RFC 8785 for valid Unicode


class _NotFast(Exception):
    """The value needs the general path (floats, non-ASCII keys, other types)."""


def _fast_str(value: str) -> str:
    return _quote(value if value.isascii() else unicodedata.normalize("NFC", value))


def _fast_datetime(value: datetime) -> str:
    offset = value.utcoffset()
    if offset is None:
        raise _NotFast  # naive: the general path refuses it with its message
    # The general rule (UTC, isoformat with microseconds, "Z"), without a timezone conversion object.
    if offset:
        return '"' + (value.replace(tzinfo=None) - offset).isoformat(timespec="microseconds") + 'Z"'
    text = value.isoformat()[:-6]  # a zero offset always prints as "+00:00"
    return '"' + text + ('.000000Z"' if len(text) == 19 else 'Z"')


def _fast(value: object) -> str:
    kind = type(value)
    if kind is str:
        return _quote(value) if value.isascii() else _fast_str(value)  # type: ignore[attr-defined, arg-type]
    if kind is dict:
        items = value.items()  # type: ignore[attr-defined]
        for key, _ in items:
            if type(key) is not str or not key.isascii():
                raise _NotFast  # non-ASCII keys sort by UTF-16 code units and need NFC: general path
        # ASCII strings inline: the commonest value, one call fewer each
        parts = [
            _quote(k) + ":" + (_quote(v) if type(v) is str and v.isascii() else _fast(v))
            for k, v in sorted(items)
        ]
        return "{" + ",".join(parts) + "}"
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:  # type: ignore[operator]
            return str(value)
        raise _NotFast
    if kind is list or kind is tuple:
        return "[" + ",".join([_fast(item) for item in value]) + "]"  # type: ignore[attr-defined]
    if kind is datetime:
        return _fast_datetime(value)  # type: ignore[arg-type]
    if kind is date:
        return f'"{value.isoformat()}"'  # type: ignore[attr-defined]
    raise _NotFast  # floats (ES number formatting), subclasses and other types


def _fast_any(value: object) -> str:
    """:func:`_fast` with the commonest leaves first (a shape's untyped positions)."""
    if value is None:
        return "null"
    if type(value) is int and -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        return str(value)
    return _fast(value)


class CanonicalShape:
    """Canonical JSON of objects that always have the same ASCII keys, built from their values alone.

    The hot path of audit verification (>= 50,000 events/s): the key order, the key text and the
    separators are worked out once, into one concatenation compiled for the shape; each call only encodes
    the values. ``text`` names keys whose value is always a string, ``optional_text`` those that are a
    string or None: their values go straight to the C escaper after one ASCII check for all of them
    (NFC otherwise). Every other value, and any value that breaks the declaration (a tampered row), is
    written by the fast path's rules or, failing those, the whole object by the general path.
    ``shape.encode(values)`` equals ``canonical_json(dict(zip(shape.keys, values)))`` — property-tested
    against ``rfc8785``.
    """

    __slots__ = ("_encode", "_text", "keys")

    def __init__(
        self,
        keys: Sequence[str],
        *,
        text: Sequence[str] = (),
        optional_text: Sequence[str] = (),
        times: Sequence[str] = (),
    ) -> None:
        if len(set(keys)) != len(keys) or not all(type(k) is str and k.isascii() for k in keys):
            raise ValueError("a canonical shape needs distinct ASCII keys")
        declared = [set(text), set(optional_text), set(times)]
        if not set().union(*declared) <= set(keys) or sum(map(len, declared)) != len(set().union(*declared)):
            raise ValueError("text, optional_text and times must be distinct keys of the shape")
        self.keys = tuple(keys)
        position = {k: i for i, k in enumerate(self.keys)}
        template = ""
        for n, key in enumerate(sorted(self.keys)):  # ASCII: code-unit order
            i = position[key]
            if key in text:
                value = f"{{q(v[{i}])}}"
            elif key in optional_text:
                value = f"{{N if v[{i}] is None else q(v[{i}])}}"
            elif key in times:
                value = f"{{t(v[{i}]) if type(v[{i}]) is D else f(v[{i}])}}"
            else:
                value = f"{{f(v[{i}])}}"
            literal = ("{" if n == 0 else ",") + _quote(key) + ":"
            template += literal.replace("{", "{{").replace("}", "}}") + value
        template += "}}" if self.keys else "{{}}"
        # One generated f-string (key text as literals, values by index): a single string build per call,
        # no loop over the keys. Its source is our own: quoted keys and integer indexes.
        self._encode = eval(  # noqa: S307
            "lambda v, q, f, N, t, D: f" + repr(template), {"__builtins__": {"type": type}}
        )
        self._text = tuple(position[k] for k in text) + tuple(position[k] for k in optional_text)

    def encode(self, values: Sequence[Any]) -> bytes:
        """The canonical JSON bytes of the object with ``keys`` mapped to ``values`` (in ``keys`` order)."""
        if len(values) != len(self.keys):
            raise ValueError(f"expected {len(self.keys)} values, got {len(values)}")
        try:
            # One ASCII check for all the string values (the common case) instead of one per value.
            strings = "".join([values[i] or "" for i in self._text])
            q = _quote if strings.isascii() else _fast_str
            text: str = self._encode(values, q, _fast_any, "null", _fast_datetime, datetime)
            return text.encode("utf-8")
        except (_NotFast, UnicodeEncodeError, OverflowError, TypeError, AttributeError):
            # a value that is not what the shape declares (or needs the general rules): the whole object
            return general_canonical_json(dict(zip(self.keys, values, strict=True)))


def sha256_hex(value: Any) -> str:
    """SHA-256 hex digest of the canonical JSON of ``value``."""
    return hashlib.sha256(canonical_json(value)).hexdigest()


def sha256_bytes_hex(data: bytes) -> str:
    """SHA-256 hex digest of raw bytes (for files and payloads that are not JSON values)."""
    return hashlib.sha256(data).hexdigest()


_HEX_DIGITS = frozenset("0123456789abcdef")


def is_sha256_hex(text: object) -> bool:
    """True when ``text`` looks like a SHA-256 hex digest (64 lowercase hex characters)."""
    # issuperset walks the string in C: a generator over 64 characters was 65 Python calls a check,
    # about 6 % of a lifecycle's calls (issue 18)
    return isinstance(text, str) and len(text) == SHA256_HEX_LENGTH and _HEX_DIGITS.issuperset(text)
