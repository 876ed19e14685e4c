"""The demo's device fakes: both fake servers on free loopback ports, and the settings that point the
real connectors at them (read-only)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from studio_brain.adapters.connectors.fakes.homeassistant import FakeHomeAssistant
from studio_brain.adapters.connectors.fakes.maker_api import FakeMakerApi


@dataclass(frozen=True, kw_only=True, slots=True)
class DemoDevices:
    hubitat: FakeMakerApi
    homeassistant: FakeHomeAssistant

    def settings_update(self) -> dict[str, Any]:
        """Settings fields (for ``Settings.model_copy(update=...)``) that aim the connectors at the fakes."""
        return {
            "hubitat_url": self.hubitat.hub_url,
            "hubitat_app_id": self.hubitat.app_id,
            "hubitat_token": SecretStr(self.hubitat.token),
            "hubitat_mode": "read_only",
            "roborock_ha_url": self.homeassistant.url,
            "roborock_ha_token": SecretStr(self.homeassistant.token),
            "roborock_entity_id": self.homeassistant.entity_id,
            "roborock_mode": "read_only",
        }

    def stop(self) -> None:
        self.hubitat.stop()
        self.homeassistant.stop()


def start_demo_devices() -> DemoDevices:
    """Start both fakes with fresh random tokens (never a fixed demo secret)."""
    hubitat = FakeMakerApi(token=secrets.token_urlsafe(24))
    homeassistant = FakeHomeAssistant(token=secrets.token_urlsafe(32))
    hubitat.start()
    try:
        homeassistant.start()
    except BaseException:
        hubitat.stop()
        raise
    return DemoDevices(hubitat=hubitat, homeassistant=homeassistant)
