"""The trend check under a strong weekly rhythm (issue 19, fifth round): the weekly medians a trend is
fitted on are taken with the rhythm out (a rough weekday rhythm over the window), so a real slope is not
hidden by the rhythm and a missing weekday does not read as a slope. A trend's scale (sixth round) carries
the error of its own line today, so flat noise is not followed as a trend by chance."""

from __future__ import annotations

import math
import random
from datetime import date, timedelta
from statistics import median

from studio_brain.domain import anomaly
from studio_brain.domain.anomaly import DetectorConfig, Observation, baseline

START = date(2026, 1, 5)  # a Monday
CONFIG = DetectorConfig()
#: a strong weekly wave, ±15: its weekdays' effects are 0, ±11.7, ±14.6 and ±6.5
WAVE = [15 * math.sin(2 * math.pi * k / 7) for k in range(7)]


def day(i: int) -> date:
    return START + timedelta(days=i)


def test_a_slow_rise_under_a_strong_weekly_rhythm_is_followed_not_left_behind() -> None:
    # a rise of 0.15 a day (8 over the window, two noise SDs) under a ±15 wave: the medians of whole
    # weeks still carry the rhythm (each is whichever weekday lands in the middle), their spread hid the
    # rise, and the expected value was left at the window's median, about 3.4 below the truth
    followed = 0
    error = 0.0
    for seed in range(40):
        rng = random.Random(seed)
        history = [
            Observation(day=day(i), value=200 + WAVE[i % 7] + 0.15 * i + 4 * rng.gauss(0, 1))
            for i in range(168)
        ]
        base = baseline(history, day(168), CONFIG)
        assert base is not None
        followed += base.trend
        error += abs(base.expected(day(168)) - (200 + WAVE[168 % 7] + 0.15 * 168))
    # with the rhythm in the weekly medians: 15 of 40 followed, mean error 3.4; here 37, 1.3
    assert followed >= 32
    assert error / 40 < 2.0


def test_a_flat_level_reads_as_flat_when_a_weekday_is_missing_from_the_later_weeks() -> None:
    # a flat ±15 wave whose Wednesdays (its peak, +14.6) are left out of the last four weeks (a closure, or
    # flagged days): those weeks' medians drop by a weekday's step, which read as a falling level
    sloped = 0
    for seed in range(60):
        rng = random.Random(seed)
        by_day = {day(i): 200 + WAVE[i % 7] + 2 * rng.gauss(0, 1) for i in range(56)}
        window = [d for i, d in enumerate(sorted(by_day)) if not (i >= 28 and i % 7 == 2)]
        rhythm = anomaly._rough_rhythm(by_day, window, median(by_day[d] for d in window))
        sloped += anomaly._trend(by_day, window, CONFIG, effect=rhythm) != 0
    # with the rhythm left in (no effect taken out, as before): 25 of 60 got a slope; here 3
    assert sloped <= 10


def _flat_or_rising(seed: int, slope: float) -> tuple[list[Observation], float]:
    """56 days of normal noise (SD 1) about a level of 100 rising ``slope`` a day, and day 56's value."""
    rng = random.Random(seed)
    values = [100 + slope * i + rng.gauss(0, 1) for i in range(57)]
    return [Observation(day=day(i), value=v) for i, v in enumerate(values[:56])], values[56]


def test_flat_noise_is_not_read_as_a_trend_by_chance() -> None:
    # a slope fitted to flat noise always takes a little of it out, so the residuals about the line were
    # a little narrower than about the median and the trend won the comparison on chance alone; with the
    # line's own error in its scale it must predict today better than the median does
    followed = 0
    for seed in range(300):
        history, _ = _flat_or_rising(seed, 0.0)
        base = baseline(history, day(56), CONFIG)
        assert base is not None
        followed += base.trend
    # the residuals' scale about the line alone: 20 of 300 followed; with the line's error: 1
    assert followed <= 5


def test_a_followed_trend_is_judged_with_the_error_of_carrying_it_to_today() -> None:
    # a rise of 0.1 a day, always followed: today's value differs from the line by the noise *and* by the
    # line's own error (its level, its slope carried half a window on), about 5 % more than the noise
    # about the line over 56 days; a scale without it judged every day of a trend a little too harshly
    squares = 0.0
    for seed in range(300):
        history, today = _flat_or_rising(seed, 0.1)
        base = baseline(history, day(56), CONFIG)
        assert base is not None
        assert base.trend
        squares += ((today - base.expected(day(56))) / base.scale) ** 2
    # root mean square z: 1.175 with the noise about the line alone, 1.112 with the line's error (the rest
    # is the scale's own sampling error, which the walk's tail stretch takes up)
    assert math.sqrt(squares / 300) < 1.14
