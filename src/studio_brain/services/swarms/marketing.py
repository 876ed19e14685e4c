"""The marketing swarm: draft copy from public studio facts (kiln space, upcoming firings), for review.

Copy is written from :class:`PublicFacts` only — the copy templates never see finance or safety figures —
and every draft is checked once more against the snapshot's private figures before it is recorded
(:func:`~studio_brain.domain.drafts.copy_leaks`). Drafts start in ``draft``; a human moves them through
``needs_review`` to ``approved_for_publish``. There is no publishing path: publishing is a cloud write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from studio_brain.domain.drafts import DraftKind, Evidence, Finding, Severity, copy_leaks
from studio_brain.domain.state import SnapshotRun
from studio_brain.logging import get_logger
from studio_brain.services.swarms.base import SwarmInput, usable_metrics

log = get_logger(__name__)

TEMPLATE_VERSION = "2026-11.1"
KILN_SPACE_RULE = "marketing.kiln_space"
UPCOMING_FIRINGS_RULE = "marketing.upcoming_firings"
#: the only snapshot figures copy may be written from
PUBLIC_METRICS: tuple[str, ...] = ("counts.firingsScheduled", "counts.reservationsOpen")
#: figures that must never appear in public copy
PRIVATE_METRICS: tuple[str, ...] = (
    "finance.pendingOrders",
    "finance.unsettledPayments",
    "ops.highSeverityReports",
    "counts.reportsOpen",
    "ops.blockedTickets",
    "ops.agentRequestsPending",
)


@dataclass(frozen=True, kw_only=True, slots=True)
class PublicFacts:
    """What copy may say: nothing internal, nothing about money or safety."""

    snapshot_date: date
    firings_scheduled: int
    reservations_open: int


@dataclass(frozen=True, kw_only=True, slots=True)
class MarketingRules:
    #: fewer scheduled firings than this means there is kiln space to offer
    kiln_space_below: int = 6
    channel: str = "newsletter"
    cooldown_hours: float = 24.0 * 6


def kiln_space_copy(facts: PublicFacts) -> tuple[str, str]:
    title = "Kiln space this week"
    if facts.firings_scheduled == 0:
        body = "The kilns are wide open this week. Bring your bisque and glaze ware in and book a spot."
    else:
        firings = f"{facts.firings_scheduled} firing{'s' if facts.firings_scheduled != 1 else ''}"
        body = (
            f"Only {firings} on the kiln calendar so far this week, so there is room for your work. "
            "Drop your pieces on the shelf and book a spot."
        )
    return title, body


def upcoming_firings_copy(facts: PublicFacts) -> tuple[str, str]:
    firings = f"{facts.firings_scheduled} kiln firing{'s' if facts.firings_scheduled != 1 else ''}"
    title = "Upcoming firings"
    body = f"{firings} coming up at the studio. Get your pieces glazed and shelved in time to join one."
    if facts.reservations_open:
        body += " Studio time is filling up: reserve your session early."
    return title, body


@dataclass(frozen=True, kw_only=True, slots=True)
class MarketingSwarm:
    rules: MarketingRules = field(default_factory=MarketingRules)
    name: str = "marketing"
    kind: DraftKind = DraftKind.MARKETING

    def findings(self, data: SwarmInput, notes: list[str]) -> list[Finding]:
        latest = data.latest
        if latest is None:
            notes.append("no complete snapshot fresh enough to write from")
            return []
        values = usable_metrics(latest, data.freshness)
        if any(m not in values for m in PUBLIC_METRICS):
            notes.append(f"snapshot {latest.id} lacks usable public figures")
            return []
        facts = PublicFacts(
            snapshot_date=latest.snapshot_date,
            firings_scheduled=int(values["counts.firingsScheduled"]),
            reservations_open=int(values["counts.reservationsOpen"]),
        )
        public = {facts.firings_scheduled, facts.reservations_open}
        private = {int(values[m]) for m in PRIVATE_METRICS if m in values} - public
        drafts: list[tuple[str, tuple[str, str]]] = []
        if facts.firings_scheduled < self.rules.kiln_space_below:
            drafts.append((KILN_SPACE_RULE, kiln_space_copy(facts)))
        if facts.firings_scheduled > 0:
            drafts.append((UPCOMING_FIRINGS_RULE, upcoming_firings_copy(facts)))
        out: list[Finding] = []
        for rule_id, (title, copy) in drafts:
            leaks = copy_leaks(f"{title}\n{copy}", private)
            if leaks:
                # never reached with the templates above; the check guards future templates
                log.warning("swarm.marketing.copy_refused", rule_id=rule_id, problems=leaks)
                notes.append(f"{rule_id}: copy refused ({'; '.join(leaks)})")
                continue
            out.append(self._finding(latest, facts, rule_id, title, copy))
        return out

    def _finding(
        self, latest: SnapshotRun, facts: PublicFacts, rule_id: str, title: str, copy: str
    ) -> Finding:
        metrics: dict[str, Any] = {
            "counts.firingsScheduled": facts.firings_scheduled,
            "counts.reservationsOpen": facts.reservations_open,
        }
        return Finding(
            kind=DraftKind.MARKETING,
            rule_id=rule_id,
            subject=rule_id,
            severity=Severity.INFO,
            title=title,
            rationale=f"Written from the public figures of the {facts.snapshot_date} snapshot.",
            recommendation="Review the copy, then approve it for publishing through the Portal.",
            snapshot_date=latest.snapshot_date,
            evidence=Evidence(
                snapshot_ids=(latest.id,),
                snapshot_dates=(latest.snapshot_date,),
                metrics=metrics,
                rule_ids=(rule_id,),
            ),
            confidence=0.6,
            body={
                "channel": self.rules.channel,
                "copy": copy,
                "templateVersion": TEMPLATE_VERSION,
                "confidenceNotes": (
                    f"Figures from the complete snapshot of {facts.snapshot_date}; kiln schedules change, "
                    "so check the calendar before publishing."
                ),
            },
            cooldown_hours=self.rules.cooldown_hours,
        )
