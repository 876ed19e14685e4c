"""Statistical anomaly detection per metric: robust z-scores (median/MAD) with day-of-week seasonality,
a baseline that anomalies cannot poison, and level steps recognised as change points.

For the day under test, the baseline is the trailing window of *earlier* days only (never the day
itself). Each day's residual is its value minus the window median (or, with ``level_days`` set, minus
its local level — the median of the preceding days — so that slow drift is not an anomaly). Expected
value = level + the median residual + that weekday's effect (the weekday's median residual), an effect
kept only when it stands out from the noise. Scale = Tukey's biweight midvariance of the residuals (started
from 1.4826·MAD; a robust, consistent estimate of the standard deviation, so "4 MAD" below means four robust
standard deviations), never below a floor relative to the metric (its resolution and typical magnitude) so
a flat count does not flag every +1 while a rate measured in hundredths can still flag. The biweight is
used rather than the MAD itself because the MAD of small integer counts is coarse (it jumps between 1, 1.5,
2, ... counts) and, at 37 % efficiency, noisy over a 56-day window: both fattened the tails of calm z-scores.
Its cutoff is wide (``scale_c`` = 15 MADs): since flagged days are left out of later baselines (below),
the scale no longer has to ignore anomalies itself, and a scale that follows the heavy tails real series
have keeps their ordinary bad days from being flagged (docs/benchmarks.md, real-shaped cases). A count
(every value in the window whole) moves in whole steps, so its deviation is read half a step nearer (a
continuity correction): a Poisson-3 day of 9 is as rare as a continuous value beyond 8.5, not beyond 9.

Weekly rhythm: the weekday effects of the window-median baselines are read over ``weekday_days`` (16
weeks), each day against the median of the week centred on it, because eight samples of each weekday in
the window put an error of about a third of the noise on every judgement of that weekday, and a rhythm
changes far more slowly than a level. Each week's centre is taken with the rhythm found in a first pass
removed (the plain median of a week is whichever weekday lands in its middle, and mixes level and rhythm).
An effect is kept when it stands out from the spread *within* weekdays, not from the spread with the rhythm
still in it (with a strong rhythm, its smaller real effects looked like chance). When some weekdays have an
effect (a closed Sunday), the centre is taken from the other days, not from all of them: the median of all
days sits between the two; when those other days are fewer than half of the window, the level is read from
every day with its effect removed rather than from one weekday's eight samples.

Tails: the scale is an estimate of the standard deviation, and a threshold in standard deviations
assumes normal tails; real series have heavier ones, and a baseline's own errors (a weekday effect, a
trend carried to today) add to them. The walk knows the z-scores the series has actually produced, so the
scale is stretched by how far their 90th percentile lies beyond the normal distribution's (net of that
percentile's sampling error; never shrunk) — a threshold of 3.5 then means on this metric about what it
means on normal noise. The 90th percentile cannot see tails that only begin beyond it (Student-t noise
with five degrees of freedom has a 90th percentile of |z| *below* the normal's, yet lies beyond 3.5 SD
thirteen times as often), so the far tail (the 97th percentile, once enough days are judged, net of its
sampling error) stretches the scale too, whichever stretch is larger.

Level: the window median suits metrics whose days are independent (daily changes); queues wander, and for
them the median of the last few days predicts today far better. Unless ``level_days`` forces one, each
day's baseline uses the window median, or a local level from ``level_choices`` when that level's residual
scale over the same window is below ``level_gain`` times the window median's (chosen on earlier days only).
A slow trend across the window (a yearly wave, Theil-Sen over weekly medians with a rough weekday rhythm
taken out first) is a candidate on the same terms: otherwise every day at the end of a rising stretch
would read as high against the window's median. Its residuals are taken against a line fitted to those
same days, so their scale is the noise about the line, not the error of today's expected value, which
carries the line's own error (its level, and its slope carried half a window on to today). That error is
added to the trend's scale (``trend_error``) before it is compared with the flat median's: a slope fitted
to flat noise always takes a little of it out, and was followed on chance alone.

Walk-forward (:func:`scan`): days are judged in order, and what was learnt on earlier days shapes later
baselines. A day already flagged, or one the studio marks as known (a closure, a holiday, a kiln down for
repair), is left out of every later level, scale and weekday effect — so a holiday dip does not widen the
scale that should catch a blizzard a month later, and the day after an anomaly is judged against normal
days rather than against the anomaly. A deviation that persists ``step_days`` days in one direction is a
*change point*: reported once, after which the days before it are read as if shifted onto the new level
(so the step is the new normal, not a flag a day). A step that reverts within ``step_days`` days after
being declared was a long episode after all: the shift is withdrawn and the episode stays excluded.
:func:`detect` is :func:`scan` up to the day asked about, so the swarm and the benchmark judge alike.

Pure: history comes in as values; which values may be used (complete, fresh snapshots only) is the
caller's decision.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from enum import StrEnum
from statistics import NormalDist, median, quantiles

#: 1 / Φ⁻¹(3/4): scales the MAD of normal data to its standard deviation
MAD_TO_SIGMA = 1.4826
#: why a day was left out of the baseline: it was flagged earlier in the walk
FLAGGED = "flagged"


@dataclass(frozen=True, kw_only=True, slots=True)
class DetectorConfig:
    #: fewer earlier days than this in the window: no statistical verdict at all
    min_history_days: int = 14
    window_days: int = 56
    #: |robust z| at or above this is an anomaly
    threshold: float = 3.5
    #: the smallest scale, in the metric's own units. None (default): relative to the metric — the larger
    #: of its resolution (1 for counts; the finest step between its values otherwise) and
    #: ``relative_floor`` times its typical magnitude. A number fixes it (1.0 was the old count floor).
    scale_floor: float | None = None
    #: with ``scale_floor`` None: the share of the metric's median magnitude the scale never goes below
    relative_floor: float = 0.001
    #: each weekday needs this many earlier samples before a weekday effect is estimated
    min_per_weekday: int = 2
    #: judge every day against the median of this many preceding days; 0 (default): per day, the window
    #: median or one of ``level_choices``, whichever predicts the window's days best (docs/benchmarks.md)
    level_days: int = 0
    #: with ``level_days`` 0: local levels (days) tried against the window median for each day's baseline
    level_choices: tuple[int, ...] = (3, 7)
    #: a local level is used only when its residual scale is below this share of the window median's
    level_gain: float = 0.8
    #: this many consecutive flags in one direction make a change point (a new level); 0: never
    step_days: int = 3
    #: a flagged day is left out of later baselines only from this |z| on: leaving out every day just past
    #: the threshold would cut the tails of calm noise off the scale and make the detector ever touchier
    exclude_z: float = 4.0
    #: the biweight's cutoff in MADs: larger follows the tails of the calm noise more closely
    scale_c: float = 15.0
    #: also try following a clear slow trend (a seasonal wave) across the window; kept like a local level,
    #: only where it predicts the window's days clearly better than the flat median
    trend: bool = True
    #: a trend is followed only when it moves the level by more than this many times the noise of the
    #: weekly medians over the window
    trend_min: float = 3.0
    #: a clear trend is followed when its residual scale is below this share of the flat median's
    trend_gain: float = 1.0
    #: the trend's scale includes the error of its expected value today (the line's level and its slope
    #: carried to today, see :func:`_line_error`); False: the residuals' scale about the line alone
    trend_error: bool = True
    #: the weekly rhythm (weekday effects) of the window-median baselines is read over this many days;
    #: at or below ``window_days``: over the window alone
    weekday_days: int = 112
    #: tails: the scale is stretched by how far this quantile of the past days' |z| lies beyond the normal
    #: distribution's (never shrunk); 0: off
    tail_quantile: float = 0.9
    #: the past days' |z| looked at for the tails (the most recent judged days that were not left out)
    tail_days: int = 182
    #: a stretch is taken only beyond this many standard errors of the quantile (chance, on normal noise)
    tail_margin: float = 1.0
    #: fewer past |z| than this: no stretch yet
    tail_min_days: int = 56
    #: the far tail: the scale is also stretched by how far this quantile of the past |z| lies beyond the
    #: normal's (net of ``far_margin`` standard errors), whichever stretch is larger; 0: off
    far_quantile: float = 0.97
    #: fewer past |z| than this: no far-tail stretch yet
    far_min_days: int = 100
    #: the far-tail stretch is taken only beyond this many standard errors of its quantile. 1.0, as for
    #: the near tail. It was 2.5 because smaller margins lost the real-shaped calendar case's recall
    #: target (at 1.0 before: 33 of 45 windows); with the trend check reading the level without the
    #: weekly rhythm, 1.0 keeps it (36 of 45) and flags fewer calm days (docs/benchmarks.md, fifth round)
    far_margin: float = 1.0
    #: counts move in whole steps: a day's deviation is read half a step nearer (a continuity correction)
    continuity: bool = True

    @property
    def walk_days(self) -> int:
        """Days of history that put every part of the walk to use: the weekly rhythm's span (or the
        window, if longer), then enough judged days for the tails (the swarm reads this many)."""
        return max(self.window_days, self.weekday_days) + self.tail_min_days


class FindingKind(StrEnum):
    #: a day unlike its baseline
    ANOMALY = "anomaly"
    #: a deviation that persisted: from ``since`` on, the metric has a new level
    CHANGE_POINT = "change_point"


@dataclass(frozen=True, kw_only=True, slots=True)
class Observation:
    day: date
    value: float
    #: the snapshot the value came from (evidence)
    ref: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class Exclusion:
    """A day of the baseline window left out of level and scale, and why (evidence for a finding)."""

    day: date
    #: ``flagged`` (an earlier anomaly) or the studio calendar's label, e.g. ``closure: kiln repair``
    reason: str


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
    #: the window median followed a slow trend to today (a seasonal wave)
    trend: bool = False
    #: days of the window left out, oldest first
    excluded: tuple[Exclusion, ...] = ()
    #: the metric's step when it is a count (1), else 0: a deviation is read half a step nearer
    step: float = 0.0

    def expected(self, day: date) -> float:
        return self.center + self.weekday_effect[day.weekday()]

    def z(self, day: date, value: float) -> float:
        # a count of 9 against an expected 3 is as rare as a continuous value beyond 8.5, not beyond 9:
        # without the half step a Poisson-3 day of 9 (tail 0.004, eight times a 3.5-SD normal day's)
        # read as 3.5 SD and flagged
        deviation = value - self.expected(day)
        return math.copysign(max(0.0, abs(deviation) - self.step / 2), deviation) / self.scale


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
    #: the expected value followed the window's slow trend
    trend: bool = False
    kind: FindingKind = FindingKind.ANOMALY
    #: days left out of the baseline this finding was judged against, and why
    excluded: tuple[Exclusion, ...] = ()

    @property
    def direction(self) -> str:
        return "up" if self.z > 0 else "down"


@dataclass(frozen=True, kw_only=True, slots=True)
class Shift:
    """A declared change point: days before ``start`` are read as higher by the step's size.

    The size is re-estimated every day from the days since ``start`` (up to ``SHIFT_DAYS`` of them), each
    against the baseline the step was judged by (``reference``, weekday rhythm included): three days say
    roughly how big a step is, two weeks say it well, and a poorly sized step would bias every baseline
    the old days still sit in."""

    start: date
    declared: date
    reference: Baseline

    def offset(self, values: Mapping[date, float], day: date) -> float:
        deviations = [
            values[d] - self.reference.expected(d)
            for i in range(SHIFT_DAYS)
            if (d := self.start + timedelta(days=i)) < day and d in values
        ]
        return median(deviations) if deviations else 0.0


#: the most days after a change point used to size its step
SHIFT_DAYS = 14


@dataclass(frozen=True, kw_only=True, slots=True)
class Judgement:
    """How the walk judged one day, flagged or not: its z (tail stretch included) against the expected
    value and scale it was judged by, and what that scale was made of: the tail stretch (``scale /
    stretch`` is the baseline's own) and the kind of baseline (a miss or a false day is then told from the
    window's sampling error or the stretch without re-running the walk; docs/benchmarks.md, eighth round)."""

    z: float
    expected: float
    scale: float
    #: the stretch of the baseline's scale for heavy tails (1: none)
    stretch: float = 1.0
    #: the baseline's level: 0 the window median, else the median of that many preceding days
    level_days: int = 0
    #: the baseline followed the window's slow trend
    trend: bool = False
    #: the baseline had a weekday effect
    seasonal: bool = False

    @classmethod
    def of(cls, base: Baseline, day: date, value: float, stretch: float) -> Judgement:
        """How ``day``'s ``value`` is judged against ``base`` (its own scale) widened by ``stretch``."""
        widened = replace(base, scale=base.scale * stretch)
        return cls(
            z=widened.z(day, value),
            expected=widened.expected(day),
            scale=widened.scale,
            stretch=stretch,
            level_days=base.level_days,
            trend=base.trend,
            seasonal=base.seasonal,
        )


@dataclass(kw_only=True)
class ScanResult:
    """What a walk over a series found: findings by day, the days left out, the change points kept."""

    findings: dict[date, MetricAnomaly] = field(default_factory=dict)
    #: every day judged (a baseline was there), flagged or not: what it was judged by. Explains a miss or
    #: a false day (how near the threshold it came) without re-running the walk
    judged: dict[date, Judgement] = field(default_factory=dict)
    excluded: dict[date, str] = field(default_factory=dict)
    shifts: list[Shift] = field(default_factory=list)
    #: the stretch of the scale (heavy tails) the walk would apply to the day after its last
    tail_stretch: float = 1.0


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


def _residual_scale(residuals: Sequence[float], dof_correction: float, c: float = 9.0) -> float:
    return _biweight_scale(residuals, c) * dof_correction


def scale_floor(values: Sequence[float], config: DetectorConfig) -> float:
    """The smallest scale for a metric with these values: fixed by the config, or relative to the metric.

    Counts (every value whole) have a resolution of one: a flat count never flags a +1. Other metrics
    (rates, averages) have the finest step between their distinct values; and no metric's scale goes below
    ``relative_floor`` of its median magnitude, so a series with almost no noise does not flag rounding."""
    if config.scale_floor is not None:
        return config.scale_floor
    magnitude = median(abs(v) for v in values) if values else 0.0
    if all(float(v).is_integer() for v in values):
        resolution = 1.0
    else:
        distinct = sorted({round(v, 12) for v in values})
        steps = [b - a for a, b in itertools.pairwise(distinct) if b - a > 0]
        resolution = min(steps) if steps else max(magnitude * config.relative_floor, 1e-9)
    return max(resolution, config.relative_floor * magnitude, 1e-12)


def _level(values_by_day: Mapping[date, float], day: date, days: int) -> float | None:
    """The local level before ``day``: the median of the ``days`` preceding days that have a value."""
    before = [values_by_day[d] for i in range(1, days + 1) if (d := day - timedelta(days=i)) in values_by_day]
    return median(before) if len(before) >= max(1, (days + 1) // 2) else None


def baseline(
    history: Sequence[Observation],
    day: date,
    config: DetectorConfig,
    *,
    exclude: Mapping[date, str] | None = None,
    shifts: Sequence[Shift] = (),
) -> Baseline | None:
    """The baseline for ``day`` from the window of earlier observations, or None with too little history.

    ``exclude``: days left out (with their reason); ``shifts``: change points, onto whose new level the
    days before them are moved."""
    exclude = exclude or {}
    start = day - timedelta(days=config.window_days)
    by_day = {
        o.day: o.value for o in history if o.day < day and math.isfinite(o.value) and o.day not in exclude
    }
    # a count (every value whole, before any shift moves the old days by a fractional step)
    count = config.continuity and all(float(v).is_integer() for d, v in by_day.items() if d >= start)
    if shifts:
        offsets = [(s.start, s.offset(by_day, day)) for s in shifts]
        by_day = {d: v + sum(o for first, o in offsets if d < first) for d, v in by_day.items()}
    window = sorted(d for d in by_day if d >= start)
    if len(window) < config.min_history_days:
        return None
    excluded = tuple(Exclusion(day=d, reason=exclude[d]) for d in sorted(exclude) if start <= d < day)
    floor = scale_floor([by_day[d] for d in window], config)
    groups = _weekly_rhythm(by_day, day, config)
    # shared by the flat and the trend candidate (the rhythm's centre and spread do not depend on either)
    weekly = None if groups is None else _Rhythm.of(groups)
    if config.level_days > 0:
        found = _baseline(by_day, window, day, config, config.level_days, floor)
    else:
        # the window median unless a trend or a local level predicts the window's days clearly better
        found = _baseline(by_day, window, day, config, 0, floor, weekly=weekly)
        if config.trend:
            # a trend has already shown itself clear against the weekly medians' noise (_trend): it needs
            # only to predict the window no worse, not a fifth better (a yearly wave moves the level by
            # about the noise over a window, so it rarely cut the scale by a fifth and was left unused)
            sloped = _baseline(by_day, window, day, config, 0, floor, trend=True, weekly=weekly)
            if found is not None and sloped is not None and sloped.scale < config.trend_gain * found.scale:
                found = sloped
        candidates = [_baseline(by_day, window, day, config, n, floor) for n in config.level_choices]
        for other in candidates:
            if found is not None and other is not None and other.scale < config.level_gain * found.scale:
                found = other
    if found is None:
        return None
    return Baseline(
        center=found.center,
        weekday_effect=found.weekday_effect,
        scale=found.scale,
        days=found.days,
        seasonal=found.seasonal,
        level_days=found.level_days,
        trend=found.trend,
        excluded=excluded,
        step=1.0 if count else 0.0,
    )


def _baseline(
    by_day: dict[date, float],
    window: list[date],
    day: date,
    config: DetectorConfig,
    level_days: int,
    floor: float,
    *,
    trend: bool = False,
    weekly: _Rhythm | None = None,
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
        # the rhythm out first: weekly medians alone keep a strong one in (see _trend)
        slope = (
            _trend(by_day, window, config, effect=_rough_rhythm(by_day, window, center_all)) if trend else 0.0
        )
        if trend and slope == 0.0:
            return None
        mid = window[len(window) // 2]
        pairs = [(d, by_day[d] - center_all - slope * (d - mid).days) for d in window]
        today_level = center_all + slope * (day - mid).days
    residuals = [r for _, r in pairs]
    offset = median(residuals)
    flat = _residual_scale(residuals, 1.0, config.scale_c)
    groups: dict[int, list[float]] = {}
    for d, r in pairs:
        groups.setdefault(d.weekday(), []).append(r)
    rhythm: Mapping[int, Sequence[float]] = groups
    start = offset
    within: float | None = None
    if level_days == 0 and weekly is not None:
        # the window's level, the longer span's weekly rhythm (see _weekly_rhythm)
        rhythm, start, within = weekly.groups, weekly.middle, weekly.within
    effect: tuple[float, ...] = (0.0,) * 7
    scale = flat
    seasonal = False
    if len(rhythm) == 7 and min(len(g) for g in rhythm.values()) >= config.min_per_weekday:
        # keep a weekday's effect only when it stands out from the noise (about two standard errors of a
        # median of that many days): a real rhythm is kept, chance differences are not fitted
        # the noise an effect must stand out from is the spread within each weekday: ``flat`` still
        # holds the rhythm itself, and with a strong one (±15 on noise 4) the smaller real effects
        # (±6.5) looked like chance and were dropped
        noise = max(_within_spread(rhythm) if within is None else within, floor)
        kept = _weekday_effects(rhythm, start, noise, floor)
        if any(kept) and not all(kept):
            # the days without an effect set the centre: the median over all days sits between the normal
            # days and the odd ones (with Sundays closed, a Poisson-3 count's median is 2, not 3), so once
            # the odd weekdays are known the centre is taken from the others, and the effects from there
            start = median(x for w, g in rhythm.items() if not kept[w] for x in g)
            kept = _weekday_effects(rhythm, start, noise, floor)
        if any(kept):
            effect, seasonal = tuple(kept), True
            # the level from the days without an effect (the effects' own reference) while they are most
            # of the window; else from every day with its effect removed: the days without an effect may
            # be a single weekday's eight samples
            plain = [r for d, r in pairs if not effect[d.weekday()]]
            if 2 * len(plain) >= len(pairs):
                offset = median(plain)
            else:
                offset = median(r - effect[d.weekday()] for d, r in pairs)
            adjusted = [r - effect[d.weekday()] for d, r in pairs]
            # fitting an effect eats degrees of freedom; undo the shrinkage of those weekdays' residuals
            per_group = sum(len(g) for g in rhythm.values()) / 7
            share = sum(1 for d, _ in pairs if effect[d.weekday()]) / len(pairs)
            scale = _residual_scale(adjusted, math.sqrt(1 + share / (per_group - 1)), config.scale_c)
    if trend and config.trend_error:
        scale *= math.sqrt(1 + _line_error(window, day))
    return Baseline(
        center=today_level + offset,
        weekday_effect=effect,
        scale=max(scale, floor),
        days=len(window),
        seasonal=seasonal,
        level_days=level_days,
        trend=trend,
    )


def _weekly_rhythm(
    by_day: Mapping[date, float], day: date, config: DetectorConfig
) -> dict[int, list[float]] | None:
    """Weekday -> each day's value minus the median of the week centred on it, over ``weekday_days``.

    A weekday effect taken from the window alone rests on eight samples of each weekday, and its error
    (about a third of the noise) lands on every judgement of that weekday. The rhythm changes far more
    slowly than the level, so it is read over a longer span, each day against its own centred week (which
    holds every weekday once, so the level's drift and the rhythm do not mix). None: no longer span asked
    for, or the window is all there is."""
    if config.weekday_days <= config.window_days:
        return None
    first = day - timedelta(days=config.weekday_days)
    # values from three days before the span to yesterday, None where missing; day j of the span is
    # values[j + 3], its centred week values[j : j + 7] (the last three days have no full week yet)
    values = [by_day.get(first + timedelta(days=i)) for i in range(-3, config.weekday_days)]
    weekday = [(first + timedelta(days=i)).weekday() for i in range(-3, config.weekday_days)]
    effect = [0.0] * 7
    groups: dict[int, list[float]] = {}
    for n in range(RHYTHM_PASSES):
        groups = {}
        for j in range(config.weekday_days - 3):
            v = values[j + 3]
            if v is None:
                continue
            # the week's centre with the rhythm estimated so far taken out: the plain median of a week
            # mixes level and rhythm (it is whichever weekday lands in the middle), and that error fell
            # on every residual
            week = [w - effect[weekday[k]] for k in range(j, j + 7) if (w := values[k]) is not None]
            if len(week) >= 5:
                groups.setdefault(weekday[j + 3], []).append(v - median(week))
        if len(groups) < 7:
            return groups
        if n + 1 < RHYTHM_PASSES:
            # each day was taken against its week with the rhythm out, so a weekday's median is its whole
            # effect, not a correction to the one so far: added to it, a third pass overshot the rhythm
            middle = median(x for g in groups.values() for x in g)
            effect = [median(groups[w]) - middle for w in range(7)]
    return groups


@dataclass(frozen=True, kw_only=True, slots=True)
class _Rhythm:
    """The weekly rhythm read over the longer span, with its centre and its spread within weekdays."""

    groups: Mapping[int, Sequence[float]]
    #: the median of every day's residual against its week
    middle: float
    #: the noise within weekdays (see _within_spread); None while a weekday has fewer than two days
    within: float | None

    @classmethod
    def of(cls, groups: Mapping[int, Sequence[float]]) -> _Rhythm:
        values = [x for g in groups.values() for x in g]
        full = len(groups) == 7 and min(len(g) for g in groups.values()) >= 2
        return cls(
            groups=groups,
            middle=median(values) if values else 0.0,
            within=_within_spread(groups) if full else None,
        )


#: passes of the weekly rhythm's centring: the first against the plain median of each week, the others
#: against the week with the rhythm found in the pass before taken out. More passes converge: a weekend
#: lift of 0.67 SD over 16 weeks reads 0.50 after two and 0.52 after ten (docs/benchmarks.md, seventh round)
RHYTHM_PASSES = 2


def _within_spread(groups: Mapping[int, Sequence[float]]) -> float:
    """The noise of the residuals with each weekday's median removed (the spread within weekdays)."""
    within = [x - m for g in groups.values() if len(g) > 1 for m in (median(g),) for x in g]
    if not within:
        return 0.0
    per_group = len(within) / len(groups)
    # removing a median per weekday shrinks the residuals a little; undo it
    return _biweight_scale(within) * math.sqrt(per_group / (per_group - 1))


def _weekday_effects(
    groups: Mapping[int, Sequence[float]], offset: float, noise: float, step: float
) -> list[float]:
    """Each weekday's median residual beyond ``offset``, kept only beyond ~2.5 standard errors (else 0).

    ``step``: the metric's resolution (the scale floor). A median of whole counts moves in half or whole
    units, so a weekday of small counts is a unit off by chance far more often than its standard error
    says; half a step is taken off each effect before the test (a continuity correction; nothing for a
    metric whose noise spans many steps)."""
    kept = []
    for w in range(7):
        raw = median(groups[w]) - offset
        kept.append(raw if abs(raw) - step / 2 > 2.5 * noise / math.sqrt(len(groups[w])) else 0.0)
    return kept


def _rough_rhythm(by_day: Mapping[date, float], window: Sequence[date], middle: float) -> tuple[float, ...]:
    """A rough weekday rhythm over the window: each weekday's median minus ``middle``, the median of every
    day of the window (the caller's, already computed).

    Only for the trend check (:func:`_trend`), which must see the level without the rhythm, so no test of
    whether an effect is real: a chance effect (about 0.4 noise SD on eight samples of a weekday) is the
    same in every week and moves every full week's median about alike, tilting no slope. A trend moves
    each weekday's median by at most three days' worth of it (their days are spread evenly over the
    window). 0 for a weekday with fewer than two days in the window."""
    groups: dict[int, list[float]] = {}
    for d in window:
        groups.setdefault(d.weekday(), []).append(by_day[d])
    return tuple(median(g) - middle if len(g := groups.get(w, [])) >= 2 else 0.0 for w in range(7))


def _trend(
    by_day: Mapping[date, float],
    window: Sequence[date],
    config: DetectorConfig,
    *,
    effect: Sequence[float] = (0.0,) * 7,
) -> float:
    """A robust slope per day over the window (Theil-Sen over weekly medians), or 0 when it is not clear.

    A slow seasonal wave moves the level by more than the noise over eight weeks; judged against the
    window's median, every day at the end of a rising stretch would look high. Weekly medians keep single
    odd days out of the slope; a slope is kept only when it moves the level by more than the noise of
    those medians over the window, so a flat metric keeps a flat baseline.

    ``effect``: the weekday rhythm (:func:`_rough_rhythm`), taken out of every value first. A weekly median
    does not remove a strong rhythm: it is whichever weekday lands in the middle, several weekdays compete
    for that place from week to week, and a week with a day left out lands on another one. Those jumps
    went into the medians' spread and hid real trends (a rise of two noise SDs over the window under a
    ±15 wave on noise 4 was followed in 15 of 40 series, now 37), and a weekday missing from the later
    weeks read as a slope (25 of 60 flat series, now 3; docs/benchmarks.md, issue 19 fifth round)."""
    blocks: list[tuple[float, float]] = []
    first = window[0]
    weeks: dict[int, list[float]] = {}
    for d in window:
        weeks.setdefault((d - first).days // 7, []).append(by_day[d] - effect[d.weekday()])
    for week, values in sorted(weeks.items()):
        if len(values) >= 5:
            blocks.append((week * 7 + 3.0, median(values)))
    if len(blocks) < 4:
        return 0.0
    slopes = [(b[1] - a[1]) / (b[0] - a[0]) for i, a in enumerate(blocks) for b in blocks[i + 1 :]]
    slope = median(slopes)
    spread = _biweight_scale([m - slope * t for t, m in blocks])
    span = blocks[-1][0] - blocks[0][0]
    return slope if abs(slope) * span > config.trend_min * max(spread, 1e-12) else 0.0


def _line_error(window: Sequence[date], day: date) -> float:
    """The variance of a trend's expected value on ``day``, as a share of the noise's variance.

    The residuals' scale is the noise about the line fitted to the window's days; today's value also
    differs from the line by the line's own error. Its level is a median of the window's residuals
    (variance π/2·σ²/n for a median of n days) and its slope, from medians too, is carried from the
    middle of the window to today, half a window on (about π/2·σ²/Σ(t − t̄)² per day squared, as for
    least squares on medians). Over 56 days the two add about 0.11: a scale about 5 % wider. Without it a
    slope fitted to flat noise (which always takes a little of it out) was followed in 20 of 300 flat
    series, and every trend was judged with a scale about 5 % narrow (docs/benchmarks.md, sixth round)."""
    first = window[0]
    ts = [(d - first).days for d in window]
    mean = sum(ts) / len(ts)
    sxx = sum((t - mean) ** 2 for t in ts)
    ahead = (day - first).days - mean
    return (math.pi / 2) * (1 / len(ts) + (ahead * ahead / sxx if sxx else 0.0))


def _tail_stretch(past_z: Sequence[float], config: DetectorConfig) -> float:
    """How much wider than the baseline's scale the metric's noise has shown itself to be, at least 1.

    The scale is an estimate of the standard deviation, and a threshold in standard deviations assumes
    normal tails; real series often have heavier ones (a day of 3.5 SD is then several times likelier).
    Every day the walk judges gives a z the series has actually produced: when an upper quantile of the
    recent ones lies beyond the normal distribution's, the scale is stretched by that ratio, so the
    threshold keeps its meaning on the metric's own tails. Days left out (anomalies) are not among them,
    and the 90th percentile is far enough inside that a few unmarked anomalies barely move it."""
    if not config.tail_quantile or len(past_z) < max(config.tail_min_days, 20):
        return 1.0
    # the percentiles once (a sort of the walk's past |z|), for the near and the far tail
    cuts = quantiles(past_z, n=100, method="inclusive")
    stretch = _quantile_stretch(cuts, len(past_z), config.tail_quantile, config.tail_margin)
    if config.far_quantile and len(past_z) >= config.far_min_days:
        stretch = max(stretch, _quantile_stretch(cuts, len(past_z), config.far_quantile, config.far_margin))
    return stretch


def _quantile_stretch(cuts: Sequence[float], n: int, q: float, margin: float) -> float:
    """How far the ``q`` quantile of ``n`` past |z| (``cuts``: their percentiles) lies beyond the normal
    distribution's, at least 1."""
    cut = cuts[round(q * 100) - 1]
    normal = NormalDist().inv_cdf(0.5 + q / 2)
    # the quantile of n normal |z| has a standard error of sqrt(q(1-q)/n) / density: only what lies
    # beyond ``margin`` of those is taken as tails (else calm normal noise would be stretched by
    # chance about half the time)
    error = math.sqrt(q * (1 - q) / n) / (2 * NormalDist().pdf(normal))
    return max(1.0, (cut - margin * error) / normal)


def scan(
    metric: str,
    history: Sequence[Observation],
    config: DetectorConfig,
    *,
    known: Mapping[date, str] | None = None,
    until: date | None = None,
) -> ScanResult:
    """Judge every day of ``history`` (up to ``until``) in order; see the module docstring.

    ``known``: days the studio marked (closures, holidays) with their label: never judged, always left
    out of baselines."""
    known = known or {}
    result = ScanResult()
    excluded = result.excluded
    excluded.update(known)
    by_day = {o.day: o for o in history}
    days = sorted(d for d, o in by_day.items() if math.isfinite(o.value) and (until is None or d <= until))
    #: the current run of flags in one direction: (day, deviation from its baseline, direction)
    run: list[tuple[date, float]] = []
    run_up = True
    previous: date | None = None
    #: |z| of the days judged so far that stayed in the baseline (before any stretch), oldest first
    past_z: deque[float] = deque(maxlen=max(1, config.tail_days))
    for day in days:
        if previous is not None and run and (day - previous).days > 1:
            run = []  # a gap in the series ends a run
        previous = day
        if day in known:
            run = []
            continue
        # a step declared recently that has reverted: the episode was long, not a new level
        recent = [s for s in result.shifts if (day - s.declared).days <= max(config.step_days, 1)]
        base = baseline(history, day, config, exclude=excluded, shifts=result.shifts)
        if base is None:
            continue
        value = by_day[day].value
        raw_z = base.z(day, value)
        stretch = _tail_stretch(past_z, config)
        result.judged[day] = Judgement.of(base, day, value, stretch)
        base = replace(base, scale=base.scale * stretch)
        z = base.z(day, value)
        if recent and abs(z) >= config.threshold:
            without = [s for s in result.shifts if s not in recent]
            old = baseline(history, day, config, exclude=excluded, shifts=without)
            if old is not None and abs(old.z(day, value) / stretch) < config.threshold:
                # judged, in the end, by the baseline without the withdrawn step
                result.judged[day] = Judgement.of(old, day, value, stretch)
                # what was reported stays reported (the swarm said it that day); only the baseline changes
                for s in recent:
                    result.shifts.remove(s)
                    for d in days:
                        if s.start <= d < day and d not in known:
                            excluded[d] = FLAGGED
                run = []
                continue
        if abs(z) < config.threshold:
            run = []
            past_z.append(abs(raw_z))
            continue
        up = z > 0
        if not run or up != run_up:
            run, run_up = [], up
        run.append((day, value - base.expected(day)))
        kind = FindingKind.ANOMALY
        if config.step_days and len(run) >= config.step_days:
            # persisted: a new level from the run's first day on; its days become ordinary again
            kind = FindingKind.CHANGE_POINT
            start = run[0][0]
            result.shifts.append(Shift(start=start, declared=day, reference=base))
            for d, _ in run:
                excluded.pop(d, None)
        elif abs(z) >= config.exclude_z:
            excluded[day] = FLAGGED
        else:
            past_z.append(abs(raw_z))  # a flag kept in the baseline is part of its tails too
        since = run[0][0]
        refs = tuple(ref for d in sorted((d for d, _ in run), reverse=True) if (ref := by_day[d].ref))
        result.findings[day] = MetricAnomaly(
            metric=metric,
            day=day,
            value=value,
            expected=base.expected(day),
            scale=base.scale,
            z=z,
            since=since,
            baseline_days=base.days,
            seasonal=base.seasonal,
            refs=refs,
            level_days=base.level_days,
            trend=base.trend,
            kind=kind,
            excluded=base.excluded,
        )
        if kind is FindingKind.CHANGE_POINT:
            run = []
    result.tail_stretch = _tail_stretch(past_z, config)
    return result


def detect(
    metric: str,
    history: Sequence[Observation],
    day: date,
    config: DetectorConfig,
    *,
    known: Mapping[date, str] | None = None,
) -> MetricAnomaly | None:
    """The anomaly of ``metric`` on ``day``, or None (normal, no value that day, a known day, or too little
    history). Earlier days are walked first, so flagged days and change points shape the baseline."""
    today = next((o for o in history if o.day == day), None)
    if today is None or not math.isfinite(today.value):
        return None
    return scan(metric, history, config, known=known, until=day).findings.get(day)


def baseline_after_walk(
    history: Sequence[Observation],
    day: date,
    config: DetectorConfig,
    *,
    known: Mapping[date, str] | None = None,
) -> Baseline | None:
    """The baseline ``detect`` judges ``day`` against: the walk's exclusions and change points applied."""
    walked = scan("", [o for o in history if o.day < day], config, known=known)
    found = baseline(history, day, config, exclude=walked.excluded, shifts=walked.shifts)
    return None if found is None else replace(found, scale=found.scale * walked.tail_stretch)
