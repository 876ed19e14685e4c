"""Notification policy as values: which targets get which severity, quiet hours, retry back-off, outbox states.

Pure: targets are known here only by their *names* (the URLs, which hold secrets, stay in the adapter).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from enum import StrEnum

from studio_brain.domain.drafts import Severity
from studio_brain.domain.errors import InputInvalid
from studio_brain.domain.schedule import backoff_seconds

_TARGET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
ALL_TARGETS = "*"


class NotificationKind(StrEnum):
    ALERT = "alert"
    BRIEF = "brief"


class DeliveryStatus(StrEnum):
    #: waiting for its first attempt, for quiet hours to end, or for its next retry
    PENDING = "pending"
    SENT = "sent"
    #: every attempt failed
    FAILED = "failed"


#: the keys a route table may name: one per severity, and ``brief`` for the morning brief
ROUTE_KEYS: tuple[str, ...] = (*(s.value for s in Severity), NotificationKind.BRIEF.value)


def valid_target_name(name: str) -> bool:
    return bool(_TARGET_NAME.match(name))


@dataclass(frozen=True, kw_only=True, slots=True)
class Routes:
    """Route key (a severity, or ``brief``) -> target names; a key not listed goes nowhere."""

    table: Mapping[str, tuple[str, ...]]

    def targets_for(self, key: str, known: Sequence[str]) -> tuple[str, ...]:
        names = self.table.get(key, ())
        if ALL_TARGETS in names:
            return tuple(known)
        return tuple(n for n in names if n in known)

    def unknown_targets(self, known: Sequence[str]) -> list[str]:
        return sorted(
            {n for names in self.table.values() for n in names if n != ALL_TARGETS and n not in known}
        )


def parse_routes(text: str) -> Routes:
    """``high=*; medium=staff,owner; low=staff; brief=*`` (``*``: every target)."""
    table: dict[str, tuple[str, ...]] = {}
    for group in (g.strip() for g in text.split(";")):
        if not group:
            continue
        key, sep, names = group.partition("=")
        key = key.strip().lower()
        if not sep or key not in ROUTE_KEYS:
            raise InputInvalid(
                f"route {group!r}: expected KEY=target,target with KEY one of {', '.join(ROUTE_KEYS)}"
            )
        listed = tuple(n.strip() for n in names.split(",") if n.strip())
        for n in listed:
            if n != ALL_TARGETS and not valid_target_name(n):
                raise InputInvalid(f"route {group!r}: {n!r} is not a target name (lowercase, digits, - _)")
        if key in table:
            raise InputInvalid(f"route {key!r} is given twice")
        table[key] = listed
    return Routes(table=table)


@dataclass(frozen=True, kw_only=True, slots=True)
class QuietHours:
    """A nightly span of local time in which only high-severity alerts (and the brief) are sent at once."""

    start: time
    end: time

    def contains(self, local: datetime) -> bool:
        now = local.time().replace(tzinfo=None)
        if self.start <= self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end

    def end_after(self, moment: datetime, zone: tzinfo) -> datetime:
        """The first end of quiet hours after ``moment`` (aware, returned in UTC-aware form)."""
        local = moment.astimezone(zone)
        for offset in (0, 1):
            candidate = datetime.combine(local.date() + timedelta(days=offset), self.end, tzinfo=zone)
            if candidate > local:
                return candidate.astimezone(moment.tzinfo)
        raise AssertionError("unreachable")  # pragma: no cover


def parse_quiet_hours(text: str) -> QuietHours | None:
    """``22:00-07:00`` (may wrap midnight); empty means no quiet hours."""
    normal = text.strip()
    if not normal:
        return None
    match = _SPAN.match(normal)
    if not match:
        raise InputInvalid(f"quiet hours {text!r}: expected HH:MM-HH:MM, e.g. 22:00-07:00")
    start = time(int(match.group(1)), int(match.group(2)))
    end = time(int(match.group(3)), int(match.group(4)))
    if start == end:
        raise InputInvalid(f"quiet hours {text!r}: start and end are the same")
    return QuietHours(start=start, end=end)


def not_before(
    *, severity: Severity, kind: NotificationKind, now: datetime, quiet: QuietHours | None, zone: tzinfo
) -> datetime:
    """When a notification may first be sent: at once, or when quiet hours end (high alerts and the
    brief, whose time the studio chose, are never held)."""
    if quiet is None or kind is NotificationKind.BRIEF or severity is Severity.HIGH:
        return now
    if not quiet.contains(now.astimezone(zone)):
        return now
    return quiet.end_after(now, zone)


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    attempts: int = 5
    base_seconds: float = 30.0
    cap_seconds: float = 900.0

    def next_attempt(self, failures: int, now: datetime) -> datetime | None:
        """After ``failures`` failed attempts: when to try again, or None when the attempts are used up."""
        if failures >= self.attempts:
            return None
        return now + timedelta(
            seconds=backoff_seconds(failures, base=self.base_seconds, cap=self.cap_seconds)
        )


__all__: Sequence[str] = [
    "ALL_TARGETS",
    "ROUTE_KEYS",
    "DeliveryStatus",
    "NotificationKind",
    "QuietHours",
    "RetryPolicy",
    "Routes",
    "not_before",
    "parse_quiet_hours",
    "parse_routes",
    "valid_target_name",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class Notification:
    """One message to one target (the outbox row): alerts for findings, and the morning brief."""

    id: str
    tenant_id: str
    #: one per (finding or brief day, target): a second attempt to enqueue it is a no-op
    dedupe_key: str
    kind: NotificationKind
    severity: Severity
    target: str
    #: the target's URL with its secret parts masked (what audit rows and the cockpit show)
    target_display: str
    title: str
    body: str
    finding_id: str | None
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None = None
