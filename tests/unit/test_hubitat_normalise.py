"""Maker API JSON → the common device shape, quirks included (reference/devices.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from studio_brain.adapters.connectors.hubitat import normalise
from studio_brain.adapters.connectors.normalise import DEVICE_KEYS, typed_value
from studio_brain.domain.errors import ConnectorError

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DAY = timedelta(hours=24)


def test_a_devices_all_entry_becomes_the_common_shape_with_typed_attributes() -> None:
    raw = {
        "id": "21",
        "name": "Zooz",
        "label": "Kiln Room Outlet",
        "type": "Zooz Power Switch",
        "room": "Kiln Room",
        "date": "2026-11-25T11:58:00+0000",
        "attributes": {"switch": "on", "power": "1520.4", "energy": "12", "healthStatus": "online"},
        "commands": [{"command": "on"}, {"command": "on"}],
    }
    device = normalise.device(raw, now=NOW, stale_after=DAY)
    assert tuple(device) == DEVICE_KEYS
    assert device["attributes"] == {"energy": 12, "healthStatus": "online", "power": 1520.4, "switch": "on"}
    assert device["lastEventAt"] == "2026-11-25T11:58:00Z"
    assert (device["id"], device["label"], device["room"], device["online"]) == (
        "21",
        "Kiln Room Outlet",
        "Kiln Room",
        True,
    )


def test_a_switch_that_is_off_is_not_offline() -> None:
    raw = {
        "id": "22",
        "label": "Glaze Outlet",
        "attributes": {"switch": "off", "power": "0", "healthStatus": "online"},
    }
    device = normalise.device(raw, now=NOW, stale_after=DAY)
    assert device["attributes"]["switch"] == "off"
    assert device["online"] is True


def test_health_status_offline_wins_over_a_recent_event() -> None:
    raw = {
        "id": "36",
        "label": "x",
        "date": "2026-11-25T11:59:00+0000",
        "attributes": {"healthStatus": "offline"},
    }
    assert normalise.device(raw, now=NOW, stale_after=DAY)["online"] is False


def test_without_health_status_liveness_is_the_staleness_of_the_last_event() -> None:
    fresh = {
        "id": "14",
        "label": "Lock",
        "date": "2026-11-25T10:00:00+0000",
        "attributes": {"lock": "locked"},
    }
    silent = {
        "id": "14",
        "label": "Lock",
        "date": "2026-11-23T10:00:00+0000",
        "attributes": {"lock": "locked"},
    }
    unknown = {"id": "14", "label": "Lock", "attributes": {"lock": "locked"}}
    assert normalise.device(fresh, now=NOW, stale_after=DAY)["online"] is True
    assert normalise.device(silent, now=NOW, stale_after=DAY)["online"] is False
    assert normalise.device(silent, now=NOW, stale_after=DAY)["stale"] is True
    assert normalise.device(unknown, now=NOW, stale_after=DAY)["online"] is None


def test_a_detail_attribute_list_keeps_numbers_dedupes_names_and_tolerates_null_data_types() -> None:
    raw = {
        "id": "14",
        "label": "Front Door Lock",
        "attributes": [
            {"name": "lock", "currentValue": "locked", "dataType": "ENUM", "values": ["locked", "unlocked"]},
            {"name": "battery", "currentValue": 87, "dataType": "NUMBER"},
            {"name": "lock", "currentValue": "locked", "dataType": "ENUM"},
            {"name": "code", "currentValue": "1234", "dataType": "STRING"},
            {"name": "alias", "currentValue": "7.5", "dataType": None},
        ],
        "capabilities": ["Lock", {"attributes": [{"name": "lock", "dataType": None}]}],
        "commands": ["lock", "unlock", "lock"],
    }
    device = normalise.device(raw, now=NOW, stale_after=DAY)
    assert device["attributes"] == {"alias": 7.5, "battery": 87, "code": "1234", "lock": "locked"}
    assert device["battery"] == 87


@pytest.mark.parametrize(
    ("value", "data_type", "expected"),
    [
        ("1520.4", None, 1520.4),
        ("87", None, 87),
        ("on", None, "on"),
        ("0012", "STRING", "0012"),
        ("n/a", "NUMBER", None),
        ("-3.5", "NUMBER", -3.5),
        (True, None, True),
        ("nan", None, "nan"),
    ],
)
def test_attribute_values_get_their_real_type(value: object, data_type: str | None, expected: object) -> None:
    assert typed_value(value, data_type) == expected


def test_the_same_device_listed_twice_is_listed_once() -> None:
    raw = [{"id": "2", "label": "b"}, {"id": "10", "label": "c"}, {"id": "2", "label": "dup"}]
    assert [d["id"] for d in normalise.devices(raw, now=NOW, stale_after=DAY)] == ["2", "10"]


@pytest.mark.parametrize("raw", [{"devices": []}, "html", None])
def test_a_device_list_that_is_not_a_list_is_a_bad_response(raw: object) -> None:
    with pytest.raises(ConnectorError) as caught:
        normalise.devices(raw, now=NOW, stale_after=DAY)
    assert caught.value.kind == "BAD_RESPONSE"


def test_events_modes_and_hsm_are_normalised() -> None:
    events = normalise.events(
        [
            {
                "device_id": 21,
                "label": "x",
                "name": "power",
                "value": "1500.5",
                "date": "2026-11-25T11:00:00Z",
                "unit": "W",
                "isStateChange": True,
                "source": "DEVICE",
            }
        ]
    )
    assert events == [
        {
            "deviceId": "21",
            "name": "power",
            "value": 1500.5,
            "unit": "W",
            "at": "2026-11-25T11:00:00Z",
            "isStateChange": True,
            "source": "DEVICE",
        }
    ]
    assert (
        normalise.modes(
            [{"id": 1, "name": "Day", "active": False}, {"id": 2, "name": "Night", "active": True}]
        )["active"]
        == "Night"
    )
    assert normalise.hsm({"hsm": "armedAway"}) == {"hsm": "armedAway"}
