"""StateStore on PostgreSQL: immutable snapshot runs, one diff per day pair, final daily closes, job runs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from studio_brain.adapters.postgres.database import Database, translate
from studio_brain.domain.errors import Conflict
from studio_brain.domain.state import (
    CloseKind,
    Completeness,
    DailyClose,
    JobRun,
    JobStatus,
    SnapshotDiff,
    SnapshotRun,
    SnapshotVersion,
)

_RUN_COLUMNS = "id, tenant_id, snapshot_date, generated_at, completeness, source, document, snapshot_hash"
_VERSION_COLUMNS = "id, tenant_id, snapshot_date, generated_at, completeness, source, snapshot_hash"


def _run(row: dict[str, Any]) -> SnapshotRun:
    return SnapshotRun(
        id=row["id"],
        tenant_id=row["tenant_id"],
        snapshot_date=row["snapshot_date"],
        generated_at=row["generated_at"],
        completeness=Completeness(row["completeness"]),
        source=row["source"],
        document=row["document"],
        snapshot_hash=row["snapshot_hash"],
    )


def _close(row: dict[str, Any]) -> DailyClose:
    return DailyClose(
        tenant_id=row["tenant_id"],
        close_date=row["close_date"],
        kind=CloseKind(row["kind"]),
        run_id=row["run_id"],
        closed_at=row["closed_at"],
        reason=row["reason"],
    )


_CLOSE_COLUMNS = "tenant_id, close_date, kind, run_id, closed_at, reason"


def _job(row: dict[str, Any]) -> JobRun:
    return JobRun(
        id=row["id"],
        job=row["job"],
        tenant_id=row["tenant_id"],
        status=JobStatus(row["status"]),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        error=row["error"],
        summary=row["summary"],
    )


class PostgresStateStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def save_run(self, run: SnapshotRun) -> None:
        try:
            async with self._db.connection() as conn:
                await conn.execute(
                    f"INSERT INTO snapshot_runs ({_RUN_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        run.id,
                        run.tenant_id,
                        run.snapshot_date,
                        run.generated_at,
                        run.completeness.value,
                        run.source,
                        Jsonb(run.document),
                        run.snapshot_hash,
                    ),
                )
        except psycopg.errors.UniqueViolation as err:
            raise Conflict(f"snapshot run {run.id} already exists; runs are immutable") from err
        except psycopg.Error as err:
            raise translate(err, "saving a snapshot run") from err

    async def _runs(self, query: str, params: tuple[Any, ...]) -> list[SnapshotRun]:
        try:
            async with self._db.connection() as conn:
                cursor = await conn.execute(query, params)
                return [_run(row) for row in await cursor.fetchall()]
        except psycopg.Error as err:
            raise translate(err, "reading snapshot runs") from err

    async def get_run(self, tenant_id: str, run_id: str) -> SnapshotRun | None:
        rows = await self._runs(
            f"SELECT {_RUN_COLUMNS} FROM snapshot_runs WHERE tenant_id = %s AND id = %s", (tenant_id, run_id)
        )
        return rows[0] if rows else None

    async def daily_snapshot(self, tenant_id: str, snapshot_date: date) -> SnapshotRun | None:
        rows = await self._runs(
            f"SELECT {_RUN_COLUMNS} FROM snapshot_runs WHERE tenant_id = %s AND snapshot_date = %s"
            " AND completeness = 'full' ORDER BY generated_at DESC, id DESC LIMIT 1",
            (tenant_id, snapshot_date),
        )
        return rows[0] if rows else None

    async def latest_snapshot(self, tenant_id: str) -> SnapshotRun | None:
        rows = await self._runs(
            f"SELECT {_RUN_COLUMNS} FROM snapshot_runs WHERE tenant_id = %s AND completeness = 'full'"
            " ORDER BY snapshot_date DESC, generated_at DESC, id DESC LIMIT 1",
            (tenant_id,),
        )
        return rows[0] if rows else None

    async def latest_snapshot_version(self, tenant_id: str) -> SnapshotVersion | None:
        # the same row as latest_snapshot, without the document (an index scan; nothing to decode), in one
        # round trip (issue 18: every latest-state request reads it; it was three — the pool's liveness
        # statement, the SELECT, the COMMIT)
        try:
            rows = await self._db.tenant_statement(
                tenant_id,
                f"SELECT {_VERSION_COLUMNS} FROM snapshot_runs WHERE tenant_id = %s AND completeness = 'full'"
                " ORDER BY snapshot_date DESC, generated_at DESC, id DESC LIMIT 1",
                (tenant_id,),
            )
        except psycopg.Error as err:
            raise translate(err, "reading the latest snapshot's version") from err
        row = rows[0] if rows else None
        if row is None:
            return None
        return SnapshotVersion(
            id=row["id"],
            tenant_id=row["tenant_id"],
            snapshot_date=row["snapshot_date"],
            generated_at=row["generated_at"],
            completeness=Completeness(row["completeness"]),
            source=row["source"],
            snapshot_hash=row["snapshot_hash"],
        )

    async def runs_for_date(self, tenant_id: str, snapshot_date: date) -> Sequence[SnapshotRun]:
        return await self._runs(
            f"SELECT {_RUN_COLUMNS} FROM snapshot_runs WHERE tenant_id = %s AND snapshot_date = %s"
            " ORDER BY generated_at, id",
            (tenant_id, snapshot_date),
        )

    async def history(self, tenant_id: str, start: date, end: date) -> Sequence[SnapshotRun]:
        return await self._runs(
            f"SELECT DISTINCT ON (snapshot_date) {_RUN_COLUMNS} FROM snapshot_runs"
            " WHERE tenant_id = %s AND snapshot_date BETWEEN %s AND %s AND completeness = 'full'"
            " ORDER BY snapshot_date, generated_at DESC, id DESC",
            (tenant_id, start, end),
        )

    async def save_diff(self, diff: SnapshotDiff) -> None:
        try:
            async with self._db.connection() as conn:
                await conn.execute(
                    "INSERT INTO snapshot_diffs (tenant_id, from_date, to_date, from_run_id, to_run_id, changes,"
                    " computed_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (tenant_id, from_date, to_date) DO UPDATE SET from_run_id = EXCLUDED.from_run_id,"
                    " to_run_id = EXCLUDED.to_run_id, changes = EXCLUDED.changes, computed_at = EXCLUDED.computed_at",
                    (
                        diff.tenant_id,
                        diff.from_date,
                        diff.to_date,
                        diff.from_run_id,
                        diff.to_run_id,
                        Jsonb(diff.changes),
                        diff.computed_at,
                    ),
                )
        except psycopg.Error as err:
            raise translate(err, "saving a diff") from err

    async def get_diff(self, tenant_id: str, from_date: date, to_date: date) -> SnapshotDiff | None:
        try:
            async with self._db.connection() as conn:
                cursor = await conn.execute(
                    "SELECT * FROM snapshot_diffs WHERE tenant_id = %s AND from_date = %s AND to_date = %s",
                    (tenant_id, from_date, to_date),
                )
                row = await cursor.fetchone()
        except psycopg.Error as err:
            raise translate(err, "reading a diff") from err
        if row is None:
            return None
        return SnapshotDiff(**row)

    async def record_close(self, close: DailyClose) -> DailyClose:
        try:
            async with self._db.connection() as conn:
                await conn.execute(
                    "SELECT set_config('studio_brain.tenant_id', %s, true)", (close.tenant_id,)
                )
                # DO NOTHING, then read back: the first close of a day wins, even against a concurrent one
                await conn.execute(
                    f"INSERT INTO daily_closes ({_CLOSE_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (tenant_id, close_date) DO NOTHING",
                    (
                        close.tenant_id,
                        close.close_date,
                        close.kind.value,
                        close.run_id,
                        close.closed_at,
                        close.reason,
                    ),
                )
                cursor = await conn.execute(
                    f"SELECT {_CLOSE_COLUMNS} FROM daily_closes WHERE tenant_id = %s AND close_date = %s",
                    (close.tenant_id, close.close_date),
                )
                row = await cursor.fetchone()
        except psycopg.Error as err:
            raise translate(err, "recording a daily close") from err
        assert row is not None  # just inserted or already there, in this transaction
        return _close(row)

    async def _closes(self, tenant_id: str, start: date, end: date) -> list[DailyClose]:
        try:
            async with self._db.connection() as conn:
                await conn.execute("SELECT set_config('studio_brain.tenant_id', %s, true)", (tenant_id,))
                cursor = await conn.execute(
                    f"SELECT {_CLOSE_COLUMNS} FROM daily_closes WHERE tenant_id = %s"
                    " AND close_date BETWEEN %s AND %s ORDER BY close_date",
                    (tenant_id, start, end),
                )
                return [_close(row) for row in await cursor.fetchall()]
        except psycopg.Error as err:
            raise translate(err, "reading daily closes") from err

    async def get_close(self, tenant_id: str, close_date: date) -> DailyClose | None:
        rows = await self._closes(tenant_id, close_date, close_date)
        return rows[0] if rows else None

    async def closes(self, tenant_id: str, start: date, end: date) -> Sequence[DailyClose]:
        return await self._closes(tenant_id, start, end)

    async def start_job(self, run: JobRun) -> None:
        try:
            async with self._db.connection() as conn:
                await conn.execute(
                    "INSERT INTO job_runs (id, job, tenant_id, status, started_at, finished_at, error, summary)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        run.id,
                        run.job,
                        run.tenant_id,
                        run.status.value,
                        run.started_at,
                        run.finished_at,
                        run.error,
                        Jsonb(run.summary),
                    ),
                )
        except psycopg.errors.UniqueViolation as err:
            raise Conflict(f"job run {run.id} already exists") from err
        except psycopg.Error as err:
            raise translate(err, "recording a job start") from err

    async def finish_job(self, run: JobRun) -> None:
        try:
            async with self._db.connection() as conn:
                cursor = await conn.execute(
                    "UPDATE job_runs SET status = %s, finished_at = %s, error = %s, summary = %s"
                    " WHERE id = %s AND tenant_id = %s",
                    (run.status.value, run.finished_at, run.error, Jsonb(run.summary), run.id, run.tenant_id),
                )
                if cursor.rowcount != 1:
                    raise Conflict(f"job run {run.id} was never started")
        except psycopg.Error as err:
            raise translate(err, "recording a job result") from err

    async def recent_jobs(
        self, tenant_id: str, *, job: str | None = None, limit: int = 50
    ) -> Sequence[JobRun]:
        try:
            async with self._db.connection() as conn:
                cursor = await conn.execute(
                    "SELECT * FROM job_runs WHERE tenant_id = %s AND (%s::text IS NULL OR job = %s)"
                    " ORDER BY started_at DESC, id DESC LIMIT %s",
                    (tenant_id, job, job, limit),
                )
                return [_job(row) for row in await cursor.fetchall()]
        except psycopg.Error as err:
            raise translate(err, "reading job runs") from err

    async def wipe(self, tenant_id: str) -> None:
        try:
            async with self._db.connection() as conn:
                await conn.execute("DELETE FROM snapshot_diffs WHERE tenant_id = %s", (tenant_id,))
                await conn.execute("DELETE FROM snapshot_runs WHERE tenant_id = %s", (tenant_id,))
        except psycopg.Error as err:
            raise translate(err, "wiping local state") from err
