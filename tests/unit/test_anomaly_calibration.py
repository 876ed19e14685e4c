"""What the detector predicts and how wide it judges (issue 19, second round): each case is one the
real-shaped benchmark showed — a closed day pulling a count's centre down, a weekly rhythm read from
eight samples a weekday, heavy tails flagging calm days. Each test fails with the behaviour switched off."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import date, timedelta

from studio_brain.domain.anomaly import DetectorConfig, Observation, baseline_after_walk, scan

START = date(2026, 1, 5)  # a Monday
CONFIG = DetectorConfig()


def day(i: int) -> date:
    return START + timedelta(days=i)


def observations(values: dict[date, float]) -> list[Observation]:
    return [Observation(day=d, value=v) for d, v in sorted(values.items())]


def poisson(rng: random.Random, lam: float) -> int:
    k, p, u = 0, math.exp(-lam), rng.random()
    cum = p
    while u > cum:
        k += 1
        p *= lam / k
        cum += p
    return k


def student_t(rng: random.Random, df: int) -> float:
    """Student-t noise with unit variance."""
    chi = sum(rng.gauss(0, 1) ** 2 for _ in range(df))
    return rng.gauss(0, 1) / math.sqrt(chi / df) * math.sqrt((df - 2) / df)


def test_with_sundays_closed_a_weekday_is_expected_at_the_weekdays_usual_count() -> None:
    rng = random.Random(7)
    # firings a day: about three on a working day, almost none on a closed Sunday; the median of all
    # days is 2 (a seventh of them are near zero), the working days' median is 3
    values = {day(i): float(poisson(rng, 0.2 if day(i).weekday() == 6 else 3.0)) for i in range(120)}
    thursday, sunday = day(115), day(118)
    assert (thursday.weekday(), sunday.weekday()) == (3, 6)
    base = baseline_after_walk(observations(values), thursday, CONFIG)
    assert base is not None
    assert base.expected(thursday) == 3.0
    assert base.expected(sunday) <= 1.0


def test_the_weekly_rhythm_is_read_over_a_longer_span_than_the_level() -> None:
    def rhythm_error(config: DetectorConfig) -> float:
        rng = random.Random(9)
        truth = [15 * math.sin(2 * math.pi * k / 7) for k in range(7)]
        values = {day(i): 200 + truth[i % 7] + 6 * rng.gauss(0, 1) for i in range(200)}
        squares = 0.0
        judged = range(120, 200, 5)
        for i in judged:
            base = baseline_after_walk(observations(values), day(i), config)
            assert base is not None
            squares += (base.expected(day(i)) - 200 - truth[i % 7]) ** 2
        return math.sqrt(squares / len(judged))

    # sixteen weeks of each weekday instead of eight: the expected value errs less (2.1 against 2.6 on
    # noise 6; it was 3.5 against 7.7 while strong rhythms lost their smaller effects, which hit the
    # eight-sample estimate hardest)
    assert rhythm_error(CONFIG) < 0.9 * rhythm_error(replace(CONFIG, weekday_days=0))


def test_heavy_tails_the_walk_has_seen_widen_the_scale_so_fewer_calm_days_flag() -> None:
    def calm_flags(config: DetectorConfig) -> int:
        flags = 0
        for seed in range(1, 6):
            rng = random.Random(seed)
            # a yearly wave and t5 noise: calm, but with the tails real series have
            values = {
                day(i): round(100 + 8 * math.sin(2 * math.pi * i / 365) + 3 * student_t(rng, 5), 1)
                for i in range(500)
            }
            found = scan("m", observations(values), config).findings
            flags += sum(1 for d in found if d >= day(120))
        return flags

    assert calm_flags(CONFIG) <= 0.8 * calm_flags(replace(CONFIG, tail_quantile=0.0))


def test_on_normal_noise_the_tails_leave_the_scale_and_a_clear_anomaly_as_they_were() -> None:
    rng = random.Random(4)
    values = {day(i): round(100 + rng.gauss(0, 4), 1) for i in range(300)}
    values[day(290)] += 6 * 4
    with_tails = scan("m", observations(values), CONFIG).findings
    without = scan("m", observations(values), replace(CONFIG, tail_quantile=0.0)).findings
    assert day(290) in with_tails
    assert with_tails[day(290)].scale <= 1.1 * without[day(290)].scale


def test_a_clear_yearly_wave_is_followed_though_it_narrows_the_scale_by_less_than_a_fifth() -> None:
    rng = random.Random(1)
    # a machine's temperature: a yearly wave of ±2 °C under noise of 0.35 °C, judged on its rising side
    truth = {day(i): 68 + 2 * math.sin(2 * math.pi * (i - 30) / 365) for i in range(160)}
    values = {d: round(t + 0.35 * rng.gauss(0, 1), 2) for d, t in truth.items()}
    judged = range(100, 160, 4)
    followed = 0
    for i in judged:
        base = baseline_after_walk(observations(values), day(i), CONFIG)
        assert base is not None
        followed += base.trend
    assert followed >= 2 * len(judged) / 3


def test_the_baseline_after_the_walk_is_the_one_a_day_is_judged_against_stretch_included() -> None:
    rng = random.Random(1)
    values = {
        day(i): round(100 + 8 * math.sin(2 * math.pi * i / 365) + 3 * student_t(rng, 5), 1)
        for i in range(300)
    }
    values[day(299)] += 30
    found = scan("m", observations(values), CONFIG).findings[day(299)]
    base = baseline_after_walk(observations(values), day(299), CONFIG)
    assert base is not None
    # the tails the walk learnt widen the scale here (by about a seventh), and in both alike
    assert scan("m", observations(values)[:-1], CONFIG).tail_stretch > 1.1
    assert (base.expected(day(299)), base.scale) == (found.expected, found.scale)
