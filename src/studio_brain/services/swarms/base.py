"""The swarm interface: read snapshots and history, return findings; the runner hands them to a draft sink.

A swarm is a pure function of :class:`SwarmInput`. It is given no store, no gateway and no connector —
only the add-only :class:`~studio_brain.ports.drafts.DraftSink` through the runner — so it cannot approve,
submit or execute anything. Which snapshot values may be used is decided here, once, for every swarm:
only complete snapshots whose cloud read is fresh, and only metrics that were actually read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any, Protocol

from studio_brain.domain.drafts import DraftKind, DraftOutcome, Evidence, Finding, Severity
from studio_brain.domain.rules import SNAPSHOT_FIELDS
from studio_brain.domain.snapshot import metric
from studio_brain.domain.state import Completeness, SnapshotRun
from studio_brain.domain.times import parse_iso
from studio_brain.ports.drafts import DraftSink


@dataclass(frozen=True, kw_only=True, slots=True)
class Freshness:
    #: a snapshot whose cloud read happened longer than this before it was generated is stale
    max_read_lag: timedelta = timedelta(hours=6)
    #: the newest snapshot older than this (against now) is stale: swarms judge nothing from it
    max_snapshot_age: timedelta = timedelta(hours=26)


def parse_time(value: Any) -> datetime | None:
    """An aware datetime from a snapshot's ISO-8601 text; None when absent, malformed or naive."""
    return parse_iso(value)


def usable_metrics(run: SnapshotRun, freshness: Freshness) -> dict[str, float]:
    """The metrics of ``run`` a swarm may use: none from a partial or stale snapshot, none that is null."""
    document = run.document
    if run.completeness is not Completeness.FULL:
        return {}
    if (document.get("diagnostics") or {}).get("completeness", "full") != "full":
        return {}
    read_at = parse_time((document.get("cloudSync") or {}).get("firestoreReadAt"))
    if read_at is None or run.generated_at - read_at > freshness.max_read_lag:
        return {}
    values: dict[str, float] = {}
    for target in SNAPSHOT_FIELDS:
        value = metric(document, target)
        if value is not None:
            values[target] = float(value)
    return values


@dataclass(frozen=True, kw_only=True, slots=True)
class SwarmInput:
    tenant_id: str
    now: datetime
    today: date
    zone: tzinfo
    #: complete daily snapshots, oldest first (the newest may be today's)
    history: Sequence[SnapshotRun]
    #: the newest run of any completeness (a partial one tells the finance swarm a read failed)
    newest_run: SnapshotRun | None
    freshness: Freshness = field(default_factory=Freshness)

    @property
    def latest(self) -> SnapshotRun | None:
        """The newest complete snapshot, if it is fresh enough to judge from."""
        if not self.history:
            return None
        latest = self.history[-1]
        if self.now - latest.generated_at > self.freshness.max_snapshot_age:
            return None
        return latest

    def series(self) -> dict[str, list[tuple[date, float, str]]]:
        """Usable values per metric: ``metric -> [(day, value, snapshot id), ...]`` oldest first."""
        out: dict[str, list[tuple[date, float, str]]] = {}
        for run in self.history:
            for name, value in usable_metrics(run, self.freshness).items():
                out.setdefault(name, []).append((run.snapshot_date, value, run.id))
        return out


@dataclass(kw_only=True)
class SwarmReport:
    swarm: str
    findings: int = 0
    created: int = 0
    duplicates: int = 0
    cooling_down: int = 0
    #: why the swarm judged nothing (no fresh snapshot, too little history ...)
    notes: list[str] = field(default_factory=list)

    def count(self, outcome: DraftOutcome) -> None:
        match outcome:
            case DraftOutcome.CREATED:
                self.created += 1
            case DraftOutcome.DUPLICATE:
                self.duplicates += 1
            case DraftOutcome.COOLING_DOWN:
                self.cooling_down += 1

    def to_json(self) -> dict[str, Any]:
        return {
            "findings": self.findings,
            "created": self.created,
            "duplicates": self.duplicates,
            "coolingDown": self.cooling_down,
            "notes": self.notes,
        }


def rule_finding(
    *,
    kind: DraftKind,
    rule_id: str,
    severity: Severity,
    title: str,
    rationale: str,
    recommendation: str,
    snapshot_date: date,
    refs: Sequence[tuple[date, str]],
    metrics: dict[str, Any],
    confidence: float,
    cooldown_hours: float,
) -> Finding:
    """A finding of one rule, its evidence the snapshots ``refs`` (date, run id) and the metric values."""
    return Finding(
        kind=kind,
        rule_id=rule_id,
        subject=rule_id,
        severity=severity,
        title=title,
        rationale=rationale,
        recommendation=recommendation,
        snapshot_date=snapshot_date,
        evidence=Evidence(
            snapshot_ids=tuple(ref for _, ref in refs),
            snapshot_dates=tuple(day for day, _ in refs),
            metrics=dict(metrics),
            rule_ids=(rule_id,),
        ),
        confidence=confidence,
        cooldown_hours=cooldown_hours,
    )


class Swarm(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> DraftKind: ...

    def findings(self, data: SwarmInput, notes: list[str]) -> list[Finding]:
        """Pure: what this swarm would draft from ``data``; reasons for judging nothing go to ``notes``."""
        ...


async def run_swarm(swarm: Swarm, data: SwarmInput, sink: DraftSink) -> SwarmReport:
    """Ask ``swarm`` for its findings and record each through ``sink`` (the only thing a swarm may reach)."""
    report = SwarmReport(swarm=swarm.name)
    found = swarm.findings(data, report.notes)
    report.findings = len(found)
    for finding in found:
        report.count(await sink.add(finding))
    return report
