"""Pure helpers shared by connector normalisers: typed values, timestamps, staleness, the device shape.

Every connector returns devices in one shape (docs/connectors.md):
``{id, label, room, type, online, battery, attributes, lastEventAt, stale}``.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from typing import Any

from studio_brain.domain.times import iso as iso  # re-exported for the connector normalisers
from studio_brain.domain.times import parse_iso

DEVICE_KEYS = ("id", "label", "room", "type", "online", "battery", "attributes", "lastEventAt", "stale")

_INT = re.compile(r"[+-]?\d{1,15}")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")
_NUMERIC_TYPES = {"NUMBER", "DECIMAL", "INTEGER", "FLOAT", "LONG"}


def typed_value(value: Any, data_type: str | None = None) -> Any:
    """A device attribute as a JSON value of its real type: numbers as numbers, the rest as given.

    ``data_type`` (Hubitat's ``dataType``, may be null) wins when it says NUMBER or STRING/ENUM; without it
    a string that is exactly a number becomes one (``devices/all`` serves every value as a string)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if not isinstance(value, str):
        return value
    kind = (data_type or "").upper()
    if kind in {"STRING", "ENUM", "JSON_OBJECT", "DATE", "COLOR_MAP", "VECTOR3"}:
        return value
    text = value.strip()
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        number = float(text)
        return number if math.isfinite(number) else value
    if kind in _NUMERIC_TYPES:
        return None  # a NUMBER attribute that is not a number is unknown, not a string
    return value


def parse_time(value: Any) -> datetime | None:
    """An aware UTC datetime from ISO-8601 text (``Z``, ``+00:00`` or ``+0000``), else None."""
    return parse_iso(value, naive="utc", utc=True, strip=True)


def is_stale(last: datetime | None, *, now: datetime, stale_after: timedelta) -> bool | None:
    """True when the last sign of life is older than ``stale_after``; None when unknown."""
    if last is None:
        return None
    return now - last > stale_after


def battery_percent(value: Any) -> int | float | None:
    number = typed_value(value, "NUMBER")
    if isinstance(number, bool) or not isinstance(number, int | float):
        return None
    return max(0, min(100, number))
