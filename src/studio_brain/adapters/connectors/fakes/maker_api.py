"""A faithful fake of Hubitat's Maker API with the studio's devices (see reference/devices.md).

Serves ``/apps/api/{appId}/...?access_token=...``; every call is a GET, commands included. Reproduces the
quirks a client must handle: string ids, ``devices/all`` attributes as a flat dict of strings, ``devices/{id}``
attributes as a list with typed numbers, an attribute and a command listed twice, ``dataType`` null,
``200 {"error": true}`` for an unknown device or command, 401 for a bad token.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from studio_brain.adapters.connectors.fakes.server import FakeDeviceServer, Incoming, Reply

_READS = tuple(
    re.compile(p)
    for p in (
        r"devices",
        r"devices/all",
        r"devices/\d+",
        r"devices/\d+/events",
        r"devices/\d+/capabilities",
        r"devices/\d+/attribute/\w+",
        r"modes",
        r"hsm",
        r"hubvariables",
    )
)
_COMMAND = re.compile(r"devices/(\d+)/(\w+)(?:/([^/]+))?")


@dataclass(kw_only=True)
class FakeDevice:
    id: str
    label: str
    name: str
    type: str
    room: str
    capabilities: list[str]
    #: attribute -> (value, dataType)
    attributes: dict[str, tuple[Any, str | None]]
    commands: list[str]
    last_event: datetime
    events: list[dict[str, Any]] = field(default_factory=list)
    #: a live device reports this often (a power meter's periodic report, a sensor's check-in): its last
    #: event time keeps up with the clock; None: it reports only on change
    report_every: timedelta | None = None
    #: the device stopped reporting (radio gone, battery dead): its last event time freezes
    silent: bool = False


_EFFECTS: dict[str, tuple[str, Any]] = {
    "on": ("switch", "on"),
    "off": ("switch", "off"),
    "lock": ("lock", "locked"),
    "unlock": ("lock", "unlocked"),
}


def studio_devices(now: datetime) -> dict[str, FakeDevice]:
    """The studio: kiln-room outlet with power meter, door lock, contact/motion/temperature/leak sensors."""

    def ago(minutes: float) -> datetime:
        return now - timedelta(minutes=minutes)

    devices = [
        FakeDevice(
            id="21",
            label="Kiln Room Outlet",
            name="Zooz ZEN15 Power Switch",
            type="Zooz Power Switch",
            room="Kiln Room",
            capabilities=["Switch", "PowerMeter", "EnergyMeter", "HealthCheck", "Outlet"],
            attributes={
                "switch": ("on", "ENUM"),
                "power": (1520.4, "NUMBER"),
                "energy": (312.75, "NUMBER"),
                "healthStatus": ("online", "ENUM"),
            },
            commands=["on", "off", "refresh", "on"],
            last_event=ago(2),
            report_every=timedelta(minutes=1),
        ),
        FakeDevice(
            id="22",
            label="Glaze Room Outlet",
            name="Zooz ZEN15 Power Switch",
            type="Zooz Power Switch",
            room="Glaze Room",
            capabilities=["Switch", "PowerMeter", "HealthCheck"],
            attributes={
                "switch": ("off", "ENUM"),
                "power": (0, "NUMBER"),
                "healthStatus": ("online", "ENUM"),
            },
            commands=["on", "off"],
            last_event=ago(600),
        ),
        FakeDevice(
            id="14",
            label="Front Door Lock",
            name="Schlage BE469",
            type="Schlage Z-Wave Lock",
            room="Entry",
            capabilities=["Lock", "Battery"],
            attributes={"lock": ("locked", "ENUM"), "battery": (87, "NUMBER")},
            commands=["lock", "unlock"],
            last_event=ago(45),
            report_every=timedelta(minutes=5),
        ),
        FakeDevice(
            id="31",
            label="Back Door Contact",
            name="Aqara Contact",
            type="Generic Zigbee Contact Sensor",
            room="Loading Dock",
            capabilities=["ContactSensor", "Battery"],
            attributes={
                "contact": ("closed", "ENUM"),
                "battery": (92, "NUMBER"),
                "contactAlias": ("closed", None),
            },
            commands=[],
            last_event=ago(30),
            report_every=timedelta(minutes=5),
        ),
        FakeDevice(
            id="32",
            label="Studio Motion",
            name="Hue Motion",
            type="Hue Motion Sensor",
            room="Studio",
            capabilities=["MotionSensor", "Battery", "TemperatureMeasurement"],
            attributes={
                "motion": ("inactive", "ENUM"),
                "battery": (78, "NUMBER"),
                "temperature": (71.2, "NUMBER"),
            },
            commands=[],
            last_event=ago(5),
        ),
        FakeDevice(
            id="33",
            label="Kiln Room Climate",
            name="Aqara Temp/Humidity",
            type="Generic Zigbee Temp/Humidity",
            room="Kiln Room",
            capabilities=["TemperatureMeasurement", "RelativeHumidityMeasurement", "Battery"],
            attributes={
                "temperature": (88.4, "NUMBER"),
                "humidity": (21, "NUMBER"),
                "battery": (65, "NUMBER"),
            },
            commands=[],
            last_event=ago(10),
        ),
        FakeDevice(
            id="34",
            label="Sink Leak Sensor",
            name="Aqara Leak",
            type="Generic Zigbee Moisture Sensor",
            room="Glaze Room",
            capabilities=["WaterSensor", "Battery", "HealthCheck"],
            attributes={
                "water": ("dry", "ENUM"),
                "battery": (100, "NUMBER"),
                "healthStatus": ("online", "ENUM"),
            },
            commands=[],
            last_event=ago(180),
        ),
        FakeDevice(
            id="36",
            label="Storage Room Contact",
            name="Ring Contact",
            type="Ring Alarm Contact Sensor",
            room="Storage",
            capabilities=["ContactSensor", "Battery", "HealthCheck"],
            attributes={
                "contact": ("closed", "ENUM"),
                "battery": (4, "NUMBER"),
                "healthStatus": ("offline", "ENUM"),
            },
            commands=[],
            last_event=ago(3 * 24 * 60),
        ),
    ]
    return {d.id: d for d in devices}


def _hubitat_date(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S%z")


def _as_string(value: Any) -> str:
    return str(value)


class FakeMakerApi(FakeDeviceServer):
    name = "fake-maker-api"

    def __init__(self, *, token: str, app_id: str = "7", now: Callable[[], datetime] | None = None) -> None:
        super().__init__(token=token, now=now)
        self.app_id = app_id
        self.devices = studio_devices(self.now())
        self.mode = "Day"
        self.hsm_status = "disarmed"
        #: the demo's scenario switch (``GET /_demo/scenario/<name>?access_token=…``): name -> summary
        self.scenario_handler: Callable[[str], dict[str, Any] | None] | None = None

    @property
    def hub_url(self) -> str:
        """What a Hubitat connector is configured with (the app id is configured separately)."""
        return self.url

    def _relative(self, incoming: Incoming) -> str | None:
        prefix = f"/apps/api/{self.app_id}/"
        return incoming.path[len(prefix) :] if incoming.path.startswith(prefix) else None

    def is_write(self, incoming: Incoming) -> bool:
        rel = self._relative(incoming)
        if rel is None:
            return incoming.method != "GET"
        return incoming.method != "GET" or not any(p.fullmatch(rel) for p in _READS)

    def authorised(self, incoming: Incoming) -> bool:
        return incoming.query.get("access_token") == self.token

    def set_attribute(self, device_id: str, name: str, value: Any) -> None:
        with self._lock:
            device = self.devices[device_id]
            data_type = device.attributes.get(name, (None, None))[1]
            device.attributes[name] = (value, data_type)
            self._event(device, name, value)

    # --- driving readings (tests, demo scenarios) ---------------------------------------------------
    def set_power(self, device_id: str, watts: float) -> None:
        """The outlet draws ``watts`` (its switch follows: on above 1 W, off at 0)."""
        with self._lock:
            device = self.devices[device_id]
            device.silent = False
            device.attributes["switch"] = ("on" if watts > 1 else "off", "ENUM")
            device.attributes["power"] = (watts, "NUMBER")
            self._event(device, "power", watts)

    def set_contact(self, device_id: str, state: str) -> None:
        self.set_attribute(device_id, "contact", state)

    def set_lock(self, device_id: str, state: str) -> None:
        self.set_attribute(device_id, "lock", state)

    def go_silent(self, device_id: str, *, silent: bool = True) -> None:
        """The device stops reporting: its readings keep their last values and age."""
        with self._lock:
            self.devices[device_id].silent = silent

    def set_last_event(self, device_id: str, at: datetime) -> None:
        with self._lock:
            self.devices[device_id].last_event = at

    def _heartbeat(self, device: FakeDevice) -> None:
        # a live reporting device has reported within its interval
        if device.report_every is None or device.silent:
            return
        now = self.now()
        if now - device.last_event > device.report_every:
            device.last_event = now - (now - device.last_event) % device.report_every

    def _event(self, device: FakeDevice, name: str, value: Any) -> None:
        at = self.now()
        device.last_event = at
        device.events.insert(
            0,
            {
                "device_id": device.id,
                "label": device.label,
                "name": name,
                "value": _as_string(value),
                "date": at.isoformat(),
                "unit": "W" if name == "power" else None,
                "isStateChange": True,
                "source": "DEVICE",
            },
        )
        del device.events[50:]

    # --- shapes ------------------------------------------------------------------------------------
    def _summary(self, device: FakeDevice) -> dict[str, Any]:
        return {
            "id": device.id,
            "name": device.name,
            "label": device.label,
            "type": device.type,
            "room": device.room,
        }

    def _full(self, device: FakeDevice) -> dict[str, Any]:
        self._heartbeat(device)
        # devices/all: attributes a flat dict of strings; commands as [{"command": ...}]
        return {
            **self._summary(device),
            "date": _hubitat_date(device.last_event),
            "model": None,
            "manufacturer": None,
            "capabilities": list(device.capabilities),
            "attributes": {name: _as_string(value) for name, (value, _t) in device.attributes.items()},
            "commands": [{"command": c} for c in device.commands],
        }

    def _detail(self, device: FakeDevice) -> dict[str, Any]:
        self._heartbeat(device)
        # devices/{id}: attributes a list with typed numbers; the first attribute listed twice (a quirk)
        attributes = [
            {"name": name, "currentValue": value, "dataType": data_type}
            | ({"values": ["on", "off"]} if name == "switch" else {})
            for name, (value, data_type) in device.attributes.items()
        ]
        if attributes:
            attributes.append(dict(attributes[0]))
        capabilities: list[Any] = list(device.capabilities)
        if capabilities:
            capabilities.insert(1, {"attributes": [{"name": attributes[0]["name"], "dataType": None}]})
        return {
            **self._summary(device),
            "date": _hubitat_date(device.last_event),
            "attributes": attributes,
            "capabilities": capabilities,
            "commands": list(device.commands),
        }

    # --- routes ------------------------------------------------------------------------------------
    def route(self, incoming: Incoming) -> Reply:
        rel = self._relative(incoming)
        if rel is None and incoming.path.startswith("/_demo/scenario/") and incoming.method == "GET":
            return self._scenario(incoming.path.removeprefix("/_demo/scenario/"))
        if rel is None:
            return Reply(status=404, body="<html>Not Found</html>", content_type="text/html")
        if incoming.method != "GET":
            return Reply(status=405, body={"error": True, "type": "MethodNotAllowed"})
        if rel == "devices":
            return Reply(body=[self._summary(d) for d in self.devices.values()])
        if rel == "devices/all":
            return Reply(body=[self._full(d) for d in self.devices.values()])
        if rel == "modes":
            return Reply(
                body=[
                    {"id": i, "name": n, "active": n == self.mode}
                    for i, n in enumerate(["Day", "Evening", "Night", "Away"], 1)
                ]
            )
        if rel == "hsm":
            return Reply(body={"hsm": self.hsm_status})
        if rel == "hubvariables":
            return Reply(body=[])
        parts = rel.split("/")
        if parts[0] == "devices" and len(parts) >= 2:
            device = self.devices.get(parts[1])
            if device is None:
                return Reply(
                    body={
                        "error": True,
                        "type": "AccessDenied",
                        "message": "Device not found or not authorized",
                    }
                )
            if len(parts) == 2:
                return Reply(body=self._detail(device))
            if len(parts) == 3 and parts[2] == "events":
                return Reply(body=list(device.events))
            if len(parts) == 3 and parts[2] == "capabilities":
                return Reply(body={"capabilities": list(device.capabilities)})
            if len(parts) == 4 and parts[2] == "attribute":
                value = device.attributes.get(parts[3], (None, None))[0]
                return Reply(body={"id": device.id, "attribute": parts[3], "value": value})
            match = _COMMAND.fullmatch(rel)
            if match and match.group(2) in device.commands:
                return self._command(device, match.group(2))
            return Reply(body={"error": True, "type": "UnknownCommand", "message": "Command not found"})
        return Reply(status=404, body={"error": True, "type": "NotFound"})

    def _scenario(self, name: str) -> Reply:
        summary = self.scenario_handler(name) if self.scenario_handler is not None else None
        if summary is None:
            return Reply(status=404, body={"error": True, "message": f"no scenario {name!r}"})
        return Reply(body=summary)

    def _command(self, device: FakeDevice, command: str) -> Reply:
        effect = _EFFECTS.get(command)
        if effect is not None:
            name, value = effect
            data_type = device.attributes.get(name, (None, "ENUM"))[1]
            device.attributes[name] = (value, data_type)
            if name == "switch" and "power" in device.attributes:
                device.attributes["power"] = (0 if value == "off" else 1500.0, "NUMBER")
            self._event(device, name, value)
        return Reply(body=self._detail(device))
