"""SafetyStore and NotificationStore on PostgreSQL: condition onsets, findings, the notification outbox.

Each transaction sets ``studio_brain.tenant_id`` so the tables' row-level security policy applies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from studio_brain.adapters.postgres.database import Database, translate
from studio_brain.domain.drafts import Severity
from studio_brain.domain.hashing import to_json_value
from studio_brain.domain.notify import DeliveryStatus, Notification, NotificationKind
from studio_brain.domain.safety import FindingRecord, FindingStatus, RuleKind

_FINDING_COLUMNS = (
    "id, tenant_id, rule_id, rule_kind, subject, dedupe_key, severity, title, summary, status,"
    " cooldown_seconds, onset_at, detected_at, last_seen_at, resolved_at, evidence, rules_version,"
    " rules_hash, draft_id, proposal_id"
)
_NOTIFICATION_COLUMNS = (
    "id, tenant_id, dedupe_key, kind, severity, target, target_display, title, body, finding_id, status,"
    " attempts, next_attempt_at, last_error, created_at, sent_at, updated_at"
)


async def _scope(conn: psycopg.AsyncConnection[dict[str, Any]], tenant_id: str) -> None:
    await conn.execute("SELECT set_config('studio_brain.tenant_id', %s, true)", (tenant_id,))


def _finding(row: dict[str, Any]) -> FindingRecord:
    return FindingRecord(
        id=row["id"],
        tenant_id=row["tenant_id"],
        rule_id=row["rule_id"],
        rule_kind=RuleKind(row["rule_kind"]),
        subject=row["subject"],
        dedupe_key=row["dedupe_key"],
        severity=Severity(row["severity"]),
        title=row["title"],
        summary=row["summary"],
        status=FindingStatus(row["status"]),
        cooldown=timedelta(seconds=row["cooldown_seconds"]),
        onset_at=row["onset_at"],
        detected_at=row["detected_at"],
        last_seen_at=row["last_seen_at"],
        resolved_at=row["resolved_at"],
        evidence=row["evidence"],
        rules_version=row["rules_version"],
        rules_hash=row["rules_hash"],
        draft_id=row["draft_id"],
        proposal_id=row["proposal_id"],
    )


def _notification(row: dict[str, Any]) -> Notification:
    return Notification(
        id=row["id"],
        tenant_id=row["tenant_id"],
        dedupe_key=row["dedupe_key"],
        kind=NotificationKind(row["kind"]),
        severity=Severity(row["severity"]),
        target=row["target"],
        target_display=row["target_display"],
        title=row["title"],
        body=row["body"],
        finding_id=row["finding_id"],
        status=DeliveryStatus(row["status"]),
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        sent_at=row["sent_at"],
    )


class PostgresSafetyStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def _fetch(
        self, tenant_id: str, doing: str, query: str, params: Sequence[Any]
    ) -> list[dict[str, Any]]:
        try:
            async with self._db.connection() as conn:
                await _scope(conn, tenant_id)
                cursor = await conn.execute(query, params)
                return list(await cursor.fetchall()) if cursor.description else []
        except psycopg.Error as err:
            raise translate(err, doing) from err

    async def onsets(self, tenant_id: str) -> dict[str, datetime]:
        rows = await self._fetch(
            tenant_id,
            "reading safety conditions",
            "SELECT condition_key, onset_at FROM safety_conditions WHERE tenant_id = %s",
            (tenant_id,),
        )
        return {r["condition_key"]: r["onset_at"] for r in rows}

    async def save_onsets(self, tenant_id: str, onsets: Mapping[str, datetime], now: datetime) -> None:
        try:
            async with self._db.connection() as conn:
                await _scope(conn, tenant_id)
                await conn.execute(
                    "DELETE FROM safety_conditions WHERE tenant_id = %s AND NOT (condition_key = ANY(%s))",
                    (tenant_id, list(onsets)),
                )
                for key, onset in onsets.items():
                    await conn.execute(
                        "INSERT INTO safety_conditions (tenant_id, condition_key, onset_at, last_seen_at)"
                        " VALUES (%s, %s, %s, %s) ON CONFLICT (tenant_id, condition_key)"
                        " DO UPDATE SET onset_at = EXCLUDED.onset_at, last_seen_at = EXCLUDED.last_seen_at",
                        (tenant_id, key, onset, now),
                    )
        except psycopg.Error as err:
            raise translate(err, "saving safety conditions") from err

    async def latest_for(self, tenant_id: str, dedupe_key: str) -> FindingRecord | None:
        rows = await self._fetch(
            tenant_id,
            "reading a safety finding",
            f"SELECT {_FINDING_COLUMNS} FROM safety_findings WHERE tenant_id = %s AND dedupe_key = %s"
            " ORDER BY detected_at DESC LIMIT 1",
            (tenant_id, dedupe_key),
        )
        return _finding(rows[0]) if rows else None

    async def add(self, record: FindingRecord) -> None:
        evidence = to_json_value(record.evidence)
        await self._fetch(
            record.tenant_id,
            "recording a safety finding",
            f"INSERT INTO safety_findings ({_FINDING_COLUMNS}) VALUES"
            " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                record.id,
                record.tenant_id,
                record.rule_id,
                record.rule_kind.value,
                record.subject,
                record.dedupe_key,
                record.severity.value,
                record.title,
                record.summary,
                record.status.value,
                int(record.cooldown.total_seconds()),
                record.onset_at,
                record.detected_at,
                record.last_seen_at,
                record.resolved_at,
                Jsonb(evidence),
                record.rules_version,
                record.rules_hash,
                record.draft_id,
                record.proposal_id,
            ),
        )

    async def touch(self, tenant_id: str, finding_id: str, seen_at: datetime) -> None:
        await self._fetch(
            tenant_id,
            "updating a safety finding",
            "UPDATE safety_findings SET last_seen_at = %s WHERE tenant_id = %s AND id = %s",
            (seen_at, tenant_id, finding_id),
        )

    async def link(
        self, tenant_id: str, finding_id: str, *, draft_id: str | None, proposal_id: str | None
    ) -> None:
        await self._fetch(
            tenant_id,
            "linking a safety finding to its draft",
            "UPDATE safety_findings SET draft_id = %s, proposal_id = %s WHERE tenant_id = %s AND id = %s",
            (draft_id, proposal_id, tenant_id, finding_id),
        )

    async def resolve_absent(
        self, tenant_id: str, holding: Sequence[str], now: datetime
    ) -> list[FindingRecord]:
        rows = await self._fetch(
            tenant_id,
            "resolving safety findings",
            "UPDATE safety_findings SET status = 'resolved', resolved_at = %s"
            " WHERE tenant_id = %s AND status = 'open' AND NOT (dedupe_key = ANY(%s))"
            f" RETURNING {_FINDING_COLUMNS}",
            (now, tenant_id, list(holding)),
        )
        return [_finding(r) for r in rows]

    async def list(
        self, tenant_id: str, *, status: str | None = None, limit: int = 50
    ) -> list[FindingRecord]:
        where = " AND status = %s" if status else ""
        params: tuple[Any, ...] = (tenant_id, status, limit) if status else (tenant_id, limit)
        rows = await self._fetch(
            tenant_id,
            "listing safety findings",
            f"SELECT {_FINDING_COLUMNS} FROM safety_findings WHERE tenant_id = %s{where}"
            " ORDER BY detected_at DESC, id DESC LIMIT %s",
            params,
        )
        return [_finding(r) for r in rows]


class PostgresNotificationStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def _fetch(
        self, tenant_id: str, doing: str, query: str, params: Sequence[Any]
    ) -> list[dict[str, Any]]:
        try:
            async with self._db.connection() as conn:
                await _scope(conn, tenant_id)
                cursor = await conn.execute(query, params)
                return list(await cursor.fetchall()) if cursor.description else []
        except psycopg.Error as err:
            raise translate(err, doing) from err

    async def enqueue(self, n: Notification) -> bool:
        rows = await self._fetch(
            n.tenant_id,
            "queueing a notification",
            f"INSERT INTO notifications ({_NOTIFICATION_COLUMNS}) VALUES"
            " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (tenant_id, dedupe_key) DO NOTHING RETURNING id",
            (
                n.id,
                n.tenant_id,
                n.dedupe_key,
                n.kind.value,
                n.severity.value,
                n.target,
                n.target_display,
                n.title,
                n.body,
                n.finding_id,
                n.status.value,
                n.attempts,
                n.next_attempt_at,
                n.last_error,
                n.created_at,
                n.sent_at,
                n.created_at,
            ),
        )
        return bool(rows)

    async def due(
        self, tenant_id: str, now: datetime, *, lease_until: datetime, limit: int = 50
    ) -> list[Notification]:
        # claim the rows (their next attempt moves to the lease's end) so that two deliverers — the watch
        # and the brief job at the same minute, or two processes — never send the same message twice
        rows = await self._fetch(
            tenant_id,
            "claiming due notifications",
            "UPDATE notifications SET next_attempt_at = %s, updated_at = %s WHERE tenant_id = %s AND id IN ("
            " SELECT id FROM notifications WHERE tenant_id = %s AND status = 'pending' AND next_attempt_at <= %s"
            " ORDER BY next_attempt_at, id LIMIT %s FOR UPDATE SKIP LOCKED)"
            f" RETURNING {_NOTIFICATION_COLUMNS}",
            (lease_until, now, tenant_id, tenant_id, now, limit),
        )
        return sorted((_notification(r) for r in rows), key=lambda n: (n.created_at, n.id))

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
        await self._fetch(
            notification.tenant_id,
            "recording a notification attempt",
            "UPDATE notifications SET status = %s, attempts = %s, next_attempt_at = %s, last_error = %s,"
            " sent_at = CASE WHEN %s = 'sent' THEN %s ELSE sent_at END, updated_at = %s"
            " WHERE tenant_id = %s AND id = %s",
            (
                status,
                attempts,
                next_attempt_at,
                error,
                status,
                at,
                at,
                notification.tenant_id,
                notification.id,
            ),
        )

    async def list(self, tenant_id: str, *, limit: int = 50) -> list[Notification]:
        rows = await self._fetch(
            tenant_id,
            "listing notifications",
            f"SELECT {_NOTIFICATION_COLUMNS} FROM notifications WHERE tenant_id = %s"
            " ORDER BY created_at DESC, id DESC LIMIT %s",
            (tenant_id, limit),
        )
        return [_notification(r) for r in rows]
