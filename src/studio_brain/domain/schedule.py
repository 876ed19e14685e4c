"""Job schedules as values: when a job is next due, whether a run was missed, and how a failure backs off.

Pure: the caller passes the current time and the studio's timezone. Two kinds of schedule exist:
``every 5m`` (fixed interval, aligned to the Unix epoch so every brain agrees on the ticks) and
``daily 00:05`` (a wall-clock time in the studio's timezone, so "just after local midnight" survives DST).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo

from studio_brain.domain.errors import InputInvalid

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_EVERY = re.compile(r"^every\s+(\d+)\s*([smhd])$")
_DAILY = re.compile(r"^daily\s+([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True, kw_only=True, slots=True)
class Every:
    """Due at every multiple of ``seconds`` since the epoch (UTC)."""

    seconds: int

    def describe(self) -> str:
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if self.seconds % size == 0:
                return f"every {self.seconds // size}{unit}"
        return f"every {self.seconds}s"


@dataclass(frozen=True, kw_only=True, slots=True)
class DailyAt:
    """Due once a day at ``at`` local wall-clock time in the studio's timezone."""

    at: time

    def describe(self) -> str:
        return f"daily {self.at.strftime('%H:%M')}"


Schedule = Every | DailyAt


def parse_schedule(text: str) -> Schedule:
    """``every 5m`` / ``every 1h`` / ``daily 00:05``; anything else raises InputInvalid."""
    normal = " ".join(text.strip().lower().split())
    if match := _EVERY.match(normal):
        seconds = int(match.group(1)) * _UNITS[match.group(2)]
        if seconds < 1:
            raise InputInvalid(
                f"schedule {text!r}: the interval must be at least one second (e.g. 'every 5m')"
            )
        return Every(seconds=seconds)
    if match := _DAILY.match(normal):
        return DailyAt(at=time(int(match.group(1)), int(match.group(2))))
    raise InputInvalid(f"schedule {text!r} is not understood; use 'every 5m', 'every 1h' or 'daily 00:05'")


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InputInvalid(f"{moment!r} has no timezone")
    return moment


def last_due(schedule: Schedule, at: datetime, zone: tzinfo) -> datetime:
    """The most recent due time at or before ``at`` (UTC)."""
    at = _aware(at).astimezone(UTC)
    match schedule:
        case Every(seconds=seconds):
            elapsed = int((at - _EPOCH).total_seconds())
            return _EPOCH + timedelta(seconds=elapsed - elapsed % seconds)
        case DailyAt(at=wall):
            local = at.astimezone(zone)
            candidate = datetime.combine(local.date(), wall, tzinfo=zone)
            if candidate.astimezone(UTC) > at:
                candidate = datetime.combine(local.date() - timedelta(days=1), wall, tzinfo=zone)
            return candidate.astimezone(UTC)


def next_due(schedule: Schedule, after: datetime, zone: tzinfo) -> datetime:
    """The first due time strictly after ``after`` (UTC)."""
    after = _aware(after).astimezone(UTC)
    match schedule:
        case Every(seconds=seconds):
            return last_due(schedule, after, zone) + timedelta(seconds=seconds)
        case DailyAt(at=wall):
            local = after.astimezone(zone)
            for offset in (0, 1, 2):
                candidate = datetime.combine(local.date() + timedelta(days=offset), wall, tzinfo=zone)
                if candidate.astimezone(UTC) > after:
                    return candidate.astimezone(UTC)
            raise AssertionError("unreachable: a wall-clock time recurs within two days")  # pragma: no cover


def missed_run(schedule: Schedule, *, last_started: datetime | None, now: datetime, zone: tzinfo) -> bool:
    """True when a due time passed since the last run started (or the job never ran): catch up once."""
    if last_started is None:
        return True
    return last_started < last_due(schedule, now, zone)


def backoff_seconds(consecutive_failures: int, *, base: float, cap: float) -> float:
    """How long a failing job waits before it may run again: base·2^(n-1), at most ``cap``; 0 when healthy."""
    if consecutive_failures <= 0:
        return 0.0
    return float(min(cap, base * 2 ** min(consecutive_failures - 1, 30)))
