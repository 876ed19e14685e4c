"""What the cockpit shows, computed from stored values: metric rows, changes, sparklines, badges, wording.

Pure functions (no I/O, no clock: ``now`` is passed in), so the pages stay thin and this is unit-tested.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from markupsafe import Markup

from studio_brain.domain.state import Completeness, SnapshotRun

#: the snapshot sections (schema v3.0) whose numbers are metrics, in the order the page shows them
METRIC_SECTIONS: tuple[tuple[str, str], ...] = (
    ("counts", "Studio"),
    ("ops", "Operations"),
    ("finance", "Finance"),
)

#: plain names for the schema's keys; unknown keys fall back to their words ("fooBarBaz" → "Foo bar baz")
METRIC_LABELS: dict[str, str] = {
    "counts.batchesActive": "Active batches",
    "counts.batchesClosed": "Closed batches",
    "counts.reservationsOpen": "Open reservations",
    "counts.firingsScheduled": "Scheduled firings",
    "counts.reportsOpen": "Open reports",
    "ops.blockedTickets": "Blocked tickets",
    "ops.agentRequestsPending": "Pending agent requests",
    "ops.highSeverityReports": "High-severity reports",
    "finance.pendingOrders": "Pending orders",
    "finance.unsettledPayments": "Unsettled payments",
}

#: metrics where a rise is bad news (shown in the warning colour); others are neutral
RISE_IS_BAD: frozenset[str] = frozenset(
    {
        "counts.reportsOpen",
        "ops.blockedTickets",
        "ops.agentRequestsPending",
        "ops.highSeverityReports",
        "finance.unsettledPayments",
    }
)

SPARKLINE_DAYS = 30


def humanise_key(key: str) -> str:
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", key.rsplit(".", 1)[-1]).replace("_", " ").strip()
    return words[:1].upper() + words[1:].lower()


def metric_label(key: str) -> str:
    return METRIC_LABELS.get(key, humanise_key(key))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


_LABEL_ORDER = {key: index for index, key in enumerate(METRIC_LABELS)}


def metric_values(document: Mapping[str, Any]) -> dict[str, float]:
    """Every numeric metric of a snapshot document as ``{"section.key": value}``, in display order
    (the schema's order for known keys, then others alphabetically: JSONB does not keep key order)."""
    values: dict[str, float] = {}
    for section, _ in METRIC_SECTIONS:
        block = document.get(section)
        if not isinstance(block, Mapping):
            continue
        found = {f"{section}.{key}": _number(raw) for key, raw in block.items()}
        for key in sorted(found, key=lambda k: (_LABEL_ORDER.get(k, len(_LABEL_ORDER)), k)):
            number = found[key]
            if number is not None:
                values[key] = number
    return values


@dataclass(frozen=True, kw_only=True, slots=True)
class Sparkline:
    """A small inline SVG of a metric's recent days; ``svg`` is safe markup, ``summary`` its text twin."""

    svg: Markup
    summary: str


def sparkline(points: Sequence[float | None], *, label: str, width: int = 200, height: int = 32) -> Sparkline:
    """An inline SVG polyline over ``points`` (None = no snapshot that day, the line breaks there).

    Built with ``Markup.format`` so every interpolated value is escaped; only numbers and the label go in.
    """
    known = [p for p in points if p is not None]
    if not known:
        svg = Markup(
            '<svg class="spark" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
            'aria-label="{label}: no history yet"></svg>'
        ).format(w=width, h=height, label=label)
        return Sparkline(svg=svg, summary="no history yet")
    low, high = min(known), max(known)
    span = (high - low) or 1.0
    pad = 3.0
    step = (width - 2 * pad) / max(len(points) - 1, 1)
    segments: list[list[tuple[float, float]]] = [[]]
    for index, value in enumerate(points):
        if value is None:
            if segments[-1]:
                segments.append([])
            continue
        x = pad + index * step
        # a flat series sits in the middle rather than on the floor
        y = height / 2 if high == low else height - pad - (value - low) / span * (height - 2 * pad)
        segments[-1].append((round(x, 1), round(y, 1)))
    drawn = Markup("").join(
        Markup('<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{}"/>').format(
            " ".join(f"{x},{y}" for x, y in seg)
        )
        if len(seg) > 1
        else Markup('<circle r="1.6" cx="{}" cy="{}" fill="currentColor"/>').format(*seg[0])
        for seg in segments
        if seg
    )
    end_x, end_y = next(seg for seg in reversed(segments) if seg)[-1]
    days = f"{len(known)} day{'s' if len(known) != 1 else ''} with data"
    summary = f"low {format_number(low)}, high {format_number(high)} ({days})"
    svg = Markup(
        '<svg class="spark" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
        'aria-label="{label}, last {n} days: {summary}"><title>{label}: {summary}</title>{drawn}'
        '<circle class="spark-end" r="2.2" cx="{ex}" cy="{ey}"/></svg>'
    ).format(w=width, h=height, label=label, n=len(points), summary=summary, drawn=drawn, ex=end_x, ey=end_y)
    return Sparkline(svg=svg, summary=summary)


def format_number(value: float | None) -> str:
    if value is None:
        return "—"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


@dataclass(frozen=True, kw_only=True, slots=True)
class MetricRow:
    key: str
    section: str
    label: str
    value: float
    shown: str
    #: today minus yesterday; None when yesterday has no snapshot or lacked this metric
    change: float | None
    change_text: str
    #: "up-bad" | "up" | "down" | "down-good" | "same" | "none" (a CSS class and a plain-words hint)
    trend: str
    spark: Sparkline


def _change(key: str, today: float, yesterday: float | None) -> tuple[float | None, str, str]:
    if yesterday is None:
        return None, "no value yesterday", "none"
    delta = today - yesterday
    if delta == 0:
        return 0.0, "no change", "same"
    text = ("+" if delta > 0 else "−") + format_number(abs(delta))
    bad = key in RISE_IS_BAD
    if delta > 0:
        return delta, text, "up-bad" if bad else "up"
    return delta, text, "down-good" if bad else "down"


def metric_rows(
    today: SnapshotRun, yesterday: SnapshotRun | None, history: Sequence[SnapshotRun]
) -> list[MetricRow]:
    """One row per metric of today's snapshot: value, change from yesterday, a 30-day sparkline."""
    now_values = metric_values(today.document)
    before = metric_values(yesterday.document) if yesterday is not None else {}
    by_day = {run.snapshot_date: metric_values(run.document) for run in history}
    days = [today.snapshot_date - timedelta(days=n) for n in range(SPARKLINE_DAYS - 1, -1, -1)]
    rows: list[MetricRow] = []
    for key, value in now_values.items():
        section = key.split(".", 1)[0]
        label = metric_label(key)
        change, text, trend = _change(key, value, before.get(key))
        series = [by_day.get(day, {}).get(key) for day in days]
        series[-1] = value
        rows.append(
            MetricRow(
                key=key,
                section=section,
                label=label,
                value=value,
                shown=format_number(value),
                change=change,
                change_text=text,
                trend=trend,
                spark=sparkline(series, label=label),
            )
        )
    return rows


def section_title(section: str) -> str:
    return dict(METRIC_SECTIONS).get(section, humanise_key(section))


@dataclass(frozen=True, kw_only=True, slots=True)
class Badge:
    text: str
    #: "ok" | "warn" | "bad" | "info"
    tone: str
    detail: str = ""


def completeness_badge(run: SnapshotRun) -> Badge:
    if run.completeness is Completeness.FULL:
        return Badge(text="Complete", tone="ok", detail="every source was read")
    return Badge(text="Partial", tone="warn", detail="some sources could not be read; numbers may be low")


def freshness_badge(run: SnapshotRun, *, now: datetime, max_age_minutes: int) -> Badge:
    minutes = max((now - run.generated_at).total_seconds() / 60.0, 0.0)
    age = describe_age(minutes)
    if minutes <= max_age_minutes:
        return Badge(text="Fresh", tone="ok", detail=f"computed {age} ago")
    return Badge(
        text="Stale", tone="bad", detail=f"computed {age} ago (older than {describe_age(max_age_minutes)})"
    )


def describe_age(minutes: float) -> str:
    if minutes < 1:
        return "less than a minute"
    if minutes < 90:
        n = round(minutes)
        return f"{n} minute{'s' if n != 1 else ''}"
    hours = minutes / 60
    if hours < 36:
        n = round(hours)
        return f"{n} hour{'s' if n != 1 else ''}"
    n = round(hours / 24)
    return f"{n} day{'s' if n != 1 else ''}"


def snapshot_warnings(
    today: SnapshotRun, yesterday: SnapshotRun | None, *, expected_today: date, stale: bool
) -> list[str]:
    """Plain-words warnings: the snapshot's own diagnostics, then what the cockpit notices itself."""
    warnings: list[str] = []
    diagnostics = today.document.get("diagnostics")
    if isinstance(diagnostics, Mapping):
        for item in diagnostics.get("warnings") or ():
            if isinstance(item, Mapping):
                text = str(item.get("message") or item.get("code") or "")
            else:
                text = str(item)
            if text:
                warnings.append(text)
    if today.completeness is Completeness.PARTIAL:
        warnings.append("Today's snapshot is partial: at least one source could not be read.")
    if today.snapshot_date < expected_today:
        warnings.append(
            f"There is no snapshot for {expected_today.isoformat()} yet; showing "
            f"{today.snapshot_date.isoformat()}."
        )
    if stale:
        warnings.append("The latest snapshot is older than the freshness limit; check the scheduler.")
    if yesterday is None:
        warnings.append("No snapshot for the day before, so changes cannot be shown.")
    return warnings


# --- words for codes ----------------------------------------------------------------------------------

#: refusal reason codes in plain words; unknown codes are shown as the code itself (never hidden)
REASON_WORDS: dict[str, str] = {
    # the policy's closed set (domain/policy.py ReasonCode)
    "ADMIN_TOKEN_CANNOT_APPROVE": "The admin token is the break-glass credential, not a person: it never "
    "approves. Sign in with your own passkey.",
    "BREAK_GLASS_NOT_ALLOWED": "The admin token only reads, invites staff and turns the kill switch on. "
    "Sign in as a person to do this.",
    "PERSONAL_TOKEN_SCOPE_MISSING": "This personal token was issued without the scope this needs.",
    "OWNER_REQUIRED": "Only an owner of the studio may do this.",
    "LAST_OWNER": "The studio must keep at least one owner.",
    "FIRST_OWNER_EXISTS": "The studio has an owner already; ask them to invite you.",
    "PERSON_REQUIRED": "Only a signed-in person (not the break-glass admin token) may do this.",
    "CAPABILITY_UNKNOWN": "This capability is not in the registry, so nothing can be done with it.",
    "INPUT_INVALID": "The proposal's input does not match what the capability accepts.",
    "RATIONALE_REQUIRED": "Please write a rationale of at least 10 characters: every decision is audited with it.",
    "DELEGATION_SCOPE_MISSING": "The agent's token does not carry the scope for this capability.",
    "ACTOR_NOT_ELIGIBLE": "You are not allowed to do this with this capability.",
    "SELF_APPROVAL_FORBIDDEN": "Whoever asked for this cannot also approve it; another staff member must.",
    "APPROVER_NOT_ELIGIBLE": "Only staff can approve; agents and the system never can.",
    "APPROVAL_REQUIRED": "This needs a staff approval (or more approvals) before it can run.",
    "APPROVAL_EXPIRED": "The approval is too old; approve the proposal again before executing it.",
    "APPROVAL_PAYLOAD_MISMATCH": (
        "The proposal or the capability registry changed after approval, so the approval no longer applies."
    ),
    "ALREADY_EXECUTED": "This proposal has already run; a proposal runs at most once.",
    "INVALID_TRANSITION": "The proposal is not in a state that allows this.",
    "IDEMPOTENCY_KEY_REUSED": "That idempotency key was already used for a different action.",
    "KILL_SWITCH_ACTIVE": "The kill switch is on, so nothing is executed until staff turn it off.",
    "TENANT_MISMATCH": "This belongs to another studio than the one you are signed in for.",
    "RATE_LIMITED": "This capability has been used as often as it may be this hour; try again later.",
    "COOLDOWN_ACTIVE": "This capability is cooling down after its last run; try again shortly.",
    "TARGET_BUSY": "Another action on the same device is running; try again when it finishes.",
    "EXEMPTION_FORBIDDEN": "This capability can never be exempt from approval (doors, locks, power, mobility).",
    "CONNECTOR_READ_ONLY": "The device connector is read-only, so it will not perform writes.",
    "ADAPTER_MISSING": "No connector is configured for this capability's target.",
    # the cockpit's own
    "CONFIRMATION_REQUIRED": "Tick the confirmation box first: executing acts on the real world.",
    "CSRF_FAILED": "The form expired or came from another site; reload the page and try again.",
    "NOT_FOUND": "That does not exist (any more).",
    "STAFF_REQUIRED": "This needs a staff account.",
    "ADMIN_REQUIRED": "This needs an admin account.",
}


def reason_words(code: str | None, message: str | None = None) -> str:
    """A refusal as a sentence a person can act on, with the code kept for the record."""
    if not code:
        return message or "The action was refused."
    words = REASON_WORDS.get(code)
    if words is None:
        return f"{message or 'The action was refused.'} ({code})"
    return words


def refusal_code(metadata: Mapping[str, Any]) -> str | None:
    """The reason code of a refused decision recorded in an audit event's metadata, if it was refused."""
    decision = metadata.get("decision")
    code = decision.get("reasonCode") if isinstance(decision, Mapping) else metadata.get("reasonCode")
    if not isinstance(code, str) or code == "ALLOWED":
        return None
    return code


def reading(value: Any) -> str:
    """A device reading as text: numbers and words as they are, nothing as a dash, structures as JSON."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def parse_iso(text: Any) -> datetime | None:
    """An aware datetime from ISO-8601 text (as devices report it), or None."""
    if not isinstance(text, str) or not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def short_hash(value: str | None, length: int = 12) -> str:
    if not value:
        return "—"
    return value[:length] + "…" if len(value) > length else value


def iso_minute(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.strftime("%Y-%m-%d %H:%M")


def change_summary(changes: Mapping[str, Mapping[str, Any]], *, has_baseline: bool, most: int = 6) -> str:
    """The plain sentence Today leads with: "3 changes since yesterday: scheduled firings 4 → 3, …"."""
    if not has_baseline:
        return "Nothing to compare with: yesterday has no close."
    metric_keys = {f"{section}." for section, _ in METRIC_SECTIONS}
    moved = [
        (key, change)
        for key, change in changes.items()
        if any(key.startswith(prefix) for prefix in metric_keys) and _number(change.get("to")) is not None
    ]
    if not moved:
        return "No change since yesterday."
    moved.sort(key=lambda item: (_LABEL_ORDER.get(item[0], len(_LABEL_ORDER)), item[0]))
    parts = [
        f"{metric_label(key).lower()} {format_number(_number(c.get('from')))} → {format_number(_number(c.get('to')))}"
        for key, c in moved[:most]
    ]
    more = ", …" if len(moved) > most else ""
    count = len(moved)
    return f"{count} change{'s' if count != 1 else ''} since yesterday: {', '.join(parts)}{more}"
