"""Quality of the ops swarm's statistical detector on generated studio histories (issue 8).

Histories come from the demo studio generator (``adapters/demo_source.DemoStudio``), one per seed, read
with the built-in count rules exactly as a snapshot would be. For each of the eight ops metrics
(``counts.batchesClosed`` as its daily change, as the swarm judges it):

- calm: every day of a 90-day evaluation period is judged on the untouched history; each flag is a false
  positive (the generator has no anomalies of its own) -> false positives per metric per 90 calm days;
- injected: single-day anomalies of known size k (in robust SD = 1.4826·MAD of the day's own baseline
  window) on known dates, ≥ 12 days apart, up or down (down only when the value stays ≥ 0). The value on
  the day is *replaced* by expected + k·scale ("replace"), or the calm value is *shifted* by k·scale
  ("shift"; includes the day's own noise). A detection is a flag on that day in the right direction;
  recall per k; precision = detections / all flags in the injected runs.

Real-shaped cases (issue 19; ``bench/real_shapes.py``): two-year series the generator did not make —
weekly and yearly seasonality, holiday dips and recoveries, level steps, changing variance, heavy tails,
fractional rates, small counts, a large anomaly followed by smaller ones — each with labelled windows. Ours
(walk-forward ``scan``, the shipped defaults) and a plain 28-day mean/SD z-score (threshold 3.0) run on the
same series: recall (windows found in the right direction), precision (flags inside windows / all flags),
false days per 90 calm days, and detection delay. The taxi case runs twice: as is, and with its holidays
marked in the studio calendar (known days: never judged, never in a baseline). The "oracle" line is what
the noise alone allows: a detector that knows each day's true expected value and true noise SD (the
generator's) flags |true z| >= t; over every t, the best precision it reaches while its recall stays >= 0.8,
scored like ours (a real upper bound for per-day detectors thresholding the true z). Below it, the calm
days whose own noise reaches our threshold in true SDs, and (a guide from earlier rounds, not a bound) the
precision of a detector flagging those and every window exactly once.

Run: ``.venv/bin/python bench/swarm_quality.py [--seeds 12] [--real-seeds 5] [--part all|demo|real]``
(``--real-first-seed N``: other seeds than the reported 1-5, for choosing parameters; detector settings for experiments: ``--threshold --window --level-days --scale-c --step-days
--tail-quantile --tail-margin --tail-days --trend-gain --weekday-days --far-quantile --far-margin
--far-min-days --no-continuity``, ``--only TEXT`` for the cases whose name contains it, and ``--explain`` to list
each case's false days and missed windows with their z; defaults are the shipped ones)
Loopback only, no database; bounded (about 1-2 s per seed and series).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from statistics import median

from studio_brain.adapters.demo_source import DemoStudio, evaluate
from studio_brain.adapters.rule_files import load_rule_table
from studio_brain.domain.anomaly import (
    MAD_TO_SIGMA,
    DetectorConfig,
    Observation,
    ScanResult,
    baseline_after_walk,
    scan,
)
from studio_brain.services.swarms.ops import OPS_METRICS, to_observations

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_shapes import CASES, Series, Window

WARMUP = 30
EVAL_DAYS = 90
SIZES = (3.0, 4.0, 5.0, 6.0, 8.0)
SPACING = 12


def history(seed: int, days: int) -> dict[str, list[tuple[date, float, str]]]:
    table = load_rule_table()
    epoch = date(2026, 1, 1)
    studio = DemoStudio(seed=seed, epoch=epoch)
    series: dict[str, list[tuple[date, float, str]]] = defaultdict(list)
    read_at = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(days):
        day = epoch + timedelta(days=i)
        read = evaluate(table, studio.view(day), source="demo", read_at=read_at)
        if i < WARMUP:  # let queues reach their steady state
            continue
        for name in OPS_METRICS:
            result = read.rule(name)
            assert result is not None
            assert result.count is not None
            series[name].append((day, float(result.count), f"{seed}:{day}"))
    return series


def mad_unit(values: dict[date, float], day: date, window: int) -> float:
    """The size unit of an injection: 1.4826·MAD of the metric's plain values over the window before
    ``day`` (a property of the data, not of the detector; at least 1 count)."""
    seen = [v for d, v in values.items() if day - timedelta(days=window) <= d < day]
    mid = median(seen)
    return max(1.0, MAD_TO_SIGMA * median(abs(v - mid) for v in seen))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=12)
    parser.add_argument("--threshold", type=float, default=DetectorConfig().threshold)
    parser.add_argument("--window", type=int, default=DetectorConfig().window_days)
    parser.add_argument("--level-days", type=int, default=DetectorConfig().level_days)
    parser.add_argument("--scale-c", type=float, default=DetectorConfig().scale_c)
    parser.add_argument("--step-days", type=int, default=DetectorConfig().step_days)
    parser.add_argument("--tail-quantile", type=float, default=DetectorConfig().tail_quantile)
    parser.add_argument("--weekday-days", type=int, default=DetectorConfig().weekday_days)
    parser.add_argument("--trend-gain", type=float, default=DetectorConfig().trend_gain)
    parser.add_argument("--tail-margin", type=float, default=DetectorConfig().tail_margin)
    parser.add_argument("--tail-days", type=int, default=DetectorConfig().tail_days)
    parser.add_argument("--far-quantile", type=float, default=DetectorConfig().far_quantile)
    parser.add_argument("--far-min-days", type=int, default=DetectorConfig().far_min_days)
    parser.add_argument("--far-margin", type=float, default=DetectorConfig().far_margin)
    parser.add_argument("--no-continuity", action="store_true", help="counts: no half-step correction")
    parser.add_argument("--only", default="", help="real-shaped cases whose name contains this (experiments)")
    parser.add_argument(
        "--explain",
        action="store_true",
        help="real-shaped cases: list each case's false days and missed windows with the z they were judged at",
    )
    parser.add_argument("--real-seeds", type=int, default=5, help="seeds per real-shaped case")
    parser.add_argument(
        "--real-first-seed",
        type=int,
        default=1,
        help="the first seed of the real-shaped cases (choose parameters on other seeds than the reported 1-5)",
    )
    parser.add_argument("--part", choices=("all", "demo", "real"), default="all")
    args = parser.parse_args()
    config = replace(
        DetectorConfig(),
        threshold=args.threshold,
        window_days=args.window,
        level_days=args.level_days,
        step_days=args.step_days,
        scale_c=args.scale_c,
        tail_quantile=args.tail_quantile,
        tail_margin=args.tail_margin,
        trend_gain=args.trend_gain,
        tail_days=args.tail_days,
        weekday_days=args.weekday_days,
        far_quantile=args.far_quantile,
        far_min_days=args.far_min_days,
        far_margin=args.far_margin,
        continuity=not args.no_continuity,
    )
    if args.part in ("all", "real"):
        real_cases(
            args.real_seeds,
            config,
            first_seed=args.real_first_seed,
            only=args.only,
            explain_cases=args.explain,
        )
    if args.part in ("all", "demo"):
        demo_cases(args.seeds, config)


def demo_cases(seeds: int, config: DetectorConfig) -> None:
    started = time.perf_counter()
    calm_flags: dict[str, int] = defaultdict(int)
    hits: dict[tuple[str, float], list[int]] = defaultdict(lambda: [0, 0])
    all_flags = {"replace": 0, "shift": 0}
    true_flags = {"replace": 0, "shift": 0}
    injected_total = 0
    needed = WARMUP + config.window_days + EVAL_DAYS
    for seed in range(1, seeds + 1):
        raw = history(seed, needed)
        rng = random.Random(seed)
        for name in OPS_METRICS:
            obs = to_observations(name, raw[name])
            eval_days = [o.day for o in obs][-EVAL_DAYS:]
            calm = scan(name, obs, config).findings
            calm_flags[name] += sum(1 for day in eval_days if day in calm)
            # injected runs: one copy of the series per mode, anomalies every SPACING days
            for mode in ("replace", "shift"):
                values = {o.day: o.value for o in obs}
                planned: dict[date, tuple[float, int]] = {}
                for i in range(rng.randrange(SPACING), len(eval_days), SPACING):
                    day = eval_days[i]
                    unit = mad_unit(values, day, config.window_days)
                    base = baseline_after_walk(
                        [Observation(day=d, value=v) for d, v in values.items()], day, config
                    )
                    assert base is not None
                    k = SIZES[(i // SPACING + seed) % len(SIZES)]
                    sign = 1 if rng.random() < 0.5 else -1
                    calm = values[day] if mode == "shift" else base.expected(day)
                    if calm - k * unit < 0:
                        sign = 1
                    values[day] = calm + sign * k * unit
                    planned[day] = (k, sign)
                series = [Observation(day=d, value=v) for d, v in sorted(values.items())]
                flagged = scan(name, series, config).findings
                for day in eval_days:
                    found = flagged.get(day)
                    if found is not None:
                        all_flags[mode] += 1
                    if day in planned:
                        k, sign = planned[day]
                        ok = found is not None and (found.z > 0) == (sign > 0)
                        if mode == "replace":
                            injected_total += 1
                        hits[(mode, k)][0] += int(ok)
                        hits[(mode, k)][1] += 1
                        true_flags[mode] += int(ok)
    seconds = time.perf_counter() - started
    metrics = len(OPS_METRICS)
    print(
        f"detector: threshold {config.threshold} robust SD, window {config.window_days} days, "
        f"min history {config.min_history_days}, scale floor {config.scale_floor}"
    )
    print(f"histories: {seeds} seeds x {metrics} metrics, {EVAL_DAYS} evaluation days each; {seconds:.1f} s")
    print("\nfalse positives per 90 calm days:")
    for name in OPS_METRICS:
        print(f"  {name:<28} {calm_flags[name] / seeds * 90 / EVAL_DAYS:5.2f}")
    worst = max(calm_flags.values(), default=0) / seeds * 90 / EVAL_DAYS
    mean = sum(calm_flags.values()) / (seeds * metrics) * 90 / EVAL_DAYS
    print(f"  mean per metric {mean:.2f}, worst metric {worst:.2f}")
    for mode in ("replace", "shift"):
        print(f"\ninjected ({mode}): recall by size (robust SD)")
        for k in SIZES:
            found, total = hits[(mode, k)]
            print(f"  k = {k:<4} recall {found / total if total else float('nan'):.3f}  ({found}/{total})")
        big = [hits[(mode, k)] for k in SIZES if k >= 4]
        print(f"  k >= 4 recall {sum(f for f, _ in big) / max(1, sum(t for _, t in big)):.3f}")
        print(
            f"  precision {true_flags[mode] / max(1, all_flags[mode]):.3f} "
            f"({true_flags[mode]} right flags of {all_flags[mode]}; {injected_total // 1} injections)"
        )


#: the plain comparison: mean and SD of the previous 28 days, |z| >= 3
ZSCORE_DAYS = 28
ZSCORE_THRESHOLD = 3.0
#: a flag this many days after a window's last day still counts as finding it (daily data lags)
TOLERANCE = 1


def zscore_flags(values: dict[date, float]) -> dict[date, int]:
    """Day -> direction of the plain 28-day mean/SD z-score's flags."""
    days = sorted(values)
    out: dict[date, int] = {}
    for i in range(ZSCORE_DAYS, len(days)):
        window = [values[d] for d in days[i - ZSCORE_DAYS : i]]
        mean = sum(window) / len(window)
        sd = math.sqrt(sum((v - mean) ** 2 for v in window) / (len(window) - 1))
        if sd > 0 and abs(values[days[i]] - mean) / sd >= ZSCORE_THRESHOLD:
            out[days[i]] = 1 if values[days[i]] > mean else -1
    return out


def ours_scan(series: Series, config: DetectorConfig, *, known: bool) -> ScanResult:
    obs = [Observation(day=d, value=v) for d, v in sorted(series.values.items())]
    return scan(series.case, obs, config, known=series.known if known else None)


def flags_of(result: ScanResult) -> dict[date, int]:
    """Day -> direction of a walk's flags."""
    return {d: 1 if f.z > 0 else -1 for d, f in result.findings.items()}


def explain(series: Series, result: ScanResult, seed: int, *, skip_known: bool) -> list[str]:
    """One line per false day (a flag on a calm day) and per missed window: the day, the z ours judged it
    at (``ScanResult.judged``), the true z (the generator's expected value and SD) and for a miss the
    closest its span came to the threshold in the window's direction. The scale is given over the true SD,
    before and after the tail stretch, with the kind of baseline (eighth round: the scale's error is what
    the misses and false days share)."""
    judged = Judged.of(series, skip_known=skip_known)
    lines = []

    def true_z(d: date) -> float:
        return (series.values[d] - series.expected[d]) / series.sd[d]

    def scale_of(d: date) -> str:
        j = result.judged[d]
        kind = "trend" if j.trend else f"level {j.level_days}" if j.level_days else "flat"
        return (
            f"scale/true SD {j.scale / j.stretch / series.sd[d]:.2f} x stretch {j.stretch:.3f}"
            f" = {j.scale / series.sd[d]:.2f} ({kind}{', weekday effect' if j.seasonal else ''})"
        )

    for d in judged.days:
        if d in result.findings and d not in judged.inside:
            j = result.judged[d]
            lines.append(
                f"seed {seed:2d} false  {d} {d:%a}  z {j.z:+6.2f}  true z {true_z(d):+6.2f}  "
                f"value {series.values[d]:.4g}  expected {j.expected:.4g}  scale {j.scale:.3g}  {scale_of(d)}"
            )
    flags = flags_of(result)
    for w in judged.windows:
        span = _span(w)
        if any(flags.get(d) == w.sign for d in span):
            continue
        seen = [(w.sign * result.judged[d].z, d) for d in span if d in result.judged]
        best = max(seen, default=(math.nan, w.first))
        true = max((w.sign * true_z(d) for d in span if d in series.values), default=math.nan)
        lines.append(
            f"seed {seed:2d} missed {w.first} {w.first:%a}  {w.label} ({'up' if w.sign > 0 else 'down'})  "
            f"best z {best[0]:+6.2f} on {best[1]}  true z {true:+6.2f}"
            + (f"  {scale_of(best[1])}" if best[1] in result.judged else "")
        )
    return lines


@dataclass
class Score:
    windows: int = 0
    found: int = 0
    true_flags: int = 0
    flags: int = 0
    calm_days: int = 0
    false_days: int = 0
    delays: list[int] = field(default_factory=list)
    #: calm days whose own noise is at or beyond the threshold in true noise SDs
    noise_days: int = 0

    def add(
        self, series: Series, flags: dict[date, int], *, skip_known: bool, threshold: float = math.inf
    ) -> None:
        judged = Judged.of(series, skip_known=skip_known)
        for w in judged.windows:
            self.windows += 1
            hits = [d for d in _span(w) if flags.get(d) == w.sign]
            if hits:
                self.found += 1
                self.delays.append((hits[0] - w.first).days)
        for d in judged.days:
            flagged = d in flags
            self.flags += flagged
            if d in judged.inside:
                self.true_flags += flagged
            else:
                self.calm_days += 1
                self.false_days += flagged
                self.noise_days += abs(series.noise.get(d, 0.0)) >= threshold

    def row(self) -> str:
        recall = self.found / self.windows if self.windows else float("nan")
        precision = self.true_flags / self.flags if self.flags else float("nan")
        per90 = self.false_days / self.calm_days * 90 if self.calm_days else float("nan")
        delay = sum(self.delays) / len(self.delays) if self.delays else float("nan")
        return (
            f"recall {recall:5.2f} ({self.found:3d}/{self.windows:3d})  precision {precision:5.2f}  "
            f"false days/90 {per90:5.2f}  delay {delay:4.2f} d"
        )

    def ceiling(self) -> str:
        """A guide, not a bound: calm days whose own noise reaches the threshold in true SDs, and the
        precision of a detector that flagged those and every window exactly once (it assumes every window
        found at that threshold, with one true flag each)."""
        per90 = self.noise_days / self.calm_days * 90 if self.calm_days else float("nan")
        best = self.windows / (self.windows + self.noise_days) if self.windows else float("nan")
        return f"calm days with noise >= threshold {per90:5.2f} per 90  (guide: {best:5.2f})"

    @property
    def recall(self) -> float:
        return self.found / self.windows if self.windows else 0.0

    @property
    def per90(self) -> float:
        return self.false_days / self.calm_days * 90 if self.calm_days else 0.0

    @property
    def precision(self) -> float:
        return self.true_flags / self.flags if self.flags else 1.0


#: the first evaluated day: the detector's window plus its minimum history (both methods judged alike)
EVAL_START = 70
#: the recall the oracle's precision bound must keep (the issue's recall target)
ORACLE_RECALL = 0.8


def _span(w: Window) -> list[date]:
    """A window's days and the days after it that still count as finding it."""
    return [w.first + timedelta(days=i) for i in range((w.last - w.first).days + 1 + TOLERANCE)]


@dataclass(frozen=True, kw_only=True)
class Judged:
    """What a series is scored on: the windows judged, the days judged, the days that are not calm."""

    windows: list[Window]
    days: list[date]
    #: every labelled day (and its tolerance), judged or not: never a calm day
    inside: set[date]

    @classmethod
    def of(cls, series: Series, *, skip_known: bool) -> Judged:
        days = sorted(series.values)[EVAL_START:]
        windows = [w for w in series.windows if w.first >= days[0]]
        if skip_known:
            windows = [w for w in windows if w.first not in series.known]
            days = [d for d in days if d not in series.known]
        inside = {d for w in series.windows for d in _span(w)}
        return cls(windows=windows, days=days, inside=inside)


@dataclass
class Oracle:
    """A real upper bound on precision at the recall target, per case.

    The oracle knows each day's true expected value and true noise SD (the generator's) and flags
    |value - expected| / SD >= t; scored like ours (windows for recall, flagged days for precision), over
    every t: the best precision any such detector reaches while its recall stays >= ``ORACLE_RECALL``."""

    #: per judged window: the largest true z in its span in its direction (found for every t up to it)
    window_z: list[float] = field(default_factory=list)
    #: per judged day: (|true z|, inside a window)
    day_z: list[tuple[float, bool]] = field(default_factory=list)
    calm_days: int = 0

    def add(self, series: Series, *, skip_known: bool) -> None:
        judged = Judged.of(series, skip_known=skip_known)

        def z(d: date) -> float:
            return (series.values[d] - series.expected[d]) / series.sd[d]

        self.window_z += [max(w.sign * z(d) for d in _span(w) if d in series.values) for w in judged.windows]
        self.day_z += [(abs(z(d)), d in judged.inside) for d in judged.days]
        self.calm_days += sum(1 for d in judged.days if d not in judged.inside)

    def bound(self) -> tuple[float, float, float, float]:
        """(precision, recall, threshold, false days per 90) of the best threshold keeping the recall."""
        found = sorted(self.window_z, reverse=True)
        best = (0.0, 0.0, math.inf, 0.0)
        flags = true_flags = 0
        ordered = sorted(self.day_z, reverse=True)
        for i, (value, inside) in enumerate(ordered):
            flags += 1
            true_flags += inside
            if i + 1 < len(ordered) and ordered[i + 1][0] == value:
                continue  # one threshold flags every day of this |z|
            recall = sum(1 for f in found if f >= value) / len(found) if found else 0.0
            if recall >= ORACLE_RECALL and true_flags / flags > best[0]:
                per90 = (flags - true_flags) / self.calm_days * 90 if self.calm_days else 0.0
                best = (true_flags / flags, recall, value, per90)
        return best

    def at(self, threshold: float) -> tuple[float, float, float]:
        """(recall, precision, false days per 90) of the oracle flagging |true z| >= ``threshold``."""
        recall = (
            sum(1 for f in self.window_z if f >= threshold) / len(self.window_z) if self.window_z else 0.0
        )
        flagged = [inside for value, inside in self.day_z if value >= threshold]
        precision = sum(flagged) / len(flagged) if flagged else 1.0
        per90 = (len(flagged) - sum(flagged)) / self.calm_days * 90 if self.calm_days else 0.0
        return recall, precision, per90

    def row(self, threshold: float) -> str:
        precision, recall, best, per90 = self.bound()
        at_recall, at_precision, at_per90 = self.at(threshold)
        return (
            f"bound: precision {precision:5.2f} at recall {recall:4.2f} (|true z| >= {best:4.2f}, "
            f"false days/90 {per90:5.2f}); at our threshold {threshold}: recall {at_recall:4.2f}, "
            f"precision {at_precision:4.2f}, false days/90 {at_per90:4.2f}"
        )


def real_cases(
    seeds: int, config: DetectorConfig, *, first_seed: int = 1, only: str = "", explain_cases: bool = False
) -> None:
    started = time.perf_counter()
    print(
        f"real-shaped cases: seeds {first_seed}-{first_seed + seeds - 1}, 730 days, evaluated from day {EVAL_START}"
    )
    print(
        f"  ours: walk-forward robust z, threshold {config.threshold}, window {config.window_days}, step days {config.step_days}"
    )
    print(f"  baseline: plain {ZSCORE_DAYS}-day mean/SD z-score, threshold {ZSCORE_THRESHOLD}\n")
    variants: list[tuple[str, Callable[[int], Series], bool]] = [(c(1).case, c, False) for c in CASES]
    variants.insert(1, (CASES[0](1).case + " — holidays in the calendar", CASES[0], True))
    variants = [v for v in variants if only in v[0]]
    failures: list[str] = []
    for label, make, known in variants:
        ours, plain, oracle = Score(), Score(), Oracle()
        explained: list[str] = []
        for seed in range(first_seed, first_seed + seeds):
            series = make(seed)
            oracle.add(series, skip_known=known)
            walked = ours_scan(series, config, known=known)
            ours.add(series, flags_of(walked), skip_known=known, threshold=config.threshold)
            plain.add(series, zscore_flags(series.values), skip_known=known)
            if explain_cases:
                explained += explain(series, walked, seed, skip_known=known)
        print(f"{label}")
        print(f"  ours      {ours.row()}")
        print(f"  baseline  {plain.row()}")
        print(f"  oracle    {oracle.row(config.threshold)}")
        print(f"            {ours.ceiling()}")
        for line in explained:
            print(f"    {line}")
        if ours.per90 > 1.0:
            failures.append(f"{label}: false days {ours.per90:.2f} > 1 per 90")
        if ours.precision < 0.8:
            failures.append(f"{label}: precision {ours.precision:.2f} < 0.8")
        if ours.recall < 0.8:
            failures.append(f"{label}: recall {ours.recall:.2f} < 0.8")
        if plain.per90 <= ours.per90 and plain.recall >= ours.recall:
            failures.append(f"{label}: the baseline is as good on both false days and recall")
    print(f"\n{time.perf_counter() - started:.1f} s; targets: " + ("all met" if not failures else "MISSED"))
    for line in failures:
        print(f"  - {line}")
    print()


if __name__ == "__main__":
    main()
