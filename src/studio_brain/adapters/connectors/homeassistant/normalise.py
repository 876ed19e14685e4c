"""Home Assistant states → the common device shape for a Roborock vacuum. Pure: ``now`` is passed in.

Home Assistant 2026.9+ has no battery attribute on vacuum entities; the Roborock integration exposes
sibling sensors ``sensor.<dev>_battery``, ``_status``, ``_vacuum_error``, ``_*_time_left`` (seconds) and
``_cleaning_area`` (m²). Consumables are reported as % of Roborock's replace times.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from studio_brain.adapters.connectors.normalise import battery_percent, is_stale, iso, parse_time, typed_value
from studio_brain.domain.connectors import ErrorKind, connector_error

OFFLINE_STATES = frozenset({"unavailable", "unknown"})
#: seconds of use after which Roborock says to replace each consumable
REPLACE_SECONDS = {
    "mainBrush": ("main_brush_time_left", 1_080_000),
    "sideBrush": ("side_brush_time_left", 720_000),
    "filter": ("filter_time_left", 540_000),
    "sensors": ("sensor_time_left", 108_000),
}


def _value(state: dict[str, Any] | None) -> Any:
    if state is None:
        return None
    raw = state.get("state")
    if not isinstance(raw, str) or raw in OFFLINE_STATES:
        return None
    return typed_value(raw)


def consumable_percent(seconds_left: Any, replace_seconds: int) -> float | None:
    if isinstance(seconds_left, bool) or not isinstance(seconds_left, int | float):
        return None
    return round(max(0.0, min(100.0, seconds_left / replace_seconds * 100.0)), 1)


def _last_seen(state: dict[str, Any]) -> datetime | None:
    return parse_time(state.get("last_reported")) or parse_time(state.get("last_updated"))


def vacuum(states: Any, *, entity_id: str, now: datetime, stale_after: timedelta) -> dict[str, Any]:
    """The vacuum and its sibling sensors, from the list ``GET /api/states`` returns."""
    if not isinstance(states, list):
        raise connector_error(ErrorKind.BAD_RESPONSE, "roborock: /api/states is not a list")
    by_id = {s["entity_id"]: s for s in states if isinstance(s, dict) and isinstance(s.get("entity_id"), str)}
    entity = by_id.get(entity_id)
    if entity is None:
        raise connector_error(ErrorKind.BAD_RESPONSE, f"roborock: Home Assistant has no entity {entity_id}")
    prefix = "sensor." + entity_id.split(".", 1)[1] + "_"

    def sensor(suffix: str) -> dict[str, Any] | None:
        return by_id.get(prefix + suffix)

    state = str(entity.get("state", "unknown"))
    raw_attrs = entity.get("attributes")
    attrs: dict[str, Any] = raw_attrs if isinstance(raw_attrs, dict) else {}
    online = state not in OFFLINE_STATES
    seen = [
        t
        for t in (_last_seen(entity), *(_last_seen(s) for k, s in by_id.items() if k.startswith(prefix)))
        if t
    ]
    last = max(seen) if seen else None
    consumables = {
        name: consumable_percent(_value(sensor(suffix)), replace)
        for name, (suffix, replace) in REPLACE_SECONDS.items()
    }
    error = _value(sensor("vacuum_error"))
    return {
        "id": entity_id,
        "label": str(attrs.get("friendly_name") or entity_id),
        "room": None,
        "type": "vacuum",
        "online": online,
        "battery": battery_percent(_value(sensor("battery"))),
        "attributes": {
            "state": state,
            "status": _value(sensor("status")),
            "error": None if error in (None, "none") else error,
            "cleaningAreaM2": _value(sensor("cleaning_area")),
            "fanSpeed": attrs.get("fan_speed"),
            "consumables": consumables,
        },
        "lastEventAt": iso(last),
        "stale": is_stale(_last_seen(entity), now=now, stale_after=stale_after),
    }
