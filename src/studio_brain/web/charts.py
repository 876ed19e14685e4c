"""Server-side SVG charts for the cockpit's Trends page (issue 14): no JavaScript, no CDN.

Pure functions: a series of (day, value or None) in, safe markup out. Every interpolated value goes
through ``Markup.format`` (escaped); only numbers, dates and labels are interpolated.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date

from markupsafe import Markup

#: the chart's inner drawing box, in SVG units (the SVG scales to its container's width)
WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 14, 34


@dataclass(frozen=True, kw_only=True, slots=True)
class Chart:
    svg: Markup
    #: the chart in words (for screen readers and the table under it)
    summary: str


def _nice_ticks(low: float, high: float, count: int = 5, *, whole: bool = False) -> list[float]:
    """Round tick values covering [low, high] (1, 2, 5 × 10^n steps; whole numbers for counts)."""
    if high <= low:
        high = low + 1
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    if whole:
        step = max(step, 1)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 0.001:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _label(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _date_ticks(days: Sequence[date], count: int = 6) -> list[int]:
    if len(days) <= 1:
        return [0] if days else []
    step = max(1, round((len(days) - 1) / (count - 1)))
    picks = list(range(0, len(days), step))
    if picks[-1] != len(days) - 1:
        if len(days) - 1 - picks[-1] < step / 2:
            picks[-1] = len(days) - 1
        else:
            picks.append(len(days) - 1)
    return picks


def line_chart(
    series: Sequence[tuple[date, float | None]],
    *,
    label: str,
    anomalies: Collection[date] = (),
) -> Chart:
    """A line chart with a y axis (round ticks), a date x axis, gaps where a day has no close, and each
    anomalous day marked with a red ring (its value and date in a tooltip)."""
    known = [(d, v) for d, v in series if v is not None]
    if not known:
        svg = Markup(
            '<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{label}: no closes in this range">'
            '<text x="{cx}" y="{cy}" text-anchor="middle" class="chart-empty">No closes in this range</text></svg>'
        ).format(w=WIDTH, h=HEIGHT, label=label, cx=WIDTH / 2, cy=HEIGHT / 2)
        return Chart(svg=svg, summary="no closes in this range")
    days = [d for d, _ in series]
    values = [v for _, v in known]
    ticks = _nice_ticks(min(values), max(values), whole=all(float(v).is_integer() for v in values))
    low, high = ticks[0], ticks[-1]
    span = (high - low) or 1.0
    inner_w = WIDTH - LEFT - RIGHT
    inner_h = HEIGHT - TOP - BOTTOM

    def x(index: int) -> float:
        return LEFT + (index / max(len(days) - 1, 1)) * inner_w

    def y(value: float) -> float:
        return TOP + inner_h - (value - low) / span * inner_h

    parts: list[Markup] = []
    for tick in ticks:
        parts.append(
            Markup(
                '<line class="grid" x1="{x1}" x2="{x2}" y1="{y}" y2="{y}"/>'
                '<text class="tick y" x="{tx}" y="{ty}" text-anchor="end">{text}</text>'
            ).format(
                x1=LEFT,
                x2=WIDTH - RIGHT,
                y=round(y(tick), 1),
                tx=LEFT - 6,
                ty=round(y(tick) + 4, 1),
                text=_label(tick),
            )
        )
    for index in _date_ticks(days):
        parts.append(
            Markup(
                '<line class="axis-tick" x1="{x}" x2="{x}" y1="{y1}" y2="{y2}"/>'
                '<text class="tick x" x="{x}" y="{ty}" text-anchor="middle">{text}</text>'
            ).format(
                x=round(x(index), 1),
                y1=TOP + inner_h,
                y2=TOP + inner_h + 4,
                ty=HEIGHT - BOTTOM + 18,
                text=days[index].strftime("%b %d").replace(" 0", " "),
            )
        )
    parts.append(
        Markup(
            '<line class="axis" x1="{l}" x2="{r}" y1="{b}" y2="{b}"/><line class="axis" x1="{l}" x2="{l}" y1="{t}" y2="{b}"/>'
        ).format(l=LEFT, r=WIDTH - RIGHT, t=TOP, b=TOP + inner_h)
    )
    segments: list[list[str]] = [[]]
    for index, (_, value) in enumerate(series):
        if value is None:
            if segments[-1]:
                segments.append([])
            continue
        segments[-1].append(f"{x(index):.1f},{y(value):.1f}")
    for points in segments:
        if len(points) == 1:
            cx, cy = points[0].split(",")
            parts.append(Markup('<circle class="dot" cx="{cx}" cy="{cy}" r="2.5"/>').format(cx=cx, cy=cy))
        elif points:
            parts.append(Markup('<polyline class="line" points="{p}"/>').format(p=" ".join(points)))
    marked = 0
    for index, (day, value) in enumerate(series):
        if value is None or day not in anomalies:
            continue
        marked += 1
        parts.append(
            Markup(
                '<circle class="anomaly" cx="{cx}" cy="{cy}" r="5" data-day="{day}">'
                "<title>Anomaly on {day}: {value}</title></circle>"
            ).format(cx=round(x(index), 1), cy=round(y(value), 1), day=day.isoformat(), value=_label(value))
        )
    first, last = known[0], known[-1]
    summary = (
        f"{label}: {_label(first[1])} on {first[0].isoformat()} to {_label(last[1])} on {last[0].isoformat()}, "
        f"range {_label(min(values))}–{_label(max(values))}, {len(known)} closes"
        + (f", {marked} anomal{'y' if marked == 1 else 'ies'} marked" if marked else "")
    )
    svg = Markup(
        '<svg class="chart" viewBox="0 0 {w} {h}" preserveAspectRatio="xMidYMid meet" role="img" '
        'aria-label="{summary}">{body}</svg>'
    ).format(w=WIDTH, h=HEIGHT, summary=summary, body=Markup("").join(parts))
    return Chart(svg=svg, summary=summary)
