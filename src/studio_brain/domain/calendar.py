"""The studio calendar: days the studio knows are not ordinary (closures, holidays, a kiln down for repair).

Read by the ops swarm (a known day is never judged as an anomaly and never enters a baseline) and by the
morning brief (what is special about today). The data is a small TOML file (settings
``STUDIO_BRAIN_CALENDAR_FILE``); an absent file is an empty calendar. Pure: parsing and queries only.

```toml
version = 1

[[days]]
date = 2026-11-26
kind = "holiday"
label = "Thanksgiving"

[[days]]
from = 2026-12-24
to = 2026-12-27
kind = "closure"
label = "Winter break"
```
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from studio_brain.domain.errors import ConfigError

CALENDAR_VERSION = 1
#: the longest span one entry may cover: a longer one is almost certainly a typo in a year
MAX_SPAN_DAYS = 366


class DayKind(StrEnum):
    #: the studio is closed (no firings, no pick-ups)
    CLOSURE = "closure"
    #: a public holiday: open or not, demand is not ordinary
    HOLIDAY = "holiday"
    #: equipment out of service (a kiln down for repair): ordinary numbers are not expected
    MAINTENANCE = "maintenance"
    #: anything else the studio wants the swarm to leave alone (an open day, a sale)
    EVENT = "event"


@dataclass(frozen=True, kw_only=True, slots=True)
class CalendarDay:
    day: date
    kind: DayKind
    label: str

    @property
    def reason(self) -> str:
        """How the day is named in a finding's evidence, e.g. ``closure: Winter break``."""
        return f"{self.kind.value}: {self.label}"


@dataclass(frozen=True, kw_only=True, slots=True)
class StudioCalendar:
    days: tuple[CalendarDay, ...] = ()
    #: where it was read from, for messages
    source: str = "(none)"

    def on(self, day: date) -> CalendarDay | None:
        return next((d for d in self.days if d.day == day), None)

    def known(self) -> dict[date, str]:
        """Day -> reason, for the detector's ``known`` argument."""
        return {d.day: d.reason for d in self.days}

    def between(self, first: date, last: date) -> list[CalendarDay]:
        return [d for d in self.days if first <= d.day <= last]


EMPTY_CALENDAR = StudioCalendar()


def parse_calendar_toml(text: str, *, source: str) -> StudioCalendar:
    """A calendar from TOML text; anything malformed is a ConfigError naming the source and the entry."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"studio calendar {source}: not valid TOML ({err})") from err
    return parse_calendar(data, source=source)


def parse_calendar(data: Mapping[str, Any], *, source: str) -> StudioCalendar:
    version = data.get("version", CALENDAR_VERSION)
    if version != CALENDAR_VERSION:
        raise ConfigError(f"studio calendar {source}: version {version!r} is not supported (use 1)")
    unknown = set(data) - {"version", "days"}
    if unknown:
        raise ConfigError(f"studio calendar {source}: unknown keys {sorted(unknown)} (use 'days')")
    entries = data.get("days", [])
    if not isinstance(entries, list):
        raise ConfigError(f"studio calendar {source}: 'days' must be a list of [[days]] tables")
    days: dict[date, CalendarDay] = {}
    for index, entry in enumerate(entries, start=1):
        where = f"studio calendar {source}, entry {index}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: must be a table")
        extra = set(entry) - {"date", "from", "to", "kind", "label"}
        if extra:
            raise ConfigError(f"{where}: unknown keys {sorted(extra)}")
        try:
            kind = DayKind(entry.get("kind", DayKind.CLOSURE.value))
        except ValueError as err:
            kinds = ", ".join(k.value for k in DayKind)
            raise ConfigError(f"{where}: kind must be one of {kinds}") from err
        label = entry.get("label")
        if not isinstance(label, str) or not label.strip() or len(label) > 120:
            raise ConfigError(f"{where}: label must be a non-empty text of at most 120 characters")
        first, last = _span(entry, where)
        for offset in range((last - first).days + 1):
            day = first + timedelta(days=offset)
            if day in days:
                raise ConfigError(f"{where}: {day} is already in the calendar ({days[day].reason})")
            days[day] = CalendarDay(day=day, kind=kind, label=label.strip())
    return StudioCalendar(days=tuple(days[d] for d in sorted(days)), source=source)


def _span(entry: Mapping[str, Any], where: str) -> tuple[date, date]:
    single = entry.get("date")
    first = entry.get("from")
    last = entry.get("to")
    if single is not None:
        if first is not None or last is not None:
            raise ConfigError(f"{where}: give either 'date' or 'from'/'to', not both")
        first = last = single
    if first is None or last is None:
        raise ConfigError(f"{where}: needs 'date', or both 'from' and 'to'")
    # a TOML datetime is a date too: refuse it rather than silently drop its time of day
    if not (isinstance(first, date) and isinstance(last, date)) or any(
        isinstance(v, datetime) for v in (first, last)
    ):
        raise ConfigError(f"{where}: dates are TOML local dates, e.g. 2026-11-26")
    if last < first:
        raise ConfigError(f"{where}: 'to' ({last}) is before 'from' ({first})")
    if (last - first).days >= MAX_SPAN_DAYS:
        raise ConfigError(f"{where}: spans more than {MAX_SPAN_DAYS} days")
    return first, last
