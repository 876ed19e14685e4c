"""SafetyStore and NotificationStore in memory: the same semantics as the PostgreSQL tables (onsets
replaced per pass, newest finding per dedupe key, open findings resolved when their condition is gone, an
outbox unique per dedupe key whose due rows are claimed under a lease). Passes
``tests/contract/test_safety_store.py``; used by ``bench/safety_watch.py``."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from studio_brain.domain.notify import DeliveryStatus, Notification
from studio_brain.domain.safety import FindingRecord, FindingStatus


class InMemorySafetyStore:
    def __init__(self) -> None:
        self._onsets: dict[str, dict[str, datetime]] = {}
        self._records: dict[str, list[FindingRecord]] = {}

    async def onsets(self, tenant_id: str) -> dict[str, datetime]:
        return dict(self._onsets.get(tenant_id, {}))

    async def save_onsets(self, tenant_id: str, onsets: Mapping[str, datetime], now: datetime) -> None:
        self._onsets[tenant_id] = dict(onsets)

    async def latest_for(self, tenant_id: str, dedupe_key: str) -> FindingRecord | None:
        found = [r for r in self._records.get(tenant_id, []) if r.dedupe_key == dedupe_key]
        return max(found, key=lambda r: r.detected_at) if found else None

    async def add(self, record: FindingRecord) -> None:
        self._records.setdefault(record.tenant_id, []).append(record)

    def _update(self, tenant_id: str, finding_id: str, **changes: object) -> None:
        records = self._records.get(tenant_id, [])
        for i, r in enumerate(records):
            if r.id == finding_id:
                records[i] = replace(r, **changes)  # type: ignore[arg-type]

    async def touch(self, tenant_id: str, finding_id: str, seen_at: datetime) -> None:
        self._update(tenant_id, finding_id, last_seen_at=seen_at)

    async def link(
        self, tenant_id: str, finding_id: str, *, draft_id: str | None, proposal_id: str | None
    ) -> None:
        self._update(tenant_id, finding_id, draft_id=draft_id, proposal_id=proposal_id)

    async def resolve_absent(
        self, tenant_id: str, holding: Sequence[str], now: datetime
    ) -> list[FindingRecord]:
        resolved = []
        records = self._records.get(tenant_id, [])
        for i, r in enumerate(records):
            if r.status is FindingStatus.OPEN and r.dedupe_key not in holding:
                records[i] = replace(r, status=FindingStatus.RESOLVED, resolved_at=now)
                resolved.append(records[i])
        return resolved

    async def list(
        self, tenant_id: str, *, status: str | None = None, limit: int = 50
    ) -> list[FindingRecord]:
        rows = [r for r in self._records.get(tenant_id, []) if status is None or r.status.value == status]
        return sorted(rows, key=lambda r: (r.detected_at, r.id), reverse=True)[:limit]


class InMemoryNotificationStore:
    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], Notification] = {}
        self._lock = asyncio.Lock()

    async def enqueue(self, notification: Notification) -> bool:
        async with self._lock:
            if any(
                n.tenant_id == notification.tenant_id and n.dedupe_key == notification.dedupe_key
                for n in self._rows.values()
            ):
                return False
            self._rows[(notification.tenant_id, notification.id)] = notification
            return True

    async def due(
        self, tenant_id: str, now: datetime, *, lease_until: datetime, limit: int = 50
    ) -> list[Notification]:
        async with self._lock:
            due = sorted(
                (
                    n
                    for n in self._rows.values()
                    if n.tenant_id == tenant_id
                    and n.status is DeliveryStatus.PENDING
                    and n.next_attempt_at is not None
                    and n.next_attempt_at <= now
                ),
                key=lambda n: (n.next_attempt_at, n.id),
            )[:limit]
            claimed = [replace(n, next_attempt_at=lease_until) for n in due]
            for n in claimed:
                self._rows[(tenant_id, n.id)] = n
            return sorted(claimed, key=lambda n: (n.created_at, n.id))

    async def record_attempt(
        self,
        notification: Notification,
        *,
        status: str,
        attempts: int,
        next_attempt_at: datetime | None,
        error: str | None,
        at: datetime,
    ) -> None:
        async with self._lock:
            key = (notification.tenant_id, notification.id)
            current = self._rows.get(key)
            if current is None:
                return
            self._rows[key] = replace(
                current,
                status=DeliveryStatus(status),
                attempts=attempts,
                next_attempt_at=next_attempt_at,
                last_error=error,
                sent_at=at if status == DeliveryStatus.SENT.value else current.sent_at,
            )

    async def list(self, tenant_id: str, *, limit: int = 50) -> list[Notification]:
        rows = [n for n in self._rows.values() if n.tenant_id == tenant_id]
        return sorted(rows, key=lambda n: (n.created_at, n.id), reverse=True)[:limit]
