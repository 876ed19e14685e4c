"""DraftStore in memory: the same dedupe (one draft per finding per studio day) and cooldown rules as the
PostgreSQL table and its trigger. Passes ``tests/contract/test_draft_store.py``."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta, tzinfo

from studio_brain.domain.drafts import Draft, DraftKind, DraftOutcome, DraftStatus, Finding, initial_status
from studio_brain.domain.errors import InputInvalid
from studio_brain.domain.hashing import to_json_value


class InMemoryDraftStore:
    def __init__(self, *, zone: tzinfo) -> None:
        #: the studio's timezone: "the same day" is the studio's local day
        self._zone = zone
        self._drafts: dict[tuple[str, str], Draft] = {}
        #: (tenant, draft id) -> cooldown key, as the table's cooldown_key column
        self._cooldown_keys: dict[tuple[str, str], str] = {}
        self._lock = asyncio.Lock()

    async def add(
        self, finding: Finding, *, tenant_id: str, draft_id: str, actor_type: str, actor_id: str, at: datetime
    ) -> DraftOutcome:
        finding.validate()
        day = at.astimezone(self._zone).date()
        key = finding.dedupe_key(tenant_id, day)
        evidence = to_json_value(finding.evidence.to_json())
        body = to_json_value(finding.body)
        if not isinstance(evidence, dict) or not isinstance(body, dict):  # pragma: no cover - typed above
            raise InputInvalid("evidence and body must be JSON objects")
        async with self._lock:
            mine = [d for (tenant, _), d in self._drafts.items() if tenant == tenant_id]
            if any(d.dedupe_key == key for d in mine):
                return DraftOutcome.DUPLICATE
            cooldown = timedelta(seconds=round(finding.cooldown_hours * 3600))
            cooling = finding.cooldown_key()
            if cooldown > timedelta(0) and any(
                self._cooldown_keys[(tenant_id, d.id)] == cooling and at - cooldown < d.created_at <= at
                for d in mine
            ):
                return DraftOutcome.COOLING_DOWN
            self._drafts[(tenant_id, draft_id)] = Draft(
                id=draft_id,
                tenant_id=tenant_id,
                kind=finding.kind,
                rule_id=finding.rule_id,
                subject=finding.subject,
                dedupe_key=key,
                draft_day=day,
                status=initial_status(finding.kind),
                severity=finding.severity,
                title=finding.title,
                rationale=finding.rationale,
                recommendation=finding.recommendation,
                snapshot_date=finding.snapshot_date,
                evidence=evidence,
                confidence=float(finding.confidence),
                body=body,
                actor_type=actor_type,
                actor_id=actor_id,
                created_at=at,
                updated_at=at,
            )
            self._cooldown_keys[(tenant_id, draft_id)] = cooling
        return DraftOutcome.CREATED

    async def get(self, tenant_id: str, draft_id: str) -> Draft | None:
        draft = self._drafts.get((tenant_id, draft_id))
        return None if draft is None else copy.deepcopy(draft)

    async def list(self, tenant_id: str, *, kind: DraftKind, limit: int = 30) -> Sequence[Draft]:
        found = [
            copy.deepcopy(d)
            for (tenant, _), d in self._drafts.items()
            if tenant == tenant_id and d.kind is kind
        ]
        found.sort(key=lambda d: (d.created_at, d.id), reverse=True)
        return found[:limit]

    async def set_status(
        self, tenant_id: str, draft_id: str, *, expected: DraftStatus, to: DraftStatus, at: datetime
    ) -> bool:
        async with self._lock:
            draft = self._drafts.get((tenant_id, draft_id))
            if draft is None or draft.status is not expected:
                return False
            self._drafts[(tenant_id, draft_id)] = replace(draft, status=to, updated_at=at)
        return True
