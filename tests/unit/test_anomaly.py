"""Robust z-scores per metric: spikes found with their size and start, weekday patterns and drift tolerated."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, timedelta

import pytest

from studio_brain.domain.anomaly import (
    DetectorConfig,
    Observation,
    _biweight_scale,
    baseline,
    baseline_after_walk,
    detect,
    scan,
)

START = date(2026, 9, 1)  # a Tuesday
CONFIG = DetectorConfig()


def noisy(
    days: int, *, level: float = 20.0, sd: float = 2.0, seed: int = 1, weekly: dict[int, float] | None = None
):
    rng = random.Random(seed)
    weekly = weekly or {}
    return [
        Observation(
            day=START + timedelta(days=i),
            value=round(level + weekly.get((START + timedelta(days=i)).weekday(), 0.0) + rng.gauss(0, sd)),
            ref=f"run-{i}",
        )
        for i in range(days)
    ]


def with_value(history: list[Observation], day: date, value: float) -> list[Observation]:
    return [Observation(day=o.day, value=value, ref=o.ref) if o.day == day else o for o in history]


def test_a_large_spike_is_found_with_its_size_and_direction() -> None:
    history = noisy(60)
    day = history[-1].day
    spiked = with_value(history, day, 45)
    found = detect("ops.agentRequestsPending", spiked, day, CONFIG)
    assert found is not None
    assert found.direction == "up"
    assert found.z >= CONFIG.threshold
    assert found.since == day
    assert 17 <= found.expected <= 23
    assert found.refs == ("run-59",)


def test_a_drop_is_found_as_a_drop() -> None:
    history = noisy(60, level=40, sd=2)
    day = history[-1].day
    found = detect("counts.batchesActive", with_value(history, day, 10), day, CONFIG)
    assert found is not None
    assert found.direction == "down"


def test_an_ordinary_day_is_not_an_anomaly() -> None:
    history = noisy(60)
    assert all(detect("m", history, o.day, CONFIG) is None for o in history[-20:])


def test_fewer_than_fourteen_earlier_days_give_no_verdict_at_all() -> None:
    history = noisy(13)
    day = START + timedelta(days=13)
    assert baseline(history, day, CONFIG) is None
    spiked = [*history, Observation(day=day, value=500)]
    assert detect("m", spiked, day, CONFIG) is None


def test_a_day_without_a_usable_value_is_never_judged() -> None:
    history = noisy(40)
    assert detect("m", history, START + timedelta(days=40), CONFIG) is None


def test_a_scan_records_how_it_judged_every_day_flagged_or_not() -> None:
    # the benchmark explains a miss or a false day by how near the threshold it came
    history = noisy(60)
    spike = history[-1].day
    result = scan("m", with_value(history, spike, 45), CONFIG)
    judged = sorted(result.judged)
    assert judged[0] == START + timedelta(days=CONFIG.min_history_days)
    assert judged[-1] == spike
    assert len(judged) == 60 - CONFIG.min_history_days
    assert result.judged[spike].z == result.findings[spike].z
    assert result.judged[spike].expected == result.findings[spike].expected
    assert result.judged[spike].scale == result.findings[spike].scale
    calm = history[-2].day
    assert calm not in result.findings
    assert abs(result.judged[calm].z) < CONFIG.threshold
    base = baseline_after_walk(history, calm, CONFIG)
    assert base is not None
    assert result.judged[calm].expected == base.expected(calm)
    assert result.judged[calm].scale == pytest.approx(base.scale)
    assert result.judged[calm].z == pytest.approx(base.z(calm, history[-2].value))


def test_a_weekly_rhythm_is_expected_rather_than_flagged() -> None:
    # Saturdays (weekday 5) run 12 higher: a normal Saturday is fine, the same value on a Wednesday is not
    history = noisy(70, sd=1.0, weekly={5: 12.0})
    saturday = next(o.day for o in reversed(history) if o.day.weekday() == 5)
    wednesday = next(o.day for o in reversed(history) if o.day.weekday() == 2)
    assert detect("m", history, saturday, CONFIG) is None
    base = baseline(history, saturday, CONFIG)
    assert base is not None
    assert base.seasonal
    flagged = detect("m", with_value(history, wednesday, 32), wednesday, CONFIG)
    assert flagged is not None
    assert flagged.seasonal


def test_a_flat_metric_does_not_flag_a_change_of_one() -> None:
    history = [Observation(day=START + timedelta(days=i), value=0) for i in range(30)]
    day = START + timedelta(days=30)
    assert detect("m", [*history, Observation(day=day, value=1)], day, CONFIG) is None
    assert detect("m", [*history, Observation(day=day, value=6)], day, CONFIG) is not None


def test_a_level_shift_reports_since_when_it_began() -> None:
    history = noisy(60, sd=1.0)
    shifted = [
        Observation(day=o.day, value=o.value + 15, ref=o.ref) if o.day >= START + timedelta(days=57) else o
        for o in history
    ]
    found = detect("m", shifted, START + timedelta(days=59), CONFIG)
    assert found is not None
    assert found.since == START + timedelta(days=57)
    assert len(found.refs) == 3


@pytest.mark.parametrize("seed", range(5))
def test_slow_drift_alone_is_not_an_anomaly_with_either_level(seed: int) -> None:
    rng = random.Random(seed)
    history = [
        Observation(day=START + timedelta(days=i), value=round(20 + i * 0.3 + rng.gauss(0, 1.5)))
        for i in range(80)
    ]
    for config in (CONFIG, replace(CONFIG, level_days=7)):
        flagged = [o.day for o in history[-20:] if detect("m", history, o.day, config) is not None]
        assert len(flagged) <= 1, config


def test_the_scale_is_a_robust_standard_deviation_not_stuck_on_the_integer_grid() -> None:
    rng = random.Random(3)
    values = [round(rng.gauss(4, 2)) for _ in range(200)]
    scale = _biweight_scale(values)
    assert 1.7 <= scale <= 2.3
    # a past anomaly in the window gets no weight
    assert abs(_biweight_scale([*values, 500.0]) - scale) < 0.1


def wandering(days: int, *, seed: int) -> list[Observation]:
    """A queue that wanders (a mean-reverting random walk), like open reports or pending requests."""
    rng = random.Random(seed)
    level, out = 20.0, []
    for i in range(days):
        level += rng.gauss(0, 1.5) - 0.05 * (level - 20)
        out.append(Observation(day=START + timedelta(days=i), value=round(level), ref=f"run-{i}"))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_a_wandering_queue_is_judged_against_its_recent_level(seed: int) -> None:
    history = wandering(70, seed=seed)
    day = history[-1].day
    base = baseline_after_walk(history, day, CONFIG)
    assert base is not None
    # judged against where it has been lately: a local level, or the slow trend it has been following
    assert base.level_days in CONFIG.level_choices or base.trend
    # a jump of six robust SDs over yesterday's level is found, and says which level it was judged against
    jumped = with_value(history, day, history[-2].value + 6 * base.scale)
    found = detect("m", jumped, day, CONFIG)
    assert found is not None
    assert found.direction == "up"
    assert found.level_days == base.level_days


def test_independent_days_keep_the_window_median_as_their_level() -> None:
    history = noisy(60)
    base = baseline(history, history[-1].day, CONFIG)
    assert base is not None
    assert base.level_days == 0
