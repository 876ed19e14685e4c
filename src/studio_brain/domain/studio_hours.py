"""Studio opening hours per weekday, local wall-clock time (settings ``STUDIO_BRAIN_STUDIO_HOURS``).

Pure: ``mon-fri 09:00-21:00; sat 10:00-17:00; sun closed``. Closures and holidays are the studio
calendar's (:mod:`studio_brain.domain.calendar`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time

from studio_brain.domain.errors import InputInvalid

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")


def _hhmm(text: str, where: str) -> time | None:
    match = _HHMM.match(text)
    if not match or (match.group(1) == "24" and match.group(2) != "00"):
        raise InputInvalid(f"{where}: {text!r} is not a time like 09:00")
    if match.group(1) == "24":
        return None  # end of day
    return time(int(match.group(1)), int(match.group(2)))


@dataclass(frozen=True, kw_only=True, slots=True)
class StudioHours:
    """Opening hours per weekday (0 = Monday), local wall-clock time; a day without hours is closed."""

    #: weekday -> (open, close); close None means midnight at the end of the day
    days: Mapping[int, tuple[time, time | None]]
    text: str = ""

    def is_open(self, local: datetime) -> bool:
        hours = self.days.get(local.weekday())
        if hours is None:
            return False
        opens, closes = hours
        now = local.time().replace(tzinfo=None)
        return opens <= now and (closes is None or now < closes)


def parse_studio_hours(text: str) -> StudioHours:
    """``mon-fri 09:00-21:00; sat 10:00-17:00; sun closed`` → StudioHours (InputInvalid on a bad group)."""
    days: dict[int, tuple[time, time | None]] = {}
    groups = [g.strip().lower() for g in text.split(";") if g.strip()]
    if not groups:
        raise InputInvalid("studio hours are empty; e.g. 'mon-fri 09:00-21:00; sat 10:00-17:00'")
    for group in groups:
        parts = group.split()
        if len(parts) != 2:
            raise InputInvalid(f"studio hours {group!r}: expected 'DAYS HH:MM-HH:MM' or 'DAYS closed'")
        day_part, span = parts
        first, _, last = day_part.partition("-")
        if first not in _DAYS or (last and last not in _DAYS):
            raise InputInvalid(f"studio hours {group!r}: days are mon..sun, e.g. mon-fri")
        start, end = _DAYS.index(first), _DAYS.index(last or first)
        selected = list(range(start, end + 1)) if start <= end else [*range(start, 7), *range(0, end + 1)]
        if span == "closed":
            for d in selected:
                days.pop(d, None)
            continue
        opens_text, _, closes_text = span.partition("-")
        opens = _hhmm(opens_text, f"studio hours {group!r}")
        closes = _hhmm(closes_text, f"studio hours {group!r}")
        if opens is None or (closes is not None and closes <= opens):
            raise InputInvalid(f"studio hours {group!r}: closing must come after opening on the same day")
        for d in selected:
            days[d] = (opens, closes)
    return StudioHours(days=days, text=text.strip())
