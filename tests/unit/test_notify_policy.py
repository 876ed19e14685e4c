"""Notification policy: routes per severity, quiet hours that hold everything but high alerts and the brief,
and retries with a capped back-off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from studio_brain.domain.drafts import Severity
from studio_brain.domain.errors import InputInvalid
from studio_brain.domain.notify import (
    NotificationKind,
    RetryPolicy,
    not_before,
    parse_quiet_hours,
    parse_routes,
)

PHOENIX = ZoneInfo("America/Phoenix")
# 23:30 in Phoenix
LATE = datetime(2026, 12, 2, 6, 30, tzinfo=UTC)
# 12:00 in Phoenix
NOON = datetime(2026, 12, 1, 19, 0, tzinfo=UTC)


def test_routes_send_each_severity_to_its_targets_and_star_to_all() -> None:
    routes = parse_routes("high=*; medium=staff; brief=owner,staff")
    known = ["owner", "staff"]
    assert routes.targets_for("high", known) == ("owner", "staff")
    assert routes.targets_for("medium", known) == ("staff",)
    assert routes.targets_for("low", known) == ()
    assert routes.targets_for("brief", known) == ("owner", "staff")
    assert parse_routes("high=pager").unknown_targets(known) == ["pager"]


@pytest.mark.parametrize("text", ["urgent=*", "high", "high=Staff!", "high=*; high=staff"])
def test_bad_routes_are_refused(text: str) -> None:
    with pytest.raises(InputInvalid):
        parse_routes(text)


def test_quiet_hours_hold_a_medium_alert_until_they_end_but_never_a_high_one_or_the_brief() -> None:
    quiet = parse_quiet_hours("22:00-07:00")
    assert quiet is not None
    held = not_before(
        severity=Severity.MEDIUM, kind=NotificationKind.ALERT, now=LATE, quiet=quiet, zone=PHOENIX
    )
    assert held.astimezone(PHOENIX) == datetime(2026, 12, 2, 7, 0, tzinfo=PHOENIX)
    assert (
        not_before(severity=Severity.HIGH, kind=NotificationKind.ALERT, now=LATE, quiet=quiet, zone=PHOENIX)
        == LATE
    )
    assert (
        not_before(severity=Severity.INFO, kind=NotificationKind.BRIEF, now=LATE, quiet=quiet, zone=PHOENIX)
        == LATE
    )
    assert (
        not_before(severity=Severity.MEDIUM, kind=NotificationKind.ALERT, now=NOON, quiet=quiet, zone=PHOENIX)
        == NOON
    )
    assert (
        not_before(severity=Severity.LOW, kind=NotificationKind.ALERT, now=NOON, quiet=None, zone=PHOENIX)
        == NOON
    )


def test_quiet_hours_parse_or_are_refused() -> None:
    assert parse_quiet_hours("") is None
    for bad in ("22-07", "22:00-22:00", "25:00-07:00"):
        with pytest.raises(InputInvalid):
            parse_quiet_hours(bad)


def test_retries_back_off_exponentially_up_to_the_cap_then_stop() -> None:
    policy = RetryPolicy(attempts=4, base_seconds=30, cap_seconds=60)
    assert policy.next_attempt(1, NOON) == NOON + timedelta(seconds=30)
    assert policy.next_attempt(2, NOON) == NOON + timedelta(seconds=60)
    assert policy.next_attempt(3, NOON) == NOON + timedelta(seconds=60)
    assert policy.next_attempt(4, NOON) is None
