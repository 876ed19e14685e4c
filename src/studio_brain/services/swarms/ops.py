"""The ops anomaly swarm: configurable threshold rules on today's snapshot, and robust z-scores per metric.

Each finding says what is unusual (metric and value), by how much (expected value, robust z, change),
since when (the first day of the run of unusual days), and which earlier days were left out of its
baseline and why (flagged before, or marked in the studio calendar). A level that moved and stayed is
reported once as a new level (a change point), not as an anomaly every day.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date
from statistics import median

from studio_brain.domain.anomaly import DetectorConfig, FindingKind, MetricAnomaly, Observation, detect
from studio_brain.domain.calendar import EMPTY_CALENDAR, StudioCalendar
from studio_brain.domain.drafts import DraftKind, Evidence, Finding, Severity
from studio_brain.domain.state import SnapshotRun
from studio_brain.services.swarms.base import SwarmInput, rule_finding, usable_metrics

#: metrics judged statistically by the ops swarm (finance metrics belong to the finance swarm)
OPS_METRICS: tuple[str, ...] = (
    "counts.batchesActive",
    "counts.batchesClosed",
    "counts.reservationsOpen",
    "counts.firingsScheduled",
    "counts.reportsOpen",
    "ops.blockedTickets",
    "ops.agentRequestsPending",
    "ops.highSeverityReports",
)
#: cumulative metrics only ever grow: their daily change is what can be unusual
DELTA_METRICS: frozenset[str] = frozenset({"counts.batchesClosed"})

ANOMALY_RULE = "ops.anomaly.robust_z"
FIRING_BACKLOG_RULE = "ops.firing_backlog"
AGENT_QUEUE_RULE = "ops.agent_queue_spike"
HIGH_SEVERITY_RULE = "ops.high_severity_reports"
BLOCKED_TICKETS_RULE = "ops.blocked_tickets"


@dataclass(frozen=True, kw_only=True, slots=True)
class OpsRules:
    """Thresholds of the rule-based checks (settings ``STUDIO_BRAIN_SWARM_OPS_*``)."""

    #: firing backlog: at least this many active batches ...
    backlog_min_active: int = 40
    #: ... and at least this many active batches per scheduled firing
    backlog_ratio: float = 12.0
    #: agent-request spike: at least this many pending ...
    agent_queue_min: int = 8
    #: ... and at least this multiple of the median of the previous 7 usable days
    agent_queue_factor: float = 2.0
    #: any open high-severity report is worth a draft
    high_severity_min: int = 1
    blocked_tickets_min: int = 5
    cooldown_hours: float = 72.0


@dataclass(frozen=True, kw_only=True, slots=True)
class OpsSwarm:
    rules: OpsRules = field(default_factory=OpsRules)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    #: closures, holidays, maintenance: never judged, never in a baseline
    calendar: StudioCalendar = EMPTY_CALENDAR
    metrics: tuple[str, ...] = OPS_METRICS
    name: str = "ops"
    kind: DraftKind = DraftKind.OPS

    def findings(self, data: SwarmInput, notes: list[str]) -> list[Finding]:
        latest = data.latest
        if latest is None:
            notes.append("no complete snapshot fresh enough to judge from")
            return []
        today = usable_metrics(latest, data.freshness)
        if not today:
            notes.append(f"snapshot {latest.id} is stale or incomplete: nothing judged")
            return []
        found = self._rules(latest, today, data)
        found.extend(self._anomalies(latest, data, notes))
        return found

    # --- rules --------------------------------------------------------------------------------------
    def _rule_finding(
        self,
        latest: SnapshotRun,
        *,
        rule_id: str,
        severity: Severity,
        title: str,
        rationale: str,
        recommendation: str,
        metrics: dict[str, float],
        confidence: float,
    ) -> Finding:
        return rule_finding(
            kind=DraftKind.OPS,
            rule_id=rule_id,
            severity=severity,
            title=title,
            rationale=rationale,
            recommendation=recommendation,
            snapshot_date=latest.snapshot_date,
            refs=[(latest.snapshot_date, latest.id)],
            metrics={k: _num(v) for k, v in metrics.items()},
            confidence=confidence,
            cooldown_hours=self.rules.cooldown_hours,
        )

    def _rules(self, latest: SnapshotRun, today: dict[str, float], data: SwarmInput) -> list[Finding]:
        r = self.rules
        out: list[Finding] = []
        active = today.get("counts.batchesActive")
        firings = today.get("counts.firingsScheduled")
        if active is not None and firings is not None:
            ratio = active / max(firings, 1.0)
            if active >= r.backlog_min_active and ratio >= r.backlog_ratio:
                out.append(
                    self._rule_finding(
                        latest,
                        rule_id=FIRING_BACKLOG_RULE,
                        severity=Severity.MEDIUM,
                        title=f"{_num(active)} active batches but only {_num(firings)} firings scheduled",
                        rationale=(
                            f"{_num(active)} batches are active against {_num(firings)} scheduled firings "
                            f"({ratio:.1f} per firing; rule: ≥ {r.backlog_min_active} active and "
                            f"≥ {r.backlog_ratio:g} per firing) on {latest.snapshot_date}."
                        ),
                        recommendation="Review the kiln schedule: add a firing or move shelved batches forward.",
                        metrics={"counts.batchesActive": active, "counts.firingsScheduled": firings},
                        confidence=0.8,
                    )
                )
        pending = today.get("ops.agentRequestsPending")
        if pending is not None:
            previous = [
                v
                for run in data.history
                if run.snapshot_date < latest.snapshot_date
                for k, v in usable_metrics(run, data.freshness).items()
                if k == "ops.agentRequestsPending"
            ][-7:]
            typical = median(previous) if previous else None
            if pending >= r.agent_queue_min and (
                typical is None or pending >= r.agent_queue_factor * typical
            ):
                versus = (
                    f"against a median of {_num(typical)} over the previous {len(previous)} days"
                    if (typical is not None)
                    else "with no earlier days to compare"
                )
                out.append(
                    self._rule_finding(
                        latest,
                        rule_id=AGENT_QUEUE_RULE,
                        severity=Severity.MEDIUM,
                        title=f"Agent-request queue spiked to {_num(pending)}",
                        rationale=(
                            f"{_num(pending)} agent requests are pending on {latest.snapshot_date}, {versus} "
                            f"(rule: ≥ {r.agent_queue_min} and ≥ {r.agent_queue_factor:g}× the median)."
                        ),
                        recommendation="Triage the agent-request queue; check whether one requester floods it.",
                        metrics={"ops.agentRequestsPending": pending}
                        | ({"ops.agentRequestsPending.median7": typical} if typical is not None else {}),
                        confidence=0.75,
                    )
                )
        high = today.get("ops.highSeverityReports")
        if high is not None and high >= r.high_severity_min:
            out.append(
                self._rule_finding(
                    latest,
                    rule_id=HIGH_SEVERITY_RULE,
                    severity=Severity.HIGH,
                    title=f"{_num(high)} high-severity report{'s' if high != 1 else ''} open",
                    rationale=(
                        f"{_num(high)} community report(s) of high severity (safety reports are always high) "
                        f"are open, triaged or actioned on {latest.snapshot_date}."
                    ),
                    recommendation="Have staff review the open high-severity reports today.",
                    metrics={"ops.highSeverityReports": high},
                    confidence=0.95,
                )
            )
        blocked = today.get("ops.blockedTickets")
        if blocked is not None and blocked >= r.blocked_tickets_min:
            out.append(
                self._rule_finding(
                    latest,
                    rule_id=BLOCKED_TICKETS_RULE,
                    severity=Severity.LOW,
                    title=f"{_num(blocked)} support tickets blocked or waiting",
                    rationale=(
                        f"{_num(blocked)} support requests are blocked, on hold or waiting on "
                        f"{latest.snapshot_date} (rule: ≥ {r.blocked_tickets_min})."
                    ),
                    recommendation="Unblock or answer the oldest waiting support requests.",
                    metrics={"ops.blockedTickets": blocked},
                    confidence=0.7,
                )
            )
        return out

    # --- statistics ---------------------------------------------------------------------------------
    def _anomalies(self, latest: SnapshotRun, data: SwarmInput, notes: list[str]) -> list[Finding]:
        series = data.series()
        out: list[Finding] = []
        marked = self.calendar.on(latest.snapshot_date)
        if marked is not None:
            notes.append(f"{latest.snapshot_date} is in the studio calendar ({marked.reason}): not judged")
            return out
        known = self.calendar.known()
        for name in self.metrics:
            points = series.get(name, [])
            observations = to_observations(name, points)
            if (
                len([o for o in observations if o.day < latest.snapshot_date])
                < self.detector.min_history_days
            ):
                notes.append(f"{name}: fewer than {self.detector.min_history_days} usable earlier days")
                continue
            anomaly = detect(name, observations, latest.snapshot_date, self.detector, known=known)
            if anomaly is not None:
                out.append(self._anomaly_finding(latest, anomaly))
        return out

    def _anomaly_finding(self, latest: SnapshotRun, a: MetricAnomaly) -> Finding:
        label = f"{a.metric} daily change" if a.metric in DELTA_METRICS else a.metric
        word = "high" if a.z > 0 else "low"
        days = (a.day - a.since).days + 1
        weekday = a.day.strftime("%A")
        expected_for = f"for a {weekday}" if a.seasonal else "(no weekday pattern)"
        size = abs(a.z)
        level = (
            f"level of the previous {a.level_days} days"
            if a.level_days
            else "median following its trend"
            if a.trend
            else "median"
        )
        severity = Severity.HIGH if size >= 8 else Severity.MEDIUM if size >= 5 else Severity.LOW
        confidence = round(min(0.95, 0.6 + 0.05 * (size - self.detector.threshold)), 2)
        left_out = _left_out(a)
        step = a.kind is FindingKind.CHANGE_POINT
        if step:
            title = f"{label} moved to a new level: {_num(a.value)} (was about {a.expected:.0f})"
            verdict = (
                f"it has stayed {'above' if a.z > 0 else 'below'} its old level since {a.since} "
                f"({days} days): from now on this is its new level, not an anomaly a day."
            )
        else:
            title = f"{label} unusually {word}: {_num(a.value)} (expected about {a.expected:.0f})"
            verdict = f"unusual since {a.since} ({days} day{'s' if days != 1 else ''})."
        return Finding(
            kind=DraftKind.OPS,
            rule_id=ANOMALY_RULE,
            subject=f"{a.metric}:{'level' if step else a.direction}",
            severity=severity,
            title=title,
            rationale=(
                f"{label} is {_num(a.value)} on {a.day}, {size:.1f} robust SD {'above' if a.z > 0 else 'below'} "
                f"the expected {a.expected:.1f} {expected_for} ({level} over {a.baseline_days} earlier "
                f"days; 1 robust SD ≈ {a.scale:.2f}{left_out}); {verdict}"
            ),
            recommendation=(
                f"Confirm the new level of {a.metric.split('.', 1)[1]} since {a.since} is expected."
                if step
                else f"Check what changed in {a.metric.split('.', 1)[1]} since {a.since}."
            ),
            snapshot_date=latest.snapshot_date,
            evidence=Evidence(
                snapshot_ids=(latest.id, *[ref for ref in a.refs if ref != latest.id]),
                snapshot_dates=(a.day,),
                metrics={
                    a.metric: {
                        "value": _num(a.value),
                        "expected": round(a.expected, 3),
                        "scale": round(a.scale, 3),
                        "zScore": round(a.z, 2),
                        "since": a.since.isoformat(),
                        "baselineDays": a.baseline_days,
                        "weekdayAdjusted": a.seasonal,
                        "levelDays": a.level_days,
                        "trend": a.trend,
                        "delta": a.metric in DELTA_METRICS,
                        "kind": a.kind.value,
                        "excludedDays": [{"day": e.day.isoformat(), "reason": e.reason} for e in a.excluded],
                    }
                },
                rule_ids=(ANOMALY_RULE,),
            ),
            confidence=confidence,
            cooldown_hours=self.rules.cooldown_hours,
        )


def _left_out(a: MetricAnomaly) -> str:
    """``; left out: 2 flagged days, 1 holiday day`` — what the baseline did not use, or nothing."""
    if not a.excluded:
        return ""
    counts: dict[str, int] = {}
    for e in a.excluded:
        kind = e.reason.split(":", 1)[0]
        counts[kind] = counts.get(kind, 0) + 1
    parts = [f"{n} {kind} day{'s' if n != 1 else ''}" for kind, n in sorted(counts.items())]
    return "; left out: " + ", ".join(parts)


def to_observations(name: str, points: list[tuple[date, float, str]]) -> list[Observation]:
    """The series a metric is judged on: its values, or day-to-day changes for cumulative metrics."""
    if name not in DELTA_METRICS:
        return [Observation(day=d, value=v, ref=ref) for d, v, ref in points]
    out: list[Observation] = []
    for (d0, v0, _), (d1, v1, ref) in itertools.pairwise(points):
        if (d1 - d0).days == 1:
            out.append(Observation(day=d1, value=v1 - v0, ref=ref))
    return out


def _num(value: float | None) -> float | int | None:
    if value is None:
        return None
    return int(value) if float(value).is_integer() else round(value, 3)
