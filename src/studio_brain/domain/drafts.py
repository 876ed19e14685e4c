"""Swarm drafts: findings with evidence, confidence and a stable dedupe key; the marketing review machine.

A draft is advice for a human. Nothing here approves or executes anything: the only status machine is
the marketing review (``draft → needs_review → approved_for_publish``) and even its last state publishes
nothing — publishing is a cloud write and stays with the cloud.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from studio_brain.domain.errors import Conflict, InputInvalid
from studio_brain.domain.hashing import sha256_hex

_RULE_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
MAX_TITLE = 200
MAX_TEXT = 4000


class DraftKind(StrEnum):
    OPS = "ops"
    FINANCE = "finance"
    MARKETING = "marketing"


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class DraftStatus(StrEnum):
    #: ops and finance drafts: advice waiting to be read
    OPEN = "open"
    #: marketing review machine
    DRAFT = "draft"
    NEEDS_REVIEW = "needs_review"
    APPROVED_FOR_PUBLISH = "approved_for_publish"


#: the marketing review machine; "back to draft" is how a reviewer asks for changes
MARKETING_TRANSITIONS: dict[DraftStatus, frozenset[DraftStatus]] = {
    DraftStatus.DRAFT: frozenset({DraftStatus.NEEDS_REVIEW}),
    DraftStatus.NEEDS_REVIEW: frozenset({DraftStatus.APPROVED_FOR_PUBLISH, DraftStatus.DRAFT}),
    DraftStatus.APPROVED_FOR_PUBLISH: frozenset(),
}


def review_transition(current: DraftStatus, wanted: DraftStatus) -> DraftStatus:
    """``wanted`` if the marketing machine allows ``current → wanted``; Conflict otherwise."""
    match current:
        case DraftStatus.DRAFT | DraftStatus.NEEDS_REVIEW | DraftStatus.APPROVED_FOR_PUBLISH:
            allowed = MARKETING_TRANSITIONS[current]
        case DraftStatus.OPEN:
            raise Conflict("only marketing drafts have a review status")
    if wanted not in allowed:
        options = ", ".join(sorted(allowed)) or "none (final)"
        raise Conflict(f"a marketing draft cannot go from {current} to {wanted} (allowed: {options})")
    return wanted


class DraftOutcome(StrEnum):
    CREATED = "created"
    #: the same finding was already drafted today (dedupe key)
    DUPLICATE = "duplicate"
    #: a draft with the same cooldown key is younger than its cooldown
    COOLING_DOWN = "cooling_down"


@dataclass(frozen=True, kw_only=True, slots=True)
class Evidence:
    """Why a draft exists: the snapshots read, the metric values seen and the rules that fired."""

    snapshot_ids: tuple[str, ...] = ()
    snapshot_dates: tuple[date, ...] = ()
    #: dotted metric -> value (or a small dict: value, expected, zScore, since ...)
    metrics: dict[str, Any] = field(default_factory=dict)
    rule_ids: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "snapshotIds": list(self.snapshot_ids),
            "snapshotDates": [d.isoformat() for d in self.snapshot_dates],
            "metrics": self.metrics,
            "ruleIds": list(self.rule_ids),
        }

    def refs(self) -> list[str]:
        return evidence_refs(self.to_json())


def evidence_refs(evidence: dict[str, Any]) -> list[str]:
    """Flat references (``snapshot:ID``, ``metric:NAME=VALUE``, ``rule:ID``) for the Portal's ref lists."""
    refs = [f"snapshot:{sid}" for sid in evidence.get("snapshotIds") or []]
    for name, value in (evidence.get("metrics") or {}).items():
        shown = value.get("value") if isinstance(value, dict) else value
        refs.append(f"metric:{name}={shown}")
    refs.extend(f"rule:{rule}" for rule in evidence.get("ruleIds") or [])
    return refs


@dataclass(frozen=True, kw_only=True, slots=True)
class Finding:
    """What a swarm (or an agent) proposes to draft."""

    kind: DraftKind
    rule_id: str
    #: what the finding is about within the rule (a metric, a template) — part of the dedupe key
    subject: str
    severity: Severity
    title: str
    rationale: str
    recommendation: str
    snapshot_date: date | None
    evidence: Evidence
    confidence: float
    #: kind-specific fields (marketing: channel, copy, templateVersion, confidenceNotes)
    body: dict[str, Any] = field(default_factory=dict)
    cooldown_hours: float = 24.0

    def validate(self) -> None:
        """Raise InputInvalid naming the first problem."""
        if not _RULE_ID.match(self.rule_id):
            raise InputInvalid(
                f"ruleId {self.rule_id!r} must be dotted lowercase, e.g. ops.agent_queue_spike"
            )
        if not self.rule_id.startswith(f"{self.kind.value}.") and not self.rule_id.startswith("agent."):
            raise InputInvalid(f"ruleId {self.rule_id!r} must start with '{self.kind.value}.' or 'agent.'")
        if not self.subject or len(self.subject) > MAX_TITLE:
            raise InputInvalid("subject must be 1-200 characters")
        if not self.title.strip() or len(self.title) > MAX_TITLE:
            raise InputInvalid("title must be 1-200 characters")
        for name, text in (("rationale", self.rationale), ("recommendation", self.recommendation)):
            if not text.strip() or len(text) > MAX_TEXT:
                raise InputInvalid(f"{name} must be 1-{MAX_TEXT} characters")
        if not 0.0 <= self.confidence <= 1.0:
            raise InputInvalid(f"confidence must lie in [0, 1], got {self.confidence}")
        if not (self.evidence.snapshot_ids or self.evidence.metrics or self.evidence.rule_ids):
            raise InputInvalid("a draft needs evidence: snapshot ids, metric values or rule ids")
        if not 0.0 <= self.cooldown_hours <= 24 * 90:
            raise InputInvalid("cooldown must lie between 0 hours and 90 days")

    def cooldown_key(self) -> str:
        return f"{self.kind.value}:{self.rule_id}:{self.subject}"

    def dedupe_key(self, tenant_id: str, day: date) -> str:
        """Same tenant, kind, rule and subject on the same day: the same draft."""
        return sha256_hex(
            {
                "tenant": tenant_id,
                "kind": self.kind.value,
                "rule": self.rule_id,
                "subject": self.subject,
                "day": day,
            }
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Draft:
    """A stored draft."""

    id: str
    tenant_id: str
    kind: DraftKind
    rule_id: str
    subject: str
    dedupe_key: str
    draft_day: date
    status: DraftStatus
    severity: Severity
    title: str
    rationale: str
    recommendation: str
    snapshot_date: date | None
    evidence: dict[str, Any]
    confidence: float
    body: dict[str, Any]
    actor_type: str
    actor_id: str
    created_at: datetime
    updated_at: datetime


def initial_status(kind: DraftKind) -> DraftStatus:
    return DraftStatus.DRAFT if kind is DraftKind.MARKETING else DraftStatus.OPEN


#: words that mark internal finance or safety content; public copy must contain none of them
_PRIVATE_WORDS = re.compile(
    r"\b(payments?|unsettled|refunds?|disputes?|disputed|revenue|invoices?|stripe|orders? pending|pending orders?"
    r"|safety|incidents?|injur(y|ies)|severity|reports? open|open reports?)\b|[$€£]",
    re.IGNORECASE,
)


def copy_leaks(copy: str, private_figures: set[int]) -> list[str]:
    """Why ``copy`` may not go public: private words, or any private figure (finance, safety) it contains."""
    problems = [f"mentions {m.group(0)!r}" for m in _PRIVATE_WORDS.finditer(copy)]
    numbers = {int(n) for n in re.findall(r"\d+", copy)}
    problems.extend(f"contains the internal figure {n}" for n in sorted(numbers & private_figures))
    return problems


class DraftDecisionKind(StrEnum):
    """What a person did with a swarm draft in the cockpit (issue 14)."""

    #: became a ``studio.note.append`` proposal waiting for approval
    SUBMITTED = "submitted"
    #: set aside, with the reason recorded and audited
    DISMISSED = "dismissed"


@dataclass(frozen=True, kw_only=True, slots=True)
class DraftDecision:
    """One decision per draft; a draft decided once is no longer waiting."""

    tenant_id: str
    draft_id: str
    decision: DraftDecisionKind
    reason: str
    proposal_id: str | None
    actor_id: str
    decided_at: datetime
