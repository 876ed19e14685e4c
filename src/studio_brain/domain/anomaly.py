"""Statistical anomaly detection per metric: robust z-scores (median/MAD) with day-of-week seasonality.

For the day under test, the baseline is the trailing window of *earlier* days only (never the day
itself). Each day's residual is its value minus the window median (or, with ``level_days`` set, minus
its local level — the median of the preceding days — so that slow drift is not an anomaly). Expected
value = level + the median residual + that weekday's effect (the weekday's median residual), an effect
kept only when it stands out from the noise. Scale = Tukey's biweight midvariance of the residuals (started
from 1.4826·MAD; a robust, consistent estimate of the standard deviation, so "4 MAD" below means four robust
standard deviations), never below ``scale_floor`` so a flat metric does not flag every +1. The biweight is
used rather than the MAD itself because the MAD of small integer counts is coarse (it jumps between 1, 1.5,
2, ... counts) and, at 37 % efficiency, noisy over a 56-day window: both fattened the tails of calm z-scores.

Level: the window median suits metrics whose days are independent (daily changes); queues wander, and for
them the median of the last few days predicts today far better. Unless ``level_days`` forces one, each
day's baseline uses the window median, or a local level from ``level_choices`` when that level's residual
scale over the same window is below ``level_gain`` times the window median's (chosen on earlier days only).
Pure: history comes in as values; which values may be used (complete, fresh snapshots only) is the
caller's decision.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from statistics import median

#: 1 / Φ⁻¹(3/4): scales the MAD of normal data to its standard deviation
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True, kw_only=True, slots=True)
class DetectorConfig:
    #: fewer earlier days than this in the window: no statistical verdict at all
    min_history_days: int = 14
    window_days: int = 56
    #: |robust z| at or above this is an anomaly
    threshold: float = 3.25
    #: the smallest scale, in the metric's own units (counts): a change of less than
    #: ``threshold * scale_floor`` on a flat metric is never an anomaly
    scale_floor: float = 1.0
    #: each weekday needs this many earlier samples before a weekday effect is estimated
    min_per_weekday: int = 2
    #: judge every day against the median of this many preceding days; 0 (default): per day, the window
    #: median or one of ``level_choices``, whichever predicts the window's days best (docs/benchmarks.md)
    level_days: int = 0
    #: with ``level_days`` 0: local levels (days) tried against the window median for each day's baseline
    level_choices: tuple[int, ...] = (3, 7)
    #: a local level is used only when its residual scale is below this share of the window median's
    level_gain: float = 0.8


@dataclass(frozen=True, kw_only=True, slots=True)
class Observation:
    day: date
    value: float
    #: the snapshot the value came from (evidence)
    ref: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class Baseline:
    center: float
    #: weekday (0 = Monday) -> additive effect; all zero when seasonality is not used
    weekday_effect: tuple[float, ...]
    scale: float
    days: int
    seasonal: bool
    #: the level the residuals were taken against: 0 = the window median, else the median of that many
    #: preceding days
    level_days: int = 0

    def expected(self, day: date) -> float:
        return self.center + self.weekday_effect[day.weekday()]

    def z(self, day: date, value: float) -> float:
        return (value - self.expected(day)) / self.scale


@dataclass(frozen=True, kw_only=True, slots=True)
class MetricAnomaly:
    """What is unusual (metric, value), by how much (expected, z), since when (first day of the run)."""

    metric: str
    day: date
    value: float
    expected: float
    scale: float
    z: float
    since: date
    baseline_days: int
    seasonal: bool
    refs: tuple[str, ...]
    #: 0: expected from the window median; else from the median of that many preceding days
    level_days: int = 0

    @property
    def direction(self) -> str:
        return "up" if self.z > 0 else "down"


def _biweight_scale(values: Sequence[float], c: float = 9.0) -> float:
    """Tukey's biweight midvariance, as a standard deviation (0 when the MAD is 0).

    Points beyond ``c`` MADs from the median get no weight, so a past anomaly in the window does not
    inflate it; unlike the MAD it uses every other point's distance, so it is not stuck on the integer
    grid of small counts and is about 85 % efficient on normal data (the MAD: 37 %)."""
    mid = median(values)
    mad = median(abs(v - mid) for v in values)
    if mad == 0:
        return 0.0
    num = den = 0.0
    for v in values:
        u = (v - mid) / (c * mad)
        if abs(u) < 1:
            num += (v - mid) ** 2 * (1 - u * u) ** 4
            den += (1 - u * u) * (1 - 5 * u * u)
    return math.sqrt(len(values) * num) / abs(den) if den else MAD_TO_SIGMA * mad


def _residual_scale(residuals: Sequence[float], dof_correction: float) -> float:
    return _biweight_scale(residuals) * dof_correction


def _level(values_by_day: dict[date, float], day: date, days: int) -> float | None:
    """The local level before ``day``: the median of the ``days`` preceding days that have a value."""
    before = [values_by_day[d] for i in range(1, days + 1) if (d := day - timedelta(days=i)) in values_by_day]
    return median(before) if len(before) >= max(1, (days + 1) // 2) else None


def baseline(history: Sequence[Observation], day: date, config: DetectorConfig) -> Baseline | None:
    """The baseline for ``day`` from the window of earlier observations, or None with too little history."""
    start = day - timedelta(days=config.window_days)
    by_day = {o.day: o.value for o in history if o.day < day and math.isfinite(o.value)}
    window = sorted(d for d in by_day if d >= start)
    if len(window) < config.min_history_days:
        return None
    if config.level_days > 0:
        return _baseline(by_day, window, day, config, config.level_days)
    best = _baseline(by_day, window, day, config, 0)
    for level_days in config.level_choices:
        local = _baseline(by_day, window, day, config, level_days)
        if best is not None and local is not None and local.scale < config.level_gain * best.scale:
            best = local
    return best


def _baseline(
    by_day: dict[date, float], window: list[date], day: date, config: DetectorConfig, level_days: int
) -> Baseline | None:
    if level_days > 0:
        # Residuals against the local level (median of the previous days): queues and counts wander,
        # and judging today against last week rather than against two months ago keeps slow drift
        # from reading as an anomaly.
        pairs = [(d, by_day[d] - lvl) for d in window if (lvl := _level(by_day, d, level_days)) is not None]
        today_level = _level(by_day, day, level_days)
        if len(pairs) < config.min_history_days or today_level is None:
            return None
    else:
        center_all = median(by_day[d] for d in window)
        pairs = [(d, by_day[d] - center_all) for d in window]
        today_level = center_all
    residuals = [r for _, r in pairs]
    offset = median(residuals)
    flat = _residual_scale(residuals, 1.0)
    groups: dict[int, list[float]] = {}
    for d, r in pairs:
        groups.setdefault(d.weekday(), []).append(r)
    effect: tuple[float, ...] = (0.0,) * 7
    scale = flat
    seasonal = False
    if len(groups) == 7 and min(len(g) for g in groups.values()) >= config.min_per_weekday:
        # keep a weekday's effect only when it stands out from the noise (about two standard errors of a
        # median of that many days): a real rhythm is kept, chance differences are not fitted
        kept = []
        for w in range(7):
            raw = median(groups[w]) - offset
            kept.append(
                raw if abs(raw) > 2.5 * max(flat, config.scale_floor) / math.sqrt(len(groups[w])) else 0.0
            )
        if any(kept):
            effect, seasonal = tuple(kept), True
            adjusted = [r - effect[d.weekday()] for d, r in pairs]
            # fitting an effect eats degrees of freedom; undo the shrinkage of those weekdays' residuals
            fitted = sum(len(groups[w]) for w in range(7) if effect[w])
            per_group = len(pairs) / 7
            share = fitted / len(pairs)
            scale = _residual_scale(adjusted, math.sqrt(1 + share / (per_group - 1)))
    return Baseline(
        center=today_level + offset,
        weekday_effect=effect,
        scale=max(scale, config.scale_floor),
        days=len(window),
        seasonal=seasonal,
        level_days=level_days,
    )


def detect(
    metric: str, history: Sequence[Observation], day: date, config: DetectorConfig
) -> MetricAnomaly | None:
    """The anomaly of ``metric`` on ``day``, or None (normal, no value that day, or too little history)."""
    by_day = {o.day: o for o in history}
    today = by_day.get(day)
    if today is None or not math.isfinite(today.value):
        return None
    base = baseline(history, day, config)
    if base is None:
        return None
    z = base.z(day, today.value)
    if abs(z) < config.threshold:
        return None
    # since when: walk back over consecutive earlier days that deviate the same way, judged by today's baseline
    since = day
    refs = [today.ref] if today.ref else []
    cursor = day - timedelta(days=1)
    while (earlier := by_day.get(cursor)) is not None:
        earlier_z = base.z(cursor, earlier.value)
        if abs(earlier_z) < config.threshold or (earlier_z > 0) != (z > 0):
            break
        since = cursor
        if earlier.ref:
            refs.append(earlier.ref)
        cursor -= timedelta(days=1)
    return MetricAnomaly(
        metric=metric,
        day=day,
        value=today.value,
        expected=base.expected(day),
        scale=base.scale,
        z=z,
        since=since,
        baseline_days=base.days,
        seasonal=base.seasonal,
        refs=tuple(refs),
        level_days=base.level_days,
    )
