"""Quality of the safety watch (issue 17): a simulated studio week with injected incidents of known time.

The real :class:`~studio_brain.services.safety.SafetyWatch` (the shipped rule table, its onset tracking,
open/resolve and cooldown logic) runs every simulated minute over simulated readings and kiln firings;
only the stores are in memory (``adapters/memory/safety_store.py``, held to the PostgreSQL store by
``tests/contract/test_safety_store.py``) and the clock is simulated. Per seed, one week (10,080 ticks):

- firings: kiln-1 fires most evenings (scheduled 17:30-19:30, status set to ``firing`` 0-20 minutes
  *after* the controller starts, as staff do), for 7-11 hours; elements cycle, so the power drops to
  0-8 W for 2-9 minutes at a time inside a firing; then ``cooling`` for 10 hours, then ``completed``;
- the outlet reports every minute (a report is lost now and then); the back-door contact and the
  front-door lock check in every 5 minutes, are opened/unlocked during the day and, now and then, a
  minute after closing time (staff leaving);
- incidents, each with a known start: kiln switched on by hand with no firing, a controller that keeps
  drawing after its firing ended, a breaker trip during a firing, the back door left open after hours,
  the lock left unlocked after hours, the door contact going silent, the outlet going offline.

A detection is the first finding of the incident's rule on its device opened in [start, end + 30 min];
latency = detection - start. A finding no incident explains is a false alert.

Run: ``.venv/bin/python bench/safety_watch.py [--seeds 20]`` — no database, no network.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from studio_brain.adapters.memory.safety_store import InMemorySafetyStore
from studio_brain.adapters.rule_files import load_safety_rules
from studio_brain.domain.safety import Firing, parse_studio_hours
from studio_brain.logging import configure_logging
from studio_brain.services.safety import DeviceSelection, SafetyWatch

ZONE = ZoneInfo("America/Phoenix")
START = datetime(2026, 11, 30, 0, 0, tzinfo=ZONE).astimezone(UTC)  # a Monday
WEEK_MINUTES = 7 * 24 * 60
HOURS = "mon-fri 09:00-21:00; sat-sun 10:00-18:00"
OUTLET, DOOR, LOCK = "21", "31", "14"


@dataclass
class Clock:
    at: datetime

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return (self.at - START).total_seconds()


class Ids:
    def __init__(self) -> None:
        self.n = 0

    def new_id(self) -> str:
        self.n += 1
        return f"f{self.n:06d}"


@dataclass
class Device:
    id: str
    label: str
    report_minutes: int
    attributes: dict[str, Any]
    last_event: datetime
    silent_from: datetime | None = None
    offline_from: datetime | None = None


@dataclass
class Incident:
    kind: str
    rule_id: str
    device: str
    start: datetime
    end: datetime


@dataclass
class FiringPlan:
    id: str
    scheduled_for: datetime
    controller_on: datetime
    status_lag: timedelta
    length: timedelta
    tripped_at: datetime | None = None
    #: the controller keeps drawing after the firing ended (an incident)
    stuck_until: datetime | None = None

    @property
    def end(self) -> datetime:
        return self.controller_on + self.length

    def status(self, now: datetime) -> str | None:
        if now < self.scheduled_for - timedelta(days=3):
            return None
        if now < self.controller_on + self.status_lag:
            return "scheduled"
        if now < self.end:
            return "firing"
        if now < self.end + timedelta(hours=10):
            return "cooling"
        return "completed"


@dataclass
class World:
    rng: random.Random
    firings: list[FiringPlan] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    #: extra outlet power windows (start, end, watts) with no firing
    manual_power: list[tuple[datetime, datetime, float]] = field(default_factory=list)
    door_open: list[tuple[datetime, datetime]] = field(default_factory=list)
    lock_open: list[tuple[datetime, datetime]] = field(default_factory=list)


def _local(day: int, hour: float) -> datetime:
    return (START.astimezone(ZONE) + timedelta(days=day, hours=hour)).astimezone(UTC)


def build_world(seed: int) -> World:
    rng = random.Random(seed)
    w = World(rng=rng)
    for day in range(7):
        if rng.random() < 0.8:
            on = _local(day, rng.uniform(17.5, 19.5))
            w.firings.append(
                FiringPlan(
                    id=f"firing-{day}",
                    scheduled_for=on + timedelta(minutes=rng.uniform(-15, 15)),
                    controller_on=on,
                    status_lag=timedelta(minutes=rng.uniform(0, 20)),
                    length=timedelta(hours=rng.uniform(7, 11)),
                )
            )
        # ordinary use: the door opens now and then during the day; now and then someone leaves late
        for _ in range(rng.randint(6, 12)):
            at = _local(day, rng.uniform(10, 17.5))
            w.door_open.append((at, at + timedelta(minutes=rng.randint(1, 4))))
        open_at = _local(day, 9.5 if day < 5 else 10.5)
        w.lock_open.append((open_at, _local(day, 17.8)))
        if rng.random() < 0.4:
            late = _local(day, 21 if day < 5 else 18) + timedelta(seconds=rng.uniform(0, 50))
            w.door_open.append((late, late + timedelta(seconds=40)))

    def incident(kind: str, rule: str, device: str, start: datetime, minutes: int) -> Incident:
        i = Incident(
            kind=kind, rule_id=rule, device=device, start=start, end=start + timedelta(minutes=minutes)
        )
        w.incidents.append(i)
        return i

    # 1. kiln switched on by hand, no firing (Wednesday, after the night's firing has ended)
    i = incident(
        "kiln left on", "safety.kiln_power_without_firing", OUTLET, _local(2, rng.uniform(8, 15)), 180
    )
    w.manual_power.append((i.start, i.end, rng.uniform(1400, 1600)))
    # 2. a controller that keeps drawing after its firing ended
    ended = [f for f in w.firings if f.end < START + timedelta(days=6)]
    if ended:
        f = ended[len(ended) // 2]
        f.stuck_until = f.end + timedelta(hours=2)
        incident("controller stuck on", "safety.kiln_power_without_firing", OUTLET, f.end, 120)
    # 3. a breaker trip during a firing (another firing)
    others = [f for f in w.firings if f.stuck_until is None]
    if others:
        f = others[0]
        f.tripped_at = f.controller_on + timedelta(hours=rng.uniform(1, 3))
        incident("breaker trip", "safety.firing_without_power", OUTLET, f.tripped_at, 90)
    # 4. back door left open after hours; 5. lock left unlocked after hours
    i = incident("door left open", "safety.door_open_after_hours", DOOR, _local(1, rng.uniform(22, 23.5)), 30)
    w.door_open.append((i.start, i.end))
    i = incident(
        "lock left unlocked", "safety.door_open_after_hours", LOCK, _local(5, rng.uniform(19, 23)), 45
    )
    w.lock_open.append((i.start, i.end))
    # 6. the door contact goes silent (battery); 7. the outlet drops off the mesh
    incident("contact silent", "safety.device_stale", DOOR, _local(4, rng.uniform(9, 12)), 240)
    incident("outlet offline", "safety.device_stale", OUTLET, _local(6, rng.uniform(11, 13)), 60)
    return w


class Simulation:
    def __init__(self, world: World) -> None:
        self.w = world
        self.rng = world.rng
        self.devices = {
            OUTLET: Device(
                OUTLET,
                "Kiln Room Outlet",
                1,
                {"switch": "off", "power": 0.0, "healthStatus": "online"},
                START,
            ),
            DOOR: Device(DOOR, "Back Door Contact", 5, {"contact": "closed", "battery": 90}, START),
            LOCK: Device(LOCK, "Front Door Lock", 5, {"lock": "locked", "battery": 80}, START),
        }
        for i in world.incidents:
            if i.kind == "contact silent":
                self.devices[DOOR].silent_from = i.start
            if i.kind == "outlet offline":
                self.devices[OUTLET].offline_from = i.start
        self._offline_until = next((i.end for i in world.incidents if i.kind == "outlet offline"), None)
        self._silent_until = next((i.end for i in world.incidents if i.kind == "contact silent"), None)

    def _power(self, now: datetime) -> float:
        for start, end, watts in self.w.manual_power:
            if start <= now < end:
                return watts + self.rng.uniform(-20, 20)
        for f in self.w.firings:
            if f.stuck_until is not None and f.end <= now < f.stuck_until:
                return 9000 + self.rng.uniform(-200, 200)
            if f.controller_on <= now < f.end:
                if f.tripped_at is not None and now >= f.tripped_at:
                    return 0.0
                # element cycling: short off periods of 2-9 minutes
                minute = int((now - f.controller_on).total_seconds() // 60)
                cycle = minute % 23
                off = 2 + (minute // 23) % 8
                return self.rng.uniform(0, 8) if cycle < off else 9000 + self.rng.uniform(-300, 300)
        return 0.0

    def step(self, now: datetime) -> None:
        outlet, door, lock = self.devices[OUTLET], self.devices[DOOR], self.devices[LOCK]
        power = self._power(now)
        offline = outlet.offline_from is not None and outlet.offline_from <= now < (
            self._offline_until or now
        )
        outlet.attributes["healthStatus"] = "offline" if offline else "online"
        if not offline and self.rng.random() > 0.02:  # a lost report now and then
            outlet.attributes["power"] = round(power, 1)
            outlet.attributes["switch"] = "on" if power > 1 else "off"
            outlet.last_event = now
        silent = door.silent_from is not None and door.silent_from <= now < (self._silent_until or now)
        contact = "open" if any(s <= now < e for s, e in self.w.door_open) else "closed"
        if not silent and (
            contact != door.attributes["contact"] or (now - door.last_event) >= timedelta(minutes=5)
        ):
            door.attributes["contact"] = contact
            door.last_event = now
        state = "unlocked" if any(s <= now < e for s, e in self.w.lock_open) else "locked"
        if state != lock.attributes["lock"] or (now - lock.last_event) >= timedelta(minutes=5):
            lock.attributes["lock"] = state
            lock.last_event = now

    async def read_devices(self, connector_id: str | None = None) -> list[Any]:
        @dataclass
        class Readings:
            devices: list[dict[str, Any]]
            error: str | None = None

        devices = [
            {
                "id": d.id,
                "label": d.label,
                "online": d.attributes.get("healthStatus") != "offline",
                "attributes": dict(d.attributes),
                "lastEventAt": d.last_event.isoformat(),
            }
            for d in self.devices.values()
        ]
        return [Readings(devices=devices)]


class SimFirings:
    def __init__(self, world: World, clock: Clock) -> None:
        self.w = world
        self.clock = clock

    async def current_firings(self) -> list[Firing]:
        now = self.clock.now()
        out = []
        for f in self.w.firings:
            status = f.status(now)
            if status in (None, "completed"):
                continue
            out.append(Firing(id=f.id, status=status, kiln_id="kiln-1", scheduled_for=f.scheduled_for))
        return out


async def run_week(seed: int) -> dict[str, Any]:
    world = build_world(seed)
    sim = Simulation(world)
    clock = Clock(START)
    store = InMemorySafetyStore()
    watch = SafetyWatch(
        tenant_id="bench",
        table=load_safety_rules(),
        store=store,
        devices=sim,
        firings=SimFirings(world, clock),
        selection=DeviceSelection(kiln_outlet=OUTLET, doors=(DOOR, LOCK), kiln_id="kiln-1"),
        hours=parse_studio_hours(HOURS),
        notifications=None,
        drafts=None,
        clock=clock,
        ids=Ids(),
        zone=ZONE,
        cockpit_url="http://127.0.0.1:8787",
    )
    for minute in range(WEEK_MINUTES):
        # readings move at some second within the minute; the watch runs on the minute
        clock.at = START + timedelta(minutes=minute)
        sim.step(clock.at)
        await watch.run()
    records = await store.list("bench", limit=100_000)
    explained: set[str] = set()
    latencies: list[float] = []
    missed: list[str] = []
    for incident in world.incidents:
        hits = [
            r
            for r in records
            if r.rule_id == incident.rule_id
            and r.subject == incident.device
            and incident.start <= r.detected_at <= incident.end + timedelta(minutes=30)
        ]
        if not hits:
            missed.append(incident.kind)
            continue
        first = min(hits, key=lambda r: r.detected_at)
        latencies.append((first.detected_at - incident.start).total_seconds() / 60)
        explained.update(r.id for r in hits)
    false = [r for r in records if r.id not in explained]
    return {
        "incidents": len(world.incidents),
        "latencies": latencies,
        "by_kind": {
            i.kind: lat
            for i, lat in zip([i for i in world.incidents if i.kind not in missed], latencies, strict=True)
        },
        "missed": missed,
        "false": [
            (r.rule_id, r.subject, r.detected_at.astimezone(ZONE).strftime("%a %H:%M"), r.summary)
            for r in false
        ],
    }


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    configure_logging(level="error", fmt="console")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()
    started = time.perf_counter()
    results = [asyncio.run(run_week(seed)) for seed in range(1, args.seeds + 1)]
    latencies = [x for r in results for x in r["latencies"]]
    per_kind: dict[str, list[float]] = {}
    for r in results:
        for kind, lat in r["by_kind"].items():
            per_kind.setdefault(kind, []).append(lat)
    missed = sum(len(r["missed"]) for r in results)
    false = [f for r in results for f in r["false"]]
    incidents = sum(r["incidents"] for r in results)
    print(
        f"safety watch: {args.seeds} simulated weeks, {incidents} incidents, {time.perf_counter() - started:.1f} s"
    )
    print(
        f"detection latency (min): p50 {_pct(latencies, 0.5):.1f}, p95 {_pct(latencies, 0.95):.1f}, max {max(latencies):.1f}"
    )
    print(f"missed incidents: {missed}")
    print(f"false alerts: {len(false)} in {args.seeds} weeks = {len(false) / args.seeds:.2f} per week")
    print("| incident | rule | n | latency p50 (min) | p95 | max |")
    print("|---|---|---|---|---|---|")
    rules = {i.kind: i.rule_id for i in build_world(1).incidents}
    for kind, values in per_kind.items():
        print(
            f"| {kind} | {rules.get(kind, '')} | {len(values)} | {statistics.median(values):.1f} | "
            f"{_pct(values, 0.95):.1f} | {max(values):.1f} |"
        )
    for f in false[:10]:
        print("false alert:", f)


if __name__ == "__main__":
    main()
