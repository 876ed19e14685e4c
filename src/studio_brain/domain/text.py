"""Text that may enter the brain: what makes a string unstorable, and how to quote one safely.

PostgreSQL's ``text`` and ``jsonb`` cannot hold U+0000, and UTF-8 cannot encode an unpaired surrogate
(``"\\ud800"`` in JSON): such a string reaching a store failed deep inside the driver (a 503) and could not
even be written to the audit log. :func:`text_problem` names the fault so the boundary refuses it with a
400; :func:`sanitise` makes any text safe to record (escaped, secrets redacted, bounded) for the audit
row about the refusal.
"""

from __future__ import annotations

import re
from typing import Any

from studio_brain.domain.secrets import redact

#: NUL, and surrogate code points (they only appear unpaired in a decoded Python str)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
#: JavaScript's (and JSON's safe) integer range: canonical hashing stores no integer beyond it exactly
MAX_SAFE_INTEGER = 2**53 - 1


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None."""
    match = _UNSTORABLE.search(text)
    if match is None:
        return None
    if match.group() == "\x00":
        return "contains a NUL character (U+0000)"
    return f"contains an unpaired surrogate (U+{ord(match.group()):04X})"


def value_problem(value: Any, *, location: str) -> str | None:
    """The first unstorable text, key or out-of-range number inside a JSON-like value, with where it is."""
    if isinstance(value, str):
        problem = text_problem(value)
        return f"{location} {problem}" if problem else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            return f"{location} is a number out of range (beyond ±{MAX_SAFE_INTEGER})"
        return None
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return f"{location} is not a finite number"
        if abs(value) > 1e300:
            return f"{location} is a number out of range"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            name = str(key)
            problem = text_problem(name)
            if problem:
                return f"a field name in {location} {problem}"
            found = value_problem(item, location=f"{location}.{sanitise(name, limit=64)}")
            if found:
                return found
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = value_problem(item, location=f"{location}[{index}]")
            if found:
                return found
    return None


def sanitise(text: str, *, limit: int = 2000) -> str:
    """``text`` safe to store and show: NUL, surrogates and other C0 controls escaped (``\\x00``,
    ``\\ud800``), credential shapes redacted, at most ``limit`` characters."""
    escaped = _CONTROLS.sub(_escape, text)
    redacted = redact(escaped)
    return redacted if len(redacted) <= limit else redacted[: limit - 1] + "…"


_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
