"""The far tail of a metric's noise (issue 19, fourth round): the 90th percentile of the walk's past |z|
cannot see tails that only show beyond it (Student-t noise, a metric with a routine bad day every
twelve days), and those days flagged. The scale is also stretched by the far tail (the 97th percentile)."""

from __future__ import annotations

import random
from datetime import date, timedelta

from studio_brain.domain.anomaly import DetectorConfig, Observation, scan

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
