"""Maker API JSON → the common device shape. Pure: ``now`` is passed in.

Quirks handled (reference/devices.md): string ids; ``devices/all`` has a flat dict of strings while
``devices/{id}`` has a list of ``{name, currentValue, dataType}``; an attribute or command listed twice;
``dataType`` null. A switch that is *off* is not *offline*: liveness is ``healthStatus`` when the driver has
it, else the staleness of the last event.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from studio_brain.adapters.connectors.normalise import battery_percent, is_stale, iso, parse_time, typed_value
from studio_brain.domain.connectors import ErrorKind, connector_error


def _attributes(raw: Any) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    if isinstance(raw, dict):  # devices/all: flat dict of strings
        for name, value in raw.items():
            attributes[str(name)] = typed_value(value)
    elif isinstance(raw, list):  # devices/{id}: list of {name, currentValue, dataType}; duplicates happen
        for item in raw:
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                name = item["name"]
                if name not in attributes:  # the first listing wins; later duplicates repeat it
                    attributes[name] = typed_value(item.get("currentValue"), item.get("dataType"))
    return dict(sorted(attributes.items()))


def _online(
    attributes: dict[str, Any], last: datetime | None, *, now: datetime, stale_after: timedelta
) -> bool | None:
    health = attributes.get("healthStatus")
    if isinstance(health, str) and health.lower() in {"online", "offline"}:
        return health.lower() == "online"
    stale = is_stale(last, now=now, stale_after=stale_after)
    return None if stale is None else not stale


def device(raw: Any, *, now: datetime, stale_after: timedelta) -> dict[str, Any]:
    """One Maker API device (from ``devices/all`` or ``devices/{id}``) in the common shape."""
    if not isinstance(raw, dict) or raw.get("id") in (None, ""):
        raise connector_error(ErrorKind.BAD_RESPONSE, "hubitat: a device without an id")
    attributes = _attributes(raw.get("attributes"))
    last = parse_time(raw.get("date"))
    return {
        "id": str(raw["id"]),
        "label": str(raw.get("label") or raw.get("name") or raw["id"]),
        "room": raw.get("room") or None,
        "type": raw.get("type") or None,
        "online": _online(attributes, last, now=now, stale_after=stale_after),
        "battery": battery_percent(attributes.get("battery")),
        "attributes": attributes,
        "lastEventAt": iso(last),
        "stale": is_stale(last, now=now, stale_after=stale_after),
    }


def devices(raw: Any, *, now: datetime, stale_after: timedelta) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise connector_error(ErrorKind.BAD_RESPONSE, "hubitat: devices is not a list")
    seen: dict[str, dict[str, Any]] = {}
    for item in raw:
        normal = device(item, now=now, stale_after=stale_after)
        seen.setdefault(normal["id"], normal)
    return sorted(seen.values(), key=lambda d: (len(d["id"]), d["id"]))


def events(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise connector_error(ErrorKind.BAD_RESPONSE, "hubitat: events is not a list")
    out = []
    for item in raw:
        if not isinstance(item, dict):
            continue
        out.append(
            {
                "deviceId": str(item.get("device_id", "")),
                "name": item.get("name"),
                "value": typed_value(item.get("value")),
                "unit": item.get("unit"),
                "at": iso(parse_time(item.get("date"))),
                "isStateChange": bool(item.get("isStateChange", False)),
                "source": item.get("source"),
            }
        )
    return out


def modes(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, list):
        raise connector_error(ErrorKind.BAD_RESPONSE, "hubitat: modes is not a list")
    listed = [
        {"id": str(m.get("id")), "name": m.get("name"), "active": bool(m.get("active"))}
        for m in raw
        if isinstance(m, dict)
    ]
    active = next((m["name"] for m in listed if m["active"]), None)
    return {"modes": listed, "active": active}


def hsm(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict) or not isinstance(raw.get("hsm"), str):
        raise connector_error(ErrorKind.BAD_RESPONSE, "hubitat: hsm answer has no status")
    return {"hsm": raw["hsm"]}
