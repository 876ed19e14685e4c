"""Home Assistant states → the Roborock vacuum in the common device shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from studio_brain.adapters.connectors.homeassistant import normalise
from studio_brain.adapters.connectors.normalise import DEVICE_KEYS
from studio_brain.domain.errors import ConnectorError

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
V = "vacuum.roborock_s7"


def st(entity_id: str, state: str, *, at: str = "2026-11-25T11:55:00+00:00", **attrs: Any) -> dict[str, Any]:
    return {
        "entity_id": entity_id,
        "state": state,
        "attributes": attrs,
        "last_updated": at,
        "last_reported": at,
    }


def states(vacuum_state: str = "docked", **overrides: str) -> list[dict[str, Any]]:
    sensors = {
        "battery": "96",
        "status": "charging",
        "vacuum_error": "none",
        "main_brush_time_left": "540000",
        "side_brush_time_left": "720000",
        "filter_time_left": "0",
        "sensor_time_left": "unavailable",
        "cleaning_area": "42.5",
    } | overrides
    return (
        [st(V, vacuum_state, friendly_name="Studio Roborock")]
        + [st(f"sensor.roborock_s7_{k}", v) for k, v in sensors.items()]
        + [st("sensor.other_battery", "3")]
    )


def test_the_vacuum_and_its_sibling_sensors_become_one_device() -> None:
    device = normalise.vacuum(states(), entity_id=V, now=NOW, stale_after=timedelta(minutes=30))
    assert tuple(device) == DEVICE_KEYS
    assert (device["id"], device["label"], device["type"], device["online"]) == (
        V,
        "Studio Roborock",
        "vacuum",
        True,
    )
    assert device["battery"] == 96
    assert device["attributes"]["status"] == "charging"
    assert device["attributes"]["error"] is None
    assert device["attributes"]["cleaningAreaM2"] == 42.5


def test_consumables_are_percent_of_roborock_replace_times() -> None:
    consumables = normalise.vacuum(states(), entity_id=V, now=NOW, stale_after=timedelta(minutes=30))[
        "attributes"
    ]["consumables"]
    # main brush 540000/1080000, side brush 720000/720000, filter spent, sensors unavailable
    assert consumables == {"mainBrush": 50.0, "sideBrush": 100.0, "filter": 0.0, "sensors": None}


@pytest.mark.parametrize("state", ["unavailable", "unknown"])
def test_an_unavailable_or_unknown_vacuum_is_offline(state: str) -> None:
    assert (
        normalise.vacuum(states(state), entity_id=V, now=NOW, stale_after=timedelta(minutes=30))["online"]
        is False
    )


def test_an_error_state_is_online_and_carries_the_error() -> None:
    device = normalise.vacuum(
        states("error", vacuum_error="main_brush_jammed"),
        entity_id=V,
        now=NOW,
        stale_after=timedelta(minutes=30),
    )
    assert device["online"] is True
    assert device["attributes"]["error"] == "main_brush_jammed"


def test_a_vacuum_not_heard_from_for_too_long_is_stale() -> None:
    assert (
        normalise.vacuum(states(), entity_id=V, now=NOW, stale_after=timedelta(minutes=30))["stale"] is False
    )
    assert (
        normalise.vacuum(
            states(), entity_id=V, now=NOW + timedelta(hours=2), stale_after=timedelta(minutes=30)
        )["stale"]
        is True
    )


def test_a_missing_vacuum_entity_is_a_bad_response() -> None:
    with pytest.raises(ConnectorError) as caught:
        normalise.vacuum(
            [st("sun.sun", "above_horizon")], entity_id=V, now=NOW, stale_after=timedelta(minutes=30)
        )
    assert caught.value.kind == "BAD_RESPONSE"
