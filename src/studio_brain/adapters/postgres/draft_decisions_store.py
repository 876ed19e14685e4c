"""Draft decisions on PostgreSQL (issue 14, migration 0012): one row per decided swarm draft."""

from __future__ import annotations

from typing import Any

import psycopg

from studio_brain.adapters.postgres.database import Database, translate
from studio_brain.domain.drafts import DraftDecision, DraftDecisionKind
from studio_brain.domain.errors import Conflict

_COLUMNS = "tenant_id, draft_id, decision, reason, proposal_id, actor_id, decided_at"


def _decision(row: dict[str, Any]) -> DraftDecision:
    return DraftDecision(
        tenant_id=row["tenant_id"],
        draft_id=row["draft_id"],
        decision=DraftDecisionKind(row["decision"]),
        reason=row["reason"],
        proposal_id=row["proposal_id"],
        actor_id=row["actor_id"],
        decided_at=row["decided_at"],
    )


async def _scope(conn: psycopg.AsyncConnection[dict[str, Any]], tenant_id: str) -> None:
    await conn.execute("SELECT set_config('studio_brain.tenant_id', %s, true)", (tenant_id,))


class PostgresDraftDecisionStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def record(self, decision: DraftDecision) -> None:
        """Store a decision; a draft already decided raises Conflict (the first decision stands)."""
        try:
            async with self._db.connection() as conn:
                await _scope(conn, decision.tenant_id)
                await conn.execute(
                    f"INSERT INTO draft_decisions ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    (
                        decision.tenant_id,
                        decision.draft_id,
                        decision.decision.value,
                        decision.reason,
                        decision.proposal_id,
                        decision.actor_id,
                        decision.decided_at,
                    ),
                )
        except psycopg.errors.UniqueViolation as err:
            raise Conflict(f"draft {decision.draft_id} was already decided; reload the page") from err
        except psycopg.Error as err:
            raise translate(err, "recording a draft decision") from err

    async def decisions(self, tenant_id: str) -> dict[str, DraftDecision]:
        """Every decision of the tenant by draft id."""
        try:
            async with self._db.connection() as conn:
                await _scope(conn, tenant_id)
                cursor = await conn.execute(
                    f"SELECT {_COLUMNS} FROM draft_decisions WHERE tenant_id = %s", (tenant_id,)
                )
                return {row["draft_id"]: _decision(row) for row in await cursor.fetchall()}
        except psycopg.Error as err:
            raise translate(err, "reading draft decisions") from err
