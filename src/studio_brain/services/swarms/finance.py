"""The finance swarm: flags for a human reconciliation review — unsettled payments rising, disputes present,
pending orders ageing, the finance read stale (> 24 h) or failed. It sees counts only, never amounts or
Stripe data, and it drafts; a person decides.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from studio_brain.domain.drafts import DraftKind, Finding, Severity
from studio_brain.domain.snapshot import metric
from studio_brain.domain.state import Completeness, SnapshotRun
from studio_brain.services.swarms.base import SwarmInput, parse_time, rule_finding

UNSETTLED_RISING_RULE = "finance.unsettled_rising"
DISPUTES_RULE = "finance.disputes_present"
PENDING_AGEING_RULE = "finance.pending_orders_ageing"
READ_STALE_RULE = "finance.read_stale"
READ_FAILED_RULE = "finance.read_failed"
#: optional snapshot fields carrying a disputes count; schema v3.0 has none, so this rule waits for one
DISPUTE_FIELDS: tuple[str, ...] = ("finance.disputedPayments", "finance.disputes")
FINANCE_COLLECTIONS = frozenset({"payments", "materialsOrders"})


@dataclass(frozen=True, kw_only=True, slots=True)
class FinanceRules:
    #: unsettled payments higher on each of this many consecutive days
    rising_days: int = 3
    rising_min_increase: int = 2
    #: pending orders present on each of this many consecutive days without ever draining below today's count
    ageing_days: int = 7
    max_read_age: timedelta = timedelta(hours=24)
    cooldown_hours: float = 72.0


@dataclass(frozen=True, kw_only=True, slots=True)
class FinanceSwarm:
    rules: FinanceRules = field(default_factory=FinanceRules)
    name: str = "finance"
    kind: DraftKind = DraftKind.FINANCE

    def findings(self, data: SwarmInput, notes: list[str]) -> list[Finding]:
        out = self._read_health(data)
        latest = data.latest
        if latest is None:
            notes.append("no complete snapshot fresh enough to judge from")
            return out
        series = data.series()
        unsettled = series.get("finance.unsettledPayments", [])
        pending = series.get("finance.pendingOrders", [])
        out.extend(self._rising(latest, unsettled))
        out.extend(self._ageing(latest, pending))
        out.extend(self._disputes(latest, notes))
        return out

    def _finding(
        self,
        *,
        rule_id: str,
        severity: Severity,
        title: str,
        rationale: str,
        recommendation: str,
        refs: list[tuple[date, str]],
        snapshot_date: date,
        metrics: dict[str, Any],
        confidence: float,
    ) -> Finding:
        return rule_finding(
            kind=DraftKind.FINANCE,
            rule_id=rule_id,
            severity=severity,
            title=title,
            rationale=rationale,
            recommendation=recommendation,
            snapshot_date=snapshot_date,
            refs=refs,
            metrics=metrics,
            confidence=confidence,
            cooldown_hours=self.rules.cooldown_hours,
        )

    def _read_health(self, data: SwarmInput) -> list[Finding]:
        newest = data.newest_run
        if newest is None:
            return []
        doc = newest.document
        failed = sorted(
            set((doc.get("diagnostics") or {}).get("failedCollections") or [])
            | set((doc.get("diagnostics") or {}).get("timedOutCollections") or [])
        )
        finance_failed = [c for c in failed if c in FINANCE_COLLECTIONS]
        nulls = [t for t in ("finance.pendingOrders", "finance.unsettledPayments") if metric(doc, t) is None]
        if finance_failed or (newest.completeness is Completeness.PARTIAL and nulls):
            what = ", ".join(finance_failed) or ", ".join(nulls)
            return [
                self._finding(
                    rule_id=READ_FAILED_RULE,
                    severity=Severity.HIGH,
                    title="Finance read failed",
                    rationale=(
                        f"The newest snapshot ({newest.snapshot_date}, {newest.completeness.value}) could not "
                        f"read {what}; finance figures are unknown, not zero."
                    ),
                    recommendation="Check the Firestore credentials and the Functions finance endpoint, then "
                    "re-run the snapshot before reconciling.",
                    refs=[(newest.snapshot_date, newest.id)],
                    snapshot_date=newest.snapshot_date,
                    metrics={"failed": what},
                    confidence=0.9,
                )
            ]
        read_at = parse_time((doc.get("cloudSync") or {}).get("stripeReadAt"))
        age = None if read_at is None else data.now - read_at
        if read_at is None or (age is not None and age > self.rules.max_read_age):
            shown = "never" if read_at is None else f"{age.total_seconds() / 3600:.1f} h ago" if age else "?"
            return [
                self._finding(
                    rule_id=READ_STALE_RULE,
                    severity=Severity.MEDIUM,
                    title="Finance figures are stale",
                    rationale=(
                        f"The finance read behind the newest snapshot happened {shown} "
                        f"(limit {self.rules.max_read_age.total_seconds() / 3600:.0f} h)."
                    ),
                    recommendation="Run a fresh snapshot; if it stays stale, check the finance source.",
                    refs=[(newest.snapshot_date, newest.id)],
                    snapshot_date=newest.snapshot_date,
                    metrics={"cloudSync.stripeReadAt": read_at.isoformat() if read_at else None},
                    confidence=0.85,
                )
            ]
        return []

    def _rising(self, latest: SnapshotRun, points: list[tuple[date, float, str]]) -> list[Finding]:
        n = self.rules.rising_days
        tail = points[-(n + 1) :]
        if len(tail) < n + 1 or tail[-1][0] != latest.snapshot_date:
            return []
        values = [v for _, v, _ in tail]
        if not all(b > a for a, b in itertools.pairwise(values)):
            return []
        increase = values[-1] - values[0]
        if increase < self.rules.rising_min_increase:
            return []
        first_day = tail[0][0]
        return [
            self._finding(
                rule_id=UNSETTLED_RISING_RULE,
                severity=Severity.MEDIUM,
                title=f"Unsettled payments rising {n} days running ({int(values[0])} → {int(values[-1])})",
                rationale=(
                    f"finance.unsettledPayments rose every day since {first_day}: "
                    f"{' → '.join(str(int(v)) for v in values)}."
                ),
                recommendation="Open a reconciliation review: compare unsettled payments with Stripe's "
                "dashboard and follow up failed or disputed ones.",
                refs=[(d, ref) for d, _, ref in tail],
                snapshot_date=latest.snapshot_date,
                metrics={"finance.unsettledPayments": [int(v) for v in values]},
                confidence=0.7,
            )
        ]

    def _ageing(self, latest: SnapshotRun, points: list[tuple[date, float, str]]) -> list[Finding]:
        n = self.rules.ageing_days
        tail = points[-n:]
        if len(tail) < n or tail[-1][0] != latest.snapshot_date:
            return []
        values = [v for _, v, _ in tail]
        today = values[-1]
        if today < 1 or min(values) < today:
            return []
        return [
            self._finding(
                rule_id=PENDING_AGEING_RULE,
                severity=Severity.LOW,
                title=f"{int(today)} pending orders for {n}+ days",
                rationale=(
                    f"finance.pendingOrders has not fallen below {int(today)} on any of the last {n} days "
                    f"({', '.join(str(int(v)) for v in values)}): some orders are ageing unpaid."
                ),
                recommendation="Review the oldest pending materials orders; remind or cancel.",
                refs=[(d, ref) for d, _, ref in tail],
                snapshot_date=latest.snapshot_date,
                metrics={"finance.pendingOrders": [int(v) for v in values]},
                confidence=0.65,
            )
        ]

    def _disputes(self, latest: SnapshotRun, notes: list[str]) -> list[Finding]:
        for name in DISPUTE_FIELDS:
            section, key = name.split(".", 1)
            raw = (latest.document.get(section) or {}).get(key)
            if isinstance(raw, int) and not isinstance(raw, bool):
                if raw <= 0:
                    return []
                return [
                    self._finding(
                        rule_id=DISPUTES_RULE,
                        severity=Severity.HIGH,
                        title=f"{raw} disputed payment{'s' if raw != 1 else ''}",
                        rationale=f"{name} is {raw} on {latest.snapshot_date}: a dispute has a response deadline.",
                        recommendation="Review the disputes in Stripe (through the cloud) before their deadline.",
                        refs=[(latest.snapshot_date, latest.id)],
                        snapshot_date=latest.snapshot_date,
                        metrics={name: raw},
                        confidence=0.9,
                    )
                ]
        notes.append("disputes: the snapshot carries no disputes count (schema v3.0); rule not evaluated")
        return []
