"""A fake Home Assistant REST API with the studio's Roborock vacuum and its sibling sensors.

``GET /api/``, ``GET /api/states[/entity]``, ``POST /api/services/vacuum/{start,send_command,return_to_base}``,
Bearer-token auth. Like current Home Assistant (2026.9+), the vacuum entity has no battery attribute: the
battery, status, error, consumables (seconds left) and cleaning area are sibling ``sensor.*`` entities.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from studio_brain.adapters.connectors.fakes.server import FakeDeviceServer, Incoming, Reply

VACUUM = "vacuum.roborock_s7"


class FakeHomeAssistant(FakeDeviceServer):
    name = "fake-home-assistant"

    def __init__(
        self, *, token: str, entity_id: str = VACUUM, now: Callable[[], datetime] | None = None
    ) -> None:
        super().__init__(token=token, now=now)
        self.entity_id = entity_id
        device = entity_id.split(".", 1)[1]
        at = self.now()
        self.states: dict[str, dict[str, Any]] = {}
        self._put(
            entity_id,
            "docked",
            {"friendly_name": "Studio Roborock", "fan_speed": "balanced", "supported_features": 14204},
            at,
        )
        for suffix, value, extra in (
            ("battery", "100", {"unit_of_measurement": "%", "device_class": "battery"}),
            ("status", "charging", {}),
            ("vacuum_error", "none", {}),
            ("main_brush_time_left", "972000", {"unit_of_measurement": "s"}),
            ("side_brush_time_left", "540000", {"unit_of_measurement": "s"}),
            ("filter_time_left", "270000", {"unit_of_measurement": "s"}),
            ("sensor_time_left", "10800", {"unit_of_measurement": "s"}),
            ("cleaning_area", "42.5", {"unit_of_measurement": "m²"}),
        ):
            self._put(
                f"sensor.{device}_{suffix}",
                value,
                {"friendly_name": f"Studio Roborock {suffix}", **extra},
                at,
            )
        self._put("sensor.kiln_room_temperature", "31.2", {"unit_of_measurement": "°C"}, at)
        self._put("sun.sun", "above_horizon", {}, at)

    def _put(self, entity_id: str, state: str, attributes: dict[str, Any], at: datetime) -> None:
        stamp = at.isoformat()
        self.states[entity_id] = {
            "entity_id": entity_id,
            "state": state,
            "attributes": attributes,
            "last_changed": stamp,
            "last_updated": stamp,
            "last_reported": stamp,
            "context": {"id": "01JFAKE", "parent_id": None, "user_id": None},
        }

    def set_state(self, entity_id: str, state: str) -> None:
        with self._lock:
            current = self.states[entity_id]
            self._put(entity_id, state, current["attributes"], self.now())

    def set_reported_at(self, at: datetime) -> None:
        """Make every vacuum entity look last heard of at ``at`` (to test staleness)."""
        with self._lock:
            device = self.entity_id.split(".", 1)[1]
            for entity_id, state in self.states.items():
                if entity_id == self.entity_id or entity_id.startswith(f"sensor.{device}_"):
                    stamp = at.isoformat()
                    state.update(last_changed=stamp, last_updated=stamp, last_reported=stamp)

    def is_write(self, incoming: Incoming) -> bool:
        return incoming.method != "GET"

    def authorised(self, incoming: Incoming) -> bool:
        return incoming.headers.get("authorization") == f"Bearer {self.token}"

    def unauthorised(self) -> Reply:
        return Reply(status=401, body="401: Unauthorized", content_type="text/plain")

    def route(self, incoming: Incoming) -> Reply:
        path = incoming.path
        if incoming.method == "GET":
            if path == "/api/":
                return Reply(body={"message": "API running."})
            if path == "/api/states":
                return Reply(body=list(self.states.values()))
            if path.startswith("/api/states/"):
                state = self.states.get(path.removeprefix("/api/states/"))
                if state is None:
                    return Reply(status=404, body={"message": "Entity not found."})
                return Reply(body=state)
            return Reply(status=404, body={"message": "Not found"})
        if incoming.method == "POST" and path.startswith("/api/services/"):
            return self._service(path.removeprefix("/api/services/"), incoming.body)
        return Reply(status=405, body={"message": "Method not allowed"})

    def _service(self, name: str, body: Any) -> Reply:
        if not isinstance(body, dict) or body.get("entity_id") != self.entity_id:
            return Reply(status=400, body={"message": "Invalid entity"})
        device = self.entity_id.split(".", 1)[1]
        if name == "vacuum/start":
            self.set_state(self.entity_id, "cleaning")
            self.set_state(f"sensor.{device}_status", "cleaning")
        elif name == "vacuum/send_command" and body.get("command") == "app_segment_clean":
            self.set_state(self.entity_id, "cleaning")
            self.set_state(f"sensor.{device}_status", "segment_cleaning")
        elif name == "vacuum/return_to_base":
            self.set_state(self.entity_id, "returning")
            self.set_state(f"sensor.{device}_status", "returning_home")
        else:
            return Reply(status=400, body={"message": f"Service {name} not found."})
        return Reply(body=[self.states[self.entity_id]])
