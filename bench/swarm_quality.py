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

Run: ``.venv/bin/python bench/swarm_quality.py [--seeds 12] [--threshold 3.5] [--window 56]``
Loopback only, no database; bounded (about 1-2 s per seed).
"""

from __future__ import annotations

import argparse
import random
import time
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from statistics import median

from studio_brain.adapters.demo_source import DemoStudio, evaluate
from studio_brain.adapters.rule_files import load_rule_table
from studio_brain.domain.anomaly import MAD_TO_SIGMA, DetectorConfig, Observation, baseline, detect
from studio_brain.services.swarms.ops import OPS_METRICS, to_observations

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
    args = parser.parse_args()
    config = replace(
        DetectorConfig(), threshold=args.threshold, window_days=args.window, level_days=args.level_days
    )
    started = time.perf_counter()
    calm_flags: dict[str, int] = defaultdict(int)
    hits: dict[tuple[str, float], list[int]] = defaultdict(lambda: [0, 0])
    all_flags = {"replace": 0, "shift": 0}
    true_flags = {"replace": 0, "shift": 0}
    injected_total = 0
    needed = WARMUP + config.window_days + EVAL_DAYS
    for seed in range(1, args.seeds + 1):
        raw = history(seed, needed)
        rng = random.Random(seed)
        for name in OPS_METRICS:
            obs = to_observations(name, raw[name])
            eval_days = [o.day for o in obs][-EVAL_DAYS:]
            for day in eval_days:
                if detect(name, obs, day, config) is not None:
                    calm_flags[name] += 1
            # injected runs: one copy of the series per mode, anomalies every SPACING days
            for mode in ("replace", "shift"):
                values = {o.day: o.value for o in obs}
                planned: dict[date, tuple[float, int]] = {}
                for i in range(rng.randrange(SPACING), len(eval_days), SPACING):
                    day = eval_days[i]
                    unit = mad_unit(values, day, config.window_days)
                    base = baseline([Observation(day=d, value=v) for d, v in values.items()], day, config)
                    assert base is not None
                    k = SIZES[(i // SPACING + seed) % len(SIZES)]
                    sign = 1 if rng.random() < 0.5 else -1
                    calm = values[day] if mode == "shift" else base.expected(day)
                    if calm - k * unit < 0:
                        sign = 1
                    values[day] = calm + sign * k * unit
                    planned[day] = (k, sign)
                series = [Observation(day=d, value=v) for d, v in sorted(values.items())]
                for day in eval_days:
                    found = detect(name, series, day, config)
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
    print(
        f"histories: {args.seeds} seeds x {metrics} metrics, {EVAL_DAYS} evaluation days each; {seconds:.1f} s"
    )
    print("\nfalse positives per 90 calm days:")
    for name in OPS_METRICS:
        print(f"  {name:<28} {calm_flags[name] / args.seeds * 90 / EVAL_DAYS:5.2f}")
    worst = max(calm_flags.values(), default=0) / args.seeds * 90 / EVAL_DAYS
    mean = sum(calm_flags.values()) / (args.seeds * metrics) * 90 / EVAL_DAYS
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


if __name__ == "__main__":
    main()
