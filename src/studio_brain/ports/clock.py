"""Time and identity as ports: the domain never reads the clock or makes ids itself."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a monotonic clock, for durations and timeouts."""
        ...


class IdFactory(Protocol):
    def new_id(self) -> str:
        """A new unique, time-sortable id (UUIDv7 text). Never derived from time alone."""
        ...
