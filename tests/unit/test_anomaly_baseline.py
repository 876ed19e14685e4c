"""A baseline that anomalies cannot poison (issue 19): each case is one the real series showed on the old
detector — earlier anomalies blunting later ones, the day after an anomaly read as one, a level step
flagged every day, a fractional metric that could never flag — plus the studio calendar's known days."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from studio_brain.domain.anomaly import (
    FLAGGED,
    DetectorConfig,
    FindingKind,
    Observation,
    detect,
    scale_floor,
    scan,
)
from studio_brain.domain.calendar import DayKind, parse_calendar_toml
from studio_brain.domain.errors import ConfigError

START = date(2026, 1, 5)  # a Monday
CONFIG = DetectorConfig()


def calm(
    days: int, *, level: float = 100.0, sd: float = 4.0, seed: int = 3, digits: int = 0
) -> dict[date, float]:
    rng = random.Random(seed)
    return {START + timedelta(days=i): round(level + rng.gauss(0, sd), digits) for i in range(days)}


def observations(values: dict[date, float]) -> list[Observation]:
    return [Observation(day=d, value=v, ref=f"run-{d}") for d, v in sorted(values.items())]


def day(i: int) -> date:
    return START + timedelta(days=i)


def test_earlier_holiday_dips_do_not_blunt_a_later_anomaly() -> None:
    values = calm(120)
    # three holiday dips a week apart, each far outside the noise, then a moderate drop a fortnight later
    for i in (60, 67, 74):
        values[day(i)] = 40.0
    values[day(88)] = values[day(88)] - 5.5 * 4.0
    found = detect("m", observations(values), day(88), CONFIG)
    assert found is not None
    assert found.direction == "down"
    # the dips are named in the evidence as left out of the baseline
    assert {e.day for e in found.excluded} >= {day(60), day(67), day(74)}
    assert all(e.reason == FLAGGED for e in found.excluded)


def test_the_day_after_a_two_day_closure_dip_is_not_an_anomaly() -> None:
    rng = random.Random(11)
    level, values = 100.0, {}
    for i in range(100):  # a wandering level judged against its last days
        level += rng.gauss(0, 1.0) - 0.05 * (level - 100)
        values[day(i)] = round(level + rng.gauss(0, 1.0), 1)
    values[day(80)] = values[day(80)] - 40
    values[day(81)] = values[day(81)] - 40
    result = scan("m", observations(values), CONFIG)
    assert day(80) in result.findings
    assert day(81) in result.findings
    assert not any(d in result.findings for d in (day(82), day(83), day(84)))


def test_a_level_step_is_reported_once_as_a_new_level_and_then_is_normal() -> None:
    values = calm(130, sd=2.0)
    for i in range(80, 130):
        values[day(i)] += 30.0
    result = scan("m", observations(values), CONFIG)
    after = sorted(d for d in result.findings if d >= day(80))
    kinds = [result.findings[d].kind for d in after]
    assert kinds.count(FindingKind.CHANGE_POINT) == 1
    step = next(result.findings[d] for d in after if result.findings[d].kind is FindingKind.CHANGE_POINT)
    assert step.since == day(80)
    assert step.day == day(80 + CONFIG.step_days - 1)
    # nothing is flagged on the new level once the step was recognised
    assert all(d <= step.day for d in after)


def test_a_step_that_reverts_soon_after_was_an_episode_and_is_left_out_again() -> None:
    values = calm(120, sd=2.0)
    for i in range(80, 85):  # five days high, then back
        values[day(i)] += 30.0
    result = scan("m", observations(values), CONFIG)
    assert not result.shifts
    assert not any(d in result.findings for d in (day(86), day(87), day(88)))


def test_a_fractional_rate_can_flag_when_its_noise_is_far_below_one() -> None:
    values = calm(90, level=0.012, sd=0.0006, digits=5)
    values[day(80)] = values[day(80)] + 6 * 0.0006
    found = detect("rate", observations(values), day(80), CONFIG)
    assert found is not None
    assert found.direction == "up"


def test_a_small_count_keeps_a_floor_of_one_count() -> None:
    assert scale_floor([0.0, 1.0, 0.0, 2.0, 1.0], CONFIG) == 1.0
    assert scale_floor([0.0121, 0.0118, 0.0125], CONFIG) == pytest.approx(0.0003, rel=0.01)
    assert scale_floor([15000.0, 16000.0], CONFIG) == pytest.approx(15.5)


def test_a_known_day_is_never_judged_and_never_enters_a_baseline() -> None:
    values = calm(100)
    values[day(70)] = 5.0  # closed: almost nothing happened
    known = {day(70): "closure: kiln repair"}
    assert detect("m", observations(values), day(70), CONFIG, known=known) is None
    values[day(85)] = values[day(85)] + 6 * 4.0
    found = detect("m", observations(values), day(85), CONFIG, known=known)
    assert found is not None
    assert (day(70), "closure: kiln repair") in [(e.day, e.reason) for e in found.excluded]


def test_walking_the_series_once_judges_every_day_as_detect_does() -> None:
    values = calm(110, sd=3.0)
    for i, k in ((40, 8), (55, -6), (70, 5), (90, 10)):
        values[day(i)] += k * 3.0
    obs = observations(values)
    result = scan("m", obs, CONFIG)
    for i in range(30, 110):
        assert result.findings.get(day(i)) == detect("m", obs, day(i), CONFIG)


CALENDAR = """
version = 1

[[days]]
date = 2026-11-26
kind = "holiday"
label = "Thanksgiving"

[[days]]
from = 2026-12-24
to = 2026-12-26
kind = "closure"
label = "Winter break"
"""


def test_the_studio_calendar_names_each_day_with_its_kind_and_label() -> None:
    calendar = parse_calendar_toml(CALENDAR, source="calendar.toml")
    assert [d.day for d in calendar.days] == [
        date(2026, 11, 26),
        date(2026, 12, 24),
        date(2026, 12, 25),
        date(2026, 12, 26),
    ]
    assert calendar.on(date(2026, 12, 25)) is not None
    assert calendar.on(date(2026, 12, 25)).kind is DayKind.CLOSURE  # type: ignore[union-attr]
    assert calendar.known()[date(2026, 11, 26)] == "holiday: Thanksgiving"
    assert calendar.on(date(2026, 12, 27)) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version = 2\n", "version 2 is not supported"),
        ('[[days]]\ndate = 2026-01-01\nkind = "party"\nlabel = "x"\n', "kind must be one of"),
        ("[[days]]\ndate = 2026-01-01\n", "label must be"),
        ('[[days]]\nfrom = 2026-01-05\nto = 2026-01-01\nlabel = "x"\n', "is before"),
        ('[[days]]\ndate = 2026-01-01T10:00:00\nlabel = "x"\n', "local dates"),
        (
            '[[days]]\ndate = 2026-01-01\nlabel = "a"\n[[days]]\ndate = 2026-01-01\nlabel = "b"\n',
            "already in the calendar",
        ),
        ("days = [", "not valid TOML"),
        ("holidays = []\n", "unknown keys"),
    ],
)
def test_a_malformed_calendar_is_refused_with_a_message_naming_the_entry(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_calendar_toml(text, source="calendar.toml")
