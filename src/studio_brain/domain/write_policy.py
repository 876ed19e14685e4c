"""Write policies as data (issue 15): allowed local hours per capability, a per-tenant daily budget of
cloud writes, and the two-person rule for high-risk capabilities.

The registry declares them (``allowedHours`` on a capability; the top-level ``[writePolicy]`` table);
:mod:`studio_brain.domain.capabilities` parses them into the values below, and
:mod:`studio_brain.domain.policy` turns these rules into :class:`~studio_brain.domain.policy.Decision`s
(WRITE_WINDOW_CLOSED, WRITE_BUDGET_EXHAUSTED, APPROVAL_REQUIRED). Pure: local time, counters and the
proposal are passed in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from studio_brain.domain.audit import ActorType

_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
#: the bucket that counts a tenant's cloud writes per local day (in the gateway's rate-bucket table)
BUDGET_BUCKET = "cloud-writes:day"
#: requester types that are people (an agent or the brain itself is not a second person)
PERSON_TYPES = frozenset({ActorType.STAFF, ActorType.HUMAN})


@dataclass(frozen=True, kw_only=True, slots=True)
class HourWindow:
    """``HH:MM-HH:MM`` in the studio's local time; the end is exclusive; ``22:00-02:00`` spans midnight."""

    start_minute: int
    end_minute: int

    @classmethod
    def parse(cls, text: str) -> HourWindow:
        match = _WINDOW.match(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"{text!r} is not HH:MM-HH:MM (24-hour local time)")
        start = int(match[1]) * 60 + int(match[2])
        end = int(match[3]) * 60 + int(match[4])
        if end > 24 * 60 or start == end:
            raise ValueError(f"{text!r} is empty or ends after 24:00")
        return cls(start_minute=start, end_minute=end)

    def contains(self, minute_of_day: int) -> bool:
        if self.start_minute < self.end_minute:
            return self.start_minute <= minute_of_day < self.end_minute
        return minute_of_day >= self.start_minute or minute_of_day < self.end_minute

    def __str__(self) -> str:
        def hm(minutes: int) -> str:
            return f"{minutes // 60:02d}:{minutes % 60:02d}"

        return f"{hm(self.start_minute)}-{hm(self.end_minute)}"


@dataclass(frozen=True, kw_only=True, slots=True)
class WritePolicy:
    """The registry-wide write rules (``[writePolicy]``)."""

    #: most cloud writes (execution starts of firestore/stripe writes) per tenant per local day; None = no cap
    daily_cloud_write_budget: int | None = None
    #: risk tiers whose executions need two distinct people (requester and approvers together)
    two_person_risks: frozenset[str] = frozenset({"high", "critical"})


def window_open(windows: Iterable[HourWindow], local_now: datetime) -> bool:
    """Whether ``local_now`` (already in the studio's timezone) falls in one of ``windows``; no windows = always."""
    spans = tuple(windows)
    if not spans:
        return True
    minute = local_now.hour * 60 + local_now.minute
    return any(w.contains(minute) for w in spans)


def describe_windows(windows: Iterable[HourWindow]) -> str:
    return ", ".join(str(w) for w in windows) or "any time"


def budget_window_start(local_now: datetime) -> datetime:
    """The start of the tenant's local day as a UTC instant: the budget bucket's window."""
    if local_now.tzinfo is None:
        raise ValueError("local_now must be timezone-aware")
    midnight = local_now.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.astimezone(UTC)


def persons_involved(
    *, requested_by: str, requester_type: ActorType, approvers: Iterable[str]
) -> frozenset[str]:
    """The distinct people behind a proposal: its approvers, plus the requester when that is a person."""
    people = set(approvers)
    if requester_type in PERSON_TYPES:
        people.add(requested_by)
    return frozenset(people)
