"""Statistical anomaly detection per metric: robust z-scores (median/MAD) with day-of-week seasonality.

For the day under test, the baseline is the trailing window of *earlier* days only (never the day
itself). Each day's residual is its value minus the window median (or, with ``level_days`` set, minus
its local level — the median of the preceding days — so that slow drift is not an anomaly). Expected
value = level + the median residual + that weekday's effect (the weekday's median residual), an effect
kept only when it stands out from the noise. Scale = 1.4826·MAD of the residuals (a consistent estimate of the standard deviation, so "4 MAD" below means
four robust standard deviations), never below ``scale_floor`` so a flat metric does not flag every +1.
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
    threshold: float = 3.5
    #: the smallest scale, in the metric's own units (counts): a change of less than
    #: ``threshold * scale_floor`` on a flat metric is never an anomaly
    scale_floor: float = 1.0
    #: each weekday needs this many earlier samples before a weekday effect is estimated
    min_per_weekday: int = 2
    #: judge each day against the median of this many preceding days (0: against the window median).
    #: Off by default: on the demo studio's histories the window median gave fewer false positives and
    #: a higher recall (docs/benchmarks.md); a studio whose queues drift steadily may want 7.
    level_days: int = 0


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

    @property
    def direction(self) -> str:
        return "up" if self.z > 0 else "down"


def _mad(values: Sequence[float]) -> float:
    mid = median(values)
    return median(abs(v - mid) for v in values)


def _residual_scale(residuals: Sequence[float], dof_correction: float) -> float:
    return MAD_TO_SIGMA * _mad(residuals) * dof_correction


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
        # Residuals against the local level (median of the previous days): queues and counts wander,
        # and judging today against last week rather than against two months ago keeps slow drift
        # from reading as an anomaly.
        pairs = [
            (d, by_day[d] - lvl) for d in window if (lvl := _level(by_day, d, config.level_days)) is not None
        ]
        today_level = _level(by_day, day, config.level_days)
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
    )
