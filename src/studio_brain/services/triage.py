"""Reports' trust-and-safety triage, from the brain's view of ``communityReports``: the latest snapshot's
report counts, rule-based suggestions (suggestions only: the brain never changes a report), and staff
feedback on them (audited; the accepted/rejected and mismatch figures are read back from those rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from studio_brain.domain.audit import ApprovalState, AuditDraft, AuditEvent, AuditQuery
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.identity import Principal
from studio_brain.ports.audit import EventStore
from studio_brain.ports.state import StateStore

FEEDBACK_ACTION = "trust_safety.triage.feedback"
#: the version of the rules below; shown as the suggestion's model
RULES_VERSION = "rules-2026.12"

#: words in a report's title or note that suggest a category and severity (first match wins)
_RULES: tuple[tuple[tuple[str, ...], str, str, str], ...] = (
    (("threat", "violence", "weapon", "self-harm", "unsafe"), "high", "safety", "SAFETY_RISK"),
    (("harass", "abuse", "hate", "slur"), "high", "harassment", "HARASSMENT"),
    (("spam", "scam", "advert", "link"), "low", "spam", "SPAM"),
    (("copyright", "stolen", "plagiar"), "medium", "ip", "IP_CLAIM"),
)


@dataclass(frozen=True, kw_only=True, slots=True)
class TriageStats:
    accepted: int
    rejected: int
    mismatches: int
    reports_open: int | None
    high_severity: int | None
    snapshot_date: date | None

    @property
    def mismatch_rate_pct(self) -> float:
        total = self.accepted + self.rejected
        return round(100.0 * self.mismatches / total, 1) if total else 0.0


@dataclass(frozen=True, kw_only=True, slots=True)
class Suggestion:
    severity: str
    category: str
    reason_code: str
    confidence: float
    provenance: tuple[str, ...]


def suggest(target_title: str, note: str) -> Suggestion:
    """A deterministic suggestion from the report's own words; low confidence when nothing matched."""
    text = f"{target_title} {note}".lower()
    for words, severity, category, code in _RULES:
        hit = next((w for w in words if w in text), None)
        if hit is not None:
            return Suggestion(
                severity=severity,
                category=category,
                reason_code=code,
                confidence=0.6,
                provenance=(f"keyword:{hit}", RULES_VERSION),
            )
    return Suggestion(
        severity="low",
        category="other",
        reason_code="NEEDS_REVIEW",
        confidence=0.2,
        provenance=("no-rule-matched", RULES_VERSION),
    )


def _metric(document: dict[str, Any], group: str, key: str) -> int | None:
    value = (document.get(group) or {}).get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class TriageDesk:
    """Stats, suggestions and audited feedback; never writes a report."""

    def __init__(self, *, events: EventStore, state_store: StateStore) -> None:
        self._events = events
        self._state = state_store

    async def stats(self, tenant_id: str, limit: int) -> TriageStats:
        page = await self._events.query(
            tenant_id, AuditQuery(action_prefix=FEEDBACK_ACTION, newest_first=True, limit=limit)
        )
        decisions = [e.metadata for e in page.events]
        latest = await self._state.latest_snapshot(tenant_id)
        document = latest.document if latest is not None else {}
        return TriageStats(
            accepted=sum(1 for d in decisions if d.get("decision") == "accepted"),
            rejected=sum(1 for d in decisions if d.get("decision") == "rejected"),
            mismatches=sum(1 for d in decisions if d.get("mismatch") is True),
            reports_open=_metric(document, "counts", "reportsOpen"),
            high_severity=_metric(document, "ops", "highSeverityReports"),
            snapshot_date=latest.snapshot_date if latest is not None else None,
        )

    async def feedback(
        self, principal: Principal, *, report_id: str, decision: str, detail: dict[str, Any], request_id: str
    ) -> AuditEvent:
        """Staff accepted or rejected a suggestion: one audit row (what was suggested, what was decided)."""
        metadata = {"reportId": report_id, "decision": decision, **detail, "via": "portal"}
        return await self._events.append(
            AuditDraft(
                tenant_id=principal.tenant_id,
                actor_type=principal.actor_type,
                actor_id=principal.actor_id,
                action=FEEDBACK_ACTION,
                target="firestore",
                rationale=f"triage suggestion {decision}",
                approval_state=ApprovalState.NOT_APPLICABLE,
                input_hash=sha256_hex(metadata),
                request_id=request_id,
                correlation_id=request_id,
                metadata=metadata,
            )
        )
