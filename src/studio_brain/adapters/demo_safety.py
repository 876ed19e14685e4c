"""The demo's safety world: the demo studio's kiln firings as a FiringReader (with a scenario overlay), and
the named scenarios ``studio-brain demo-scenario NAME`` drives in a running demo.

The scenario command runs in another process: it calls the running demo's fake hub at
``/_demo/scenario/<name>`` (authenticated with the hub's token, found in ``<home>/demo/scenario.json``,
mode 0600), and the fake hub calls :meth:`DemoScenarios.apply` in the demo process.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from studio_brain.adapters.connectors.fakes.maker_api import FakeMakerApi
from studio_brain.adapters.demo_source import DemoCloud
from studio_brain.adapters.firestore_firings import OPEN_STATUSES
from studio_brain.domain.safety import Firing

#: the demo's kiln outlet (Maker API device id) and the kiln it serves
DEMO_OUTLET = "21"
DEMO_KILN = "studio-electric-1"
DEMO_DOOR = "31"
DEMO_LOCK = "14"
SCENARIO_FILE = "demo/scenario.json"


class DemoFiringReader:
    """The demo studio's unfinished firings today, as the watch reads them; a scenario may override
    the demo kiln's firings (none in progress / one in progress)."""

    def __init__(self, cloud: DemoCloud, *, now: Callable[[], datetime]) -> None:
        self._cloud = cloud
        self._now = now
        #: None: the demo studio as simulated; "idle": the demo kiln fires nothing; "firing": it fires now
        self.override: str | None = None

    async def current_firings(self) -> list[Firing]:
        studio = self._cloud.studio()
        docs = studio.view(self._cloud.today()).get("kilnFirings", {})
        firings = [
            Firing(
                id=doc_id,
                status=str(doc.get("status")),
                kiln_id=doc.get("kilnId"),
                scheduled_for=doc.get("scheduledFor")
                if isinstance(doc.get("scheduledFor"), datetime)
                else None,
            )
            for doc_id, doc in docs.items()
            if doc.get("status") in OPEN_STATUSES
        ]
        if self.override is None:
            return firings
        now = self._now()
        others = [
            f
            for f in firings
            if f.kiln_id != DEMO_KILN
            or (
                f.status == "scheduled"
                and f.scheduled_for is not None
                and abs(f.scheduled_for - now) > timedelta(hours=2)
            )
        ]
        if self.override == "firing":
            others.append(
                Firing(id="demo-scenario-firing", status="firing", kiln_id=DEMO_KILN, scheduled_for=now)
            )
        return others

    async def demo_kiln_firing(self) -> bool:
        return any(
            f.kiln_id == DEMO_KILN and f.status in ("firing", "in-progress")
            for f in await self.current_firings()
        )


class DemoScenarios:
    """What each scenario does to the fake hub and the firing overlay."""

    NAMES = ("kiln-left-on", "firing-without-power", "door-open", "outlet-silent", "calm")

    def __init__(self, hub: FakeMakerApi, firings: DemoFiringReader) -> None:
        self._hub = hub
        self._firings = firings

    def apply(self, name: str) -> dict[str, Any] | None:
        hub, firings = self._hub, self._firings
        match name:
            case "kiln-left-on":
                firings.override = "idle"
                hub.set_power(DEMO_OUTLET, 1480.0)
            case "firing-without-power":
                firings.override = "firing"
                hub.set_power(DEMO_OUTLET, 0.0)
            case "door-open":
                hub.set_contact(DEMO_DOOR, "open")
                hub.set_lock(DEMO_LOCK, "unlocked")
            case "outlet-silent":
                hub.go_silent(DEMO_OUTLET)
                hub.set_last_event(DEMO_OUTLET, datetime.now(UTC) - timedelta(hours=1))
            case "calm":
                firings.override = "idle"
                hub.set_power(DEMO_OUTLET, 0.0)
                hub.set_contact(DEMO_DOOR, "closed")
                hub.set_lock(DEMO_LOCK, "locked")
            case _:
                return None
        return {
            "scenario": name,
            "outlet": DEMO_OUTLET,
            "kiln": DEMO_KILN,
            "firingOverride": firings.override,
        }


def write_scenario_file(home: Path, hub: FakeMakerApi) -> Path:
    """Where the scenario command finds the running demo's fake hub (0600: it holds the hub token)."""
    path = home / SCENARIO_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({"hubUrl": hub.url, "token": hub.token, "pid": os.getpid()}, out)
    return path


def read_scenario_file(home: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((home / SCENARIO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
