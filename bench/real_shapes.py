"""Real-shaped daily series with labelled anomaly windows, for the detector's benchmark (issue 19).

The demo generator's histories are what the detector was tuned on; these are not. Each case copies a
shape seen in public labelled series aggregated to days (city taxi demand, machine and room temperatures,
server load, ad-exchange rates, social-media volume): long histories (two years), weekly *and* yearly
seasonality, holiday dips with their recoveries, persistent level steps, variance that changes, heavy
tails, rates measured in fractions, small counts, and one large anomaly followed by smaller ones.

Every anomaly is a labelled window (first day, last day, direction, size in the series' own noise SD at
that time) so that recall counts windows and a flag outside every window is a false day. Seeded and
deterministic; no file or network is read.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

START = date(2024, 1, 1)  # a Monday
DAYS = 730


@dataclass(frozen=True, kw_only=True)
class Window:
    first: date
    last: date
    #: +1 up, -1 down
    sign: int
    #: size in noise SDs of the series at that time (holidays: their typical size)
    size: float
    label: str


@dataclass(kw_only=True)
class Series:
    case: str
    values: dict[date, float]
    windows: list[Window] = field(default_factory=list)
    #: days the studio would mark in its calendar (used by the "known days" variant)
    known: dict[date, str] = field(default_factory=dict)
    #: each day's own noise in the series' noise SDs (before any anomaly): what no detector can tell from
    #: an anomaly of the same size, so the benchmark can show how many calm days cross a threshold anyway
    noise: dict[date, float] = field(default_factory=dict)
    #: each day's true expected value without any labelled anomaly (a level step's window: the old level)
    #: and its true noise SD: what an oracle detector knows (the benchmark's bound on precision)
    expected: dict[date, float] = field(default_factory=dict)
    sd: dict[date, float] = field(default_factory=dict)


def _t_noise(rng: random.Random, df: int) -> float:
    """Student-t noise scaled to unit variance: the heavier tails real series have."""
    z = rng.gauss(0, 1)
    chi = sum(rng.gauss(0, 1) ** 2 for _ in range(df))
    return z / math.sqrt(chi / df) * math.sqrt((df - 2) / df)


def _inject(
    series: Series,
    rng: random.Random,
    sd_at: Callable[[date], float],
    *,
    count: int,
    sizes: tuple[float, ...] = (4.0, 5.0, 6.0, 8.0),
    avoid: int = 14,
    lower: float | None = 0.0,
) -> None:
    """Single-day anomalies of known size (k noise SDs), spaced apart from each other and from windows."""
    days = sorted(series.values)[90:]
    taken = {
        d
        for w in series.windows
        for d in _span(w.first - timedelta(days=avoid), w.last + timedelta(days=avoid))
    }
    placed = 0
    tries = 0
    while placed < count and tries < 10_000:
        tries += 1
        day = rng.choice(days)
        if day in taken:
            continue
        k = sizes[placed % len(sizes)]
        sign = 1 if rng.random() < 0.5 else -1
        value = series.values[day] + sign * k * sd_at(day)
        if lower is not None and value < lower:
            sign, value = 1, series.values[day] + k * sd_at(day)
        series.values[day] = value
        series.windows.append(Window(first=day, last=day, sign=sign, size=k, label=f"spike {k:g} SD"))
        taken |= set(_span(day - timedelta(days=avoid), day + timedelta(days=avoid)))
        placed += 1


def _span(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _holidays(year: int) -> list[tuple[date, int, float, str]]:
    """(first day, length, multiplier, label) of the holidays a city's demand dips on."""
    nov1 = date(year, 11, 1)
    thanksgiving = nov1 + timedelta(days=(3 - nov1.weekday()) % 7 + 21)
    return [
        (date(year, 1, 1), 1, 0.55, "New Year"),
        (date(year, 7, 4), 1, 0.6, "Independence Day"),
        (thanksgiving, 2, 0.5, "Thanksgiving"),
        (date(year, 12, 24), 2, 0.45, "Christmas"),
        (date(year, 12, 31), 1, 0.7, "New Year's Eve"),
    ]


def taxi_demand(seed: int) -> Series:
    """City taxi demand: ~15k rides a day, a strong weekly rhythm, a yearly wave, holiday dips, a blizzard."""
    rng = random.Random(seed)
    weekly = (-0.08, -0.03, 0.0, 0.04, 0.1, 0.06, -0.09)
    level = 15000.0
    sd_share = 0.035
    values, noise, expected, sd = {}, {}, {}, {}
    for i in range(DAYS):
        d = START + timedelta(days=i)
        season = 1 + 0.1 * math.sin(2 * math.pi * (i - 60) / 365)
        mean = level * season * (1 + weekly[d.weekday()])
        noise[d] = _t_noise(rng, 6)
        values[d] = round(mean * (1 + sd_share * noise[d]))
        expected[d], sd[d] = mean, mean * sd_share
    series = Series(
        case="taxi demand (weekly + yearly, holidays, blizzard)",
        values=values,
        noise=noise,
        expected=expected,
        sd=sd,
    )
    for year in (2024, 2025):
        for first, length, factor, label in _holidays(year):
            if first < START + timedelta(days=70) or first + timedelta(days=length) > START + timedelta(
                days=DAYS
            ):
                continue
            for d in _span(first, first + timedelta(days=length - 1)):
                values[d] = round(values[d] * factor)
            series.windows.append(
                Window(first=first, last=first + timedelta(days=length - 1), sign=-1, size=10, label=label)
            )
            series.known.update(
                dict.fromkeys(_span(first, first + timedelta(days=length - 1)), f"holiday: {label}")
            )
    blizzard = date(2025, 1, 27) + timedelta(days=seed % 5)
    for d in _span(blizzard, blizzard + timedelta(days=1)):
        values[d] = round(values[d] * 0.35)
    series.windows.append(
        Window(first=blizzard, last=blizzard + timedelta(days=1), sign=-1, size=15, label="blizzard")
    )
    _inject(series, rng, lambda d: level * sd_share, count=8)
    return series


def machine_temperature(seed: int) -> Series:
    """A machine's daily mean temperature in °C (fractional, small noise): failures show as hot days."""
    rng = random.Random(seed)
    values, noise, expected, sd = {}, {}, {}, {}
    for i in range(DAYS):
        d = START + timedelta(days=i)
        noise[d] = _t_noise(rng, 8)
        expected[d], sd[d] = 68.0 + 2.0 * math.sin(2 * math.pi * (i - 100) / 365), 0.35
        values[d] = round(expected[d] + 0.35 * noise[d], 2)
    series = Series(
        case="machine temperature (fractional, yearly)", values=values, noise=noise, expected=expected, sd=sd
    )
    _inject(series, rng, lambda d: 0.35, count=10, lower=None)
    return series


def room_temperature_rate(seed: int) -> Series:
    """An ad-exchange click rate (~1.2 %, noise 0.06 points): a metric whose noise is far below one unit."""
    rng = random.Random(seed)
    weekly = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0004, 0.0006)
    values, noise, expected, sd = {}, {}, {}, {}
    for i in range(DAYS):
        d = START + timedelta(days=i)
        noise[d] = rng.gauss(0, 1)
        expected[d], sd[d] = 0.012 + weekly[d.weekday()], 0.0006
        values[d] = round(expected[d] + 0.0006 * noise[d], 5)
    series = Series(
        case="ad-exchange rate (fraction, weekend lift)", values=values, noise=noise, expected=expected, sd=sd
    )
    _inject(series, rng, lambda d: 0.0006, count=10)
    return series


def server_load_steps(seed: int) -> Series:
    """Server load with persistent level steps (a new service, a migration): each step is one window."""
    rng = random.Random(seed)
    values, noise, expected, sd = {}, {}, {}, {}
    level = 400.0
    steps = sorted(rng.sample(range(120, DAYS - 40), 4))
    windows = []
    #: the level before the latest step, and that step's window's last day (the oracle's expected value)
    old_level, step_last = level, START
    for i in range(DAYS):
        d = START + timedelta(days=i)
        if i in steps:
            jump = rng.choice((-1, 1)) * rng.uniform(8, 14) * 12.0
            old_level, step_last = level, d + timedelta(days=3)
            level += jump
            windows.append(
                Window(
                    first=d,
                    last=d + timedelta(days=3),
                    sign=1 if jump > 0 else -1,
                    size=abs(jump) / 12,
                    label="level step",
                )
            )
        noise[d] = _t_noise(rng, 6)
        values[d] = round(level + 12.0 * noise[d])
        expected[d], sd[d] = (old_level if d <= step_last else level), 12.0
    series = Series(
        case="server load (persistent level steps)",
        values=values,
        windows=windows,
        noise=noise,
        expected=expected,
        sd=sd,
    )
    # spikes must not sit right on a step
    _inject(series, rng, lambda d: 12.0, count=8)
    return series


def social_volume_variance(seed: int) -> Series:
    """Social-media mentions: variance that doubles for months, then calms, weekly rhythm, heavy tails."""
    rng = random.Random(seed)
    weekly = (0.05, 0.04, 0.02, 0.0, -0.02, -0.06, -0.03)

    def sd_at(d: date) -> float:
        i = (d - START).days
        return 60.0 if 240 <= i < 420 else 30.0

    values, noise, expected, sd = {}, {}, {}, {}
    for i in range(DAYS):
        d = START + timedelta(days=i)
        noise[d] = _t_noise(rng, 5)
        expected[d], sd[d] = 1000 * (1 + weekly[d.weekday()]), sd_at(d)
        values[d] = round(expected[d] + sd[d] * noise[d])
    series = Series(
        case="social volume (changing variance, heavy tails)",
        values=values,
        noise=noise,
        expected=expected,
        sd=sd,
    )
    _inject(series, rng, sd_at, count=10)
    return series


def big_then_small(seed: int) -> Series:
    """One large anomaly (an outage: 25 SD for two days) followed within weeks by smaller ones (4-6 SD)."""
    rng = random.Random(seed)
    values, noise, expected, sd = {}, {}, {}, {}
    for i in range(DAYS):
        d = START + timedelta(days=i)
        noise[d] = rng.gauss(0, 1)
        expected[d], sd[d] = 200 + 15 * math.sin(2 * math.pi * i / 7), 6.0
        values[d] = round(expected[d] + 6.0 * noise[d])
    series = Series(
        case="one large anomaly, then smaller ones", values=values, noise=noise, expected=expected, sd=sd
    )
    for n in range(3):
        big = START + timedelta(days=150 + 200 * n + seed % 7)
        for d in (big, big + timedelta(days=1)):
            values[d] = values[d] - 25 * 6.0
        series.windows.append(
            Window(first=big, last=big + timedelta(days=1), sign=-1, size=25, label="outage")
        )
        for j, k in enumerate((4.0, 5.0, 6.0)):
            d = big + timedelta(days=9 + 10 * j)
            sign = 1 if (j + n) % 2 else -1
            values[d] = values[d] + sign * k * 6.0
            series.windows.append(Window(first=d, last=d, sign=sign, size=k, label=f"after outage {k:g} SD"))
    return series


def small_counts(seed: int) -> Series:
    """Firings a day at a small studio (Poisson, mean 3, closed Sundays): small counts must stay calm."""
    rng = random.Random(seed)
    values, noise, expected, sd = {}, {}, {}, {}
    for i in range(DAYS):
        d = START + timedelta(days=i)
        lam = 0.3 if d.weekday() == 6 else 3.0
        # Poisson by inversion
        k, p, u = 0, math.exp(-lam), rng.random()
        cum = p
        while u > cum:
            k += 1
            p *= lam / k
            cum += p
        values[d] = float(k)
        noise[d] = (k - lam) / math.sqrt(lam)
        expected[d], sd[d] = lam, math.sqrt(lam)
    series = Series(
        case="small counts (Poisson 3, closed Sundays)", values=values, noise=noise, expected=expected, sd=sd
    )
    # a stuck kiln queue: a day with 4 SD more firings than usual (sqrt(3) ~ 1.7 per SD)
    _inject(series, rng, lambda d: math.sqrt(3.0), count=8, sizes=(5.0, 6.0, 8.0), lower=0.0)
    for w in series.windows:
        series.values[w.first] = float(round(series.values[w.first]))
    return series


CASES: tuple[Callable[[int], Series], ...] = (
    taxi_demand,
    machine_temperature,
    room_temperature_rate,
    server_load_steps,
    social_volume_variance,
    big_then_small,
    small_counts,
)
