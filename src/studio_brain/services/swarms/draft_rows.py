"""The Portal's row shapes of drafts (ops, finance, marketing): what ``/api/ops|finance|marketing/drafts``
list, as :class:`~studio_brain.services.swarms.drafts.DraftService` returns them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from studio_brain.domain.drafts import (
    Draft,
    DraftKind,
    evidence_refs,
)
from studio_brain.domain.times import iso


def _iso(value: datetime) -> str:
    return iso(value, utc=False)


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def ops_row(d: Draft) -> dict[str, Any]:
    return {
        "id": d.id,
        "at": _iso(d.created_at),
        "rationale": d.rationale,
        "ruleId": d.rule_id,
        "severity": d.severity.value,
        "title": d.title,
        "recommendation": d.recommendation,
        "snapshotDate": _day(d.snapshot_date),
        "evidence": d.evidence,
        "confidence": d.confidence,
        "source": f"{d.actor_type}:{d.actor_id}",
    }


def finance_row(d: Draft) -> dict[str, Any]:
    return {
        "id": d.id,
        "at": _iso(d.created_at),
        "ruleId": d.rule_id,
        "severity": d.severity.value,
        "title": d.title,
        "rationale": d.rationale,
        "recommendation": d.recommendation,
        "snapshotDate": _day(d.snapshot_date),
        "evidenceRefs": evidence_refs(d.evidence),
        "confidence": d.confidence,
        "evidence": d.evidence,
        "source": f"{d.actor_type}:{d.actor_id}",
    }


def marketing_row(d: Draft) -> dict[str, Any]:
    return {
        "id": d.id,
        "at": _iso(d.created_at),
        "draftId": d.id,
        "status": d.status.value,
        "channel": d.body.get("channel", "newsletter"),
        "title": d.title,
        "copy": d.body.get("copy", ""),
        "sourceSnapshotDate": _day(d.snapshot_date),
        "sourceRefs": evidence_refs(d.evidence),
        "confidenceNotes": d.body.get("confidenceNotes", ""),
        "templateVersion": d.body.get("templateVersion", "agent"),
        "ruleId": d.rule_id,
        "source": f"{d.actor_type}:{d.actor_id}",
    }


ROWS = {DraftKind.OPS: ops_row, DraftKind.FINANCE: finance_row, DraftKind.MARKETING: marketing_row}
