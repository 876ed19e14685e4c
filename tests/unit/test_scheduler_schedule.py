"""Schedules as values: parsing, due times (UTC intervals, local wall-clock days across DST), catch-up, back-off."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from studio_brain.domain.errors import InputInvalid
from studio_brain.domain.schedule import (
    DailyAt,
    Every,
    backoff_seconds,
    last_due,
    missed_run,
    next_due,
    parse_schedule,
)

PHOENIX = ZoneInfo("America/Phoenix")
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("every 5m", Every(seconds=300)),
        ("every 1h", Every(seconds=3600)),
        ("  Every   2 H ", Every(seconds=7200)),
        ("every 30s", Every(seconds=30)),
        ("daily 00:05", DailyAt(at=time(0, 5))),
        ("daily 23:59", DailyAt(at=time(23, 59))),
    ],
)
def test_schedules_parse_from_their_settings_text(text: str, expected: object) -> None:
    assert parse_schedule(text) == expected


@pytest.mark.parametrize(
    "text", ["", "hourly", "every 0m", "every 5x", "daily 24:00", "daily 7:5", "every -1h"]
)
def test_a_malformed_schedule_is_refused_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(InputInvalid, match="every 5m"):
        parse_schedule(text)


def test_a_schedule_describes_itself_as_it_is_written() -> None:
    assert parse_schedule("every 60m").describe() == "every 1h"
    assert parse_schedule("daily 00:05").describe() == "daily 00:05"


def test_interval_ticks_are_aligned_to_the_epoch_so_every_brain_agrees() -> None:
    at = datetime(2026, 11, 25, 10, 7, 30, tzinfo=UTC)
    assert last_due(Every(seconds=300), at, UTC) == datetime(2026, 11, 25, 10, 5, tzinfo=UTC)
    assert next_due(Every(seconds=300), at, UTC) == datetime(2026, 11, 25, 10, 10, tzinfo=UTC)
    exactly = datetime(2026, 11, 25, 10, 10, tzinfo=UTC)
    assert next_due(Every(seconds=300), exactly, UTC) == exactly + timedelta(minutes=5)


def test_a_daily_job_is_due_just_after_local_midnight_in_the_studio_timezone() -> None:
    # 06:00 UTC is 23:00 the day before in Phoenix (UTC-7): the close is due at 07:05 UTC
    at = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
    assert next_due(DailyAt(at=time(0, 5)), at, PHOENIX) == datetime(2026, 11, 25, 7, 5, tzinfo=UTC)
    assert last_due(DailyAt(at=time(0, 5)), at, PHOENIX) == datetime(2026, 11, 24, 7, 5, tzinfo=UTC)


def test_a_daily_job_keeps_its_local_time_across_a_daylight_saving_change() -> None:
    before = next_due(DailyAt(at=time(0, 5)), datetime(2026, 3, 28, 12, 0, tzinfo=UTC), BERLIN)
    after = next_due(DailyAt(at=time(0, 5)), datetime(2026, 3, 29, 12, 0, tzinfo=UTC), BERLIN)
    assert before.astimezone(BERLIN).time() == after.astimezone(BERLIN).time() == time(0, 5)
    assert after - before == timedelta(hours=23)


def test_a_run_is_missed_when_a_due_time_passed_since_the_last_start() -> None:
    hourly = Every(seconds=3600)
    now = datetime(2026, 11, 25, 10, 30, tzinfo=UTC)
    assert missed_run(hourly, last_started=None, now=now, zone=UTC)
    assert missed_run(hourly, last_started=datetime(2026, 11, 25, 9, 59, tzinfo=UTC), now=now, zone=UTC)
    assert not missed_run(
        hourly, last_started=datetime(2026, 11, 25, 10, 0, 1, tzinfo=UTC), now=now, zone=UTC
    )


def test_backoff_doubles_per_consecutive_failure_up_to_its_cap() -> None:
    assert [backoff_seconds(n, base=60, cap=600) for n in range(6)] == [0, 60, 120, 240, 480, 600]
    assert backoff_seconds(10_000, base=60, cap=600) == 600


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(InputInvalid, match="timezone"):
        next_due(Every(seconds=60), datetime(2026, 11, 25, 10, 0), UTC)
