"""ISO-8601 text for datetimes, both ways: the one pair of helpers every layer formats and parses with.

Callers differ in two legitimate ways, kept explicit as parameters rather than as private copies:

* **formatting** — ``utc=True`` converts to UTC first (the Portal and device shapes); ``utc=False`` keeps
  the offset the value carries (rows read back from the database, already UTC in practice). ``z=True``
  writes UTC as ``Z`` (what the Portal and the API show); ``z=False`` keeps Python's ``+00:00``.
* **parsing** — text with no offset is refused (``naive="reject"``, the default), read as UTC
  (``naive="utc"``, devices that omit it) or kept naive (``naive="keep"``).

The canonical (hashed) form of a datetime is not here: it is :func:`studio_brain.domain.hashing.to_json_value`
(always UTC, always microseconds), because a change to it breaks every stored chain (ADR 0003).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, overload

NaiveText = Literal["reject", "utc", "keep"]


@overload
def iso(value: datetime, *, utc: bool = True, z: bool = True) -> str: ...
@overload
def iso(value: None, *, utc: bool = True, z: bool = True) -> None: ...
@overload
def iso(value: datetime | None, *, utc: bool = True, z: bool = True) -> str | None: ...
def iso(value: datetime | None, *, utc: bool = True, z: bool = True) -> str | None:
    """``value`` as ISO-8601 text (microseconds only when it has them), or None for None.

    ``utc`` converts to UTC first; ``z`` writes a UTC offset as ``Z`` instead of ``+00:00``.
    """
    if value is None:
        return None
    if utc:
        value = value.astimezone(UTC)
    text = value.isoformat()
    return text.replace("+00:00", "Z") if z else text


def parse_iso(
    text: Any, *, naive: NaiveText = "reject", utc: bool = False, strip: bool = False
) -> datetime | None:
    """The datetime ISO-8601 ``text`` names (``Z`` or an offset), or None when it is not such text.

    ``naive`` says what text without an offset means (see the module docstring); ``utc`` converts an aware
    result to UTC; ``strip`` ignores surrounding whitespace (device payloads).
    """
    if not isinstance(text, str):
        return None
    if strip:
        text = text.strip()
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        if naive == "reject":
            return None
        if naive == "keep":
            return parsed
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC) if utc else parsed
