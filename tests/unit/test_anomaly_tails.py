"""The far tail of a metric's noise (issue 19, fourth round): the 90th percentile of the walk's past |z|
cannot see tails that only show beyond it (Student-t noise, a metric with a routine bad day every
twelve days), and those days flagged. The scale is also stretched by the far tail (the 97th percentile)."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from studio_brain.domain.anomaly import DetectorConfig, Observation, baseline, scan

START = date(2026, 1, 5)  # a Monday
CONFIG = DetectorConfig()


def day(i: int) -> date:
    return START + timedelta(days=i)


def test_a_metric_whose_calm_days_reach_three_sd_every_twelve_days_learns_that_tail_and_flags_fewer_of_them() -> (
    None
):
    flags = 0
    for seed in range(1, 6):
        rng = random.Random(seed)
        values = {}
        for i in range(400):
            value = 100 + 4 * rng.gauss(0, 1)
            if i % 12 == 7:  # one day in twelve about 3.3 SD off: 8 % of days, inside the 90th percentile
                value += rng.choice((-1, 1)) * 3.3 * 4
            values[day(i)] = round(value, 1)
        found = scan("m", [Observation(day=d, value=v) for d, v in sorted(values.items())], CONFIG).findings
        flags += sum(1 for d in found if d >= day(200))
    # 85 such days in the last 200 of five series: 8 flagged with the 90th percentile alone, 3 now
    assert flags <= 5


def test_a_scan_records_the_tail_stretch_and_the_kind_of_baseline_each_day_was_judged_with() -> None:
    # eighth round: a false day or a miss is told from the window's own scale or the stretch by reading
    # the judgement back, without re-running the walk
    rng = random.Random(7)
    history = [Observation(day=day(i), value=round(100 + 4 * _t(rng), 2)) for i in range(300)]
    last = history[-1].day
    result = scan("m", history, CONFIG)
    judged = result.judged[last]
    before = scan("m", history[:-1], CONFIG)
    base = baseline(history, last, CONFIG, exclude=before.excluded, shifts=before.shifts)
    assert base is not None
    # Student-t noise with 5 degrees of freedom: its tails stretch the scale
    assert judged.stretch == pytest.approx(before.tail_stretch)
    assert judged.stretch > 1.0
    assert judged.scale / judged.stretch == pytest.approx(base.scale)
    assert (judged.level_days, judged.trend, judged.seasonal) == (base.level_days, base.trend, base.seasonal)


def _t(rng: random.Random, df: int = 5) -> float:
    chi = sum(rng.gauss(0, 1) ** 2 for _ in range(df))
    return rng.gauss(0, 1) / (chi / df) ** 0.5
