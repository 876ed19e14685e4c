"""DraftStore on PostgreSQL: swarm drafts with a unique dedupe key and a cooldown enforced by trigger."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from studio_brain.adapters.postgres.database import Database, translate
from studio_brain.domain.drafts import (
    Draft,
    DraftKind,
    DraftOutcome,
    DraftStatus,
    Finding,
    Severity,
    initial_status,
)
from studio_brain.domain.errors import InputInvalid
from studio_brain.domain.hashing import to_json_value

_COLUMNS = (
    "id, tenant_id, kind, rule_id, subject, dedupe_key, draft_day, status, severity, title, rationale,"
    " recommendation, snapshot_date, evidence, confidence, body, actor_type, actor_id, created_at, updated_at"
)


def _draft(row: dict[str, Any]) -> Draft:
    return Draft(
        id=row["id"],
        tenant_id=row["tenant_id"],
        kind=DraftKind(row["kind"]),
        rule_id=row["rule_id"],
        subject=row["subject"],
        dedupe_key=row["dedupe_key"],
        draft_day=row["draft_day"],
        status=DraftStatus(row["status"]),
        severity=Severity(row["severity"]),
        title=row["title"],
        rationale=row["rationale"],
        recommendation=row["recommendation"],
        snapshot_date=row["snapshot_date"],
        evidence=row["evidence"],
        confidence=row["confidence"],
        body=row["body"],
        actor_type=row["actor_type"],
        actor_id=row["actor_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class PostgresDraftStore:
    def __init__(self, database: Database, *, zone: Any) -> None:
        self._db = database
        #: the studio's timezone: "the same day" is the studio's local day
        self._zone = zone

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
        try:
            async with self._db.connection() as conn:
                cursor = await conn.execute(
                    f"INSERT INTO swarm_drafts ({_COLUMNS}, cooldown_key, cooldown_seconds)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
                    " %s, %s) ON CONFLICT (tenant_id, dedupe_key) DO NOTHING RETURNING id",
                    (
                        draft_id,
                        tenant_id,
                        finding.kind.value,
                        finding.rule_id,
                        finding.subject,
                        key,
                        day,
                        initial_status(finding.kind).value,
                        finding.severity.value,
                        finding.title,
                        finding.rationale,
                        finding.recommendation,
                        finding.snapshot_date,
                        Jsonb(evidence),
                        float(finding.confidence),
                        Jsonb(body),
                        actor_type,
                        actor_id,
                        at,
                        at,
                        finding.cooldown_key(),
                        round(finding.cooldown_hours * 3600),
                    ),
                )
                if await cursor.fetchone() is not None:
                    return DraftOutcome.CREATED
                cursor = await conn.execute(
                    "SELECT 1 FROM swarm_drafts WHERE tenant_id = %s AND dedupe_key = %s", (tenant_id, key)
                )
                exists = await cursor.fetchone()
        except psycopg.Error as err:
            raise translate(err, "storing a draft") from err
        return DraftOutcome.DUPLICATE if exists else DraftOutcome.COOLING_DOWN

    async def get(self, tenant_id: str, draft_id: str) -> Draft | None:
        rows = await self._select(
            f"SELECT {_COLUMNS} FROM swarm_drafts WHERE tenant_id = %s AND id = %s", (tenant_id, draft_id)
        )
        return rows[0] if rows else None

    async def list(self, tenant_id: str, *, kind: DraftKind, limit: int = 30) -> Sequence[Draft]:
        return await self._select(
            f"SELECT {_COLUMNS} FROM swarm_drafts WHERE tenant_id = %s AND kind = %s"
            " ORDER BY created_at DESC, id DESC LIMIT %s",
            (tenant_id, kind.value, limit),
        )

    async def set_status(
        self, tenant_id: str, draft_id: str, *, expected: DraftStatus, to: DraftStatus, at: datetime
    ) -> bool:
        try:
            async with self._db.connection() as conn:
                cursor = await conn.execute(
                    "UPDATE swarm_drafts SET status = %s, updated_at = %s"
                    " WHERE tenant_id = %s AND id = %s AND status = %s",
                    (to.value, at, tenant_id, draft_id, expected.value),
                )
                return cursor.rowcount == 1
        except psycopg.Error as err:
            raise translate(err, "updating a draft's status") from err

    async def _select(self, query: str, params: tuple[Any, ...]) -> Sequence[Draft]:
        try:
            async with self._db.connection() as conn:
                cursor = await conn.execute(query, params)
                return [_draft(row) for row in await cursor.fetchall()]
        except psycopg.Error as err:
            raise translate(err, "reading drafts") from err
