"""StateStore in memory: immutable snapshot runs, one diff per day pair, final daily closes and job runs,
with the same ordering and conflict rules as PostgreSQL. Passes ``tests/contract/test_state_store.py``.

Values are copied on the way in and out (documents, changes and summaries are dicts), so a caller
changing what it saved or read changes nothing stored — as with a database."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace
from datetime import date

from studio_brain.domain.errors import Conflict
from studio_brain.domain.state import (
    Completeness,
    DailyClose,
    JobRun,
    SnapshotDiff,
    SnapshotRun,
    SnapshotVersion,
)


class InMemoryStateStore:
    def __init__(self) -> None:
        self._runs: dict[tuple[str, str], SnapshotRun] = {}
        self._diffs: dict[tuple[str, date, date], SnapshotDiff] = {}
        self._closes: dict[tuple[str, date], DailyClose] = {}
        self._jobs: dict[tuple[str, str], JobRun] = {}

    # --- snapshot runs ---------------------------------------------------------------------------------

    async def save_run(self, run: SnapshotRun) -> None:
        # the id is the table's primary key: unique across tenants
        if any(run_id == run.id for _, run_id in self._runs):
            raise Conflict(f"snapshot run {run.id} already exists; runs are immutable")
        self._runs[(run.tenant_id, run.id)] = copy.deepcopy(run)

    def _of(self, tenant_id: str) -> list[SnapshotRun]:
        return [copy.deepcopy(r) for (tenant, _), r in self._runs.items() if tenant == tenant_id]

    async def get_run(self, tenant_id: str, run_id: str) -> SnapshotRun | None:
        run = self._runs.get((tenant_id, run_id))
        return None if run is None else copy.deepcopy(run)

    @staticmethod
    def _newest(runs: list[SnapshotRun]) -> SnapshotRun | None:
        return max(runs, key=lambda r: (r.generated_at, r.id), default=None)

    async def daily_snapshot(self, tenant_id: str, snapshot_date: date) -> SnapshotRun | None:
        return self._newest(
            [
                r
                for r in self._of(tenant_id)
                if r.snapshot_date == snapshot_date and r.completeness is Completeness.FULL
            ]
        )

    async def latest_snapshot(self, tenant_id: str) -> SnapshotRun | None:
        full = [r for r in self._of(tenant_id) if r.completeness is Completeness.FULL]
        return max(full, key=lambda r: (r.snapshot_date, r.generated_at, r.id), default=None)

    async def latest_snapshot_version(self, tenant_id: str) -> SnapshotVersion | None:
        latest = await self.latest_snapshot(tenant_id)
        return None if latest is None else SnapshotVersion.of(latest)

    async def runs_for_date(self, tenant_id: str, snapshot_date: date) -> Sequence[SnapshotRun]:
        runs = [r for r in self._of(tenant_id) if r.snapshot_date == snapshot_date]
        return sorted(runs, key=lambda r: (r.generated_at, r.id))

    async def history(self, tenant_id: str, start: date, end: date) -> Sequence[SnapshotRun]:
        by_day: dict[date, list[SnapshotRun]] = {}
        for r in self._of(tenant_id):
            if start <= r.snapshot_date <= end and r.completeness is Completeness.FULL:
                by_day.setdefault(r.snapshot_date, []).append(r)
        return [run for day in sorted(by_day) if (run := self._newest(by_day[day])) is not None]

    # --- diffs -----------------------------------------------------------------------------------------

    async def save_diff(self, diff: SnapshotDiff) -> None:
        self._diffs[(diff.tenant_id, diff.from_date, diff.to_date)] = copy.deepcopy(diff)

    async def get_diff(self, tenant_id: str, from_date: date, to_date: date) -> SnapshotDiff | None:
        diff = self._diffs.get((tenant_id, from_date, to_date))
        return None if diff is None else copy.deepcopy(diff)

    # --- daily closes ----------------------------------------------------------------------------------

    async def record_close(self, close: DailyClose) -> DailyClose:
        # the first close of a day wins (closes are final)
        return self._closes.setdefault((close.tenant_id, close.close_date), close)

    async def get_close(self, tenant_id: str, close_date: date) -> DailyClose | None:
        return self._closes.get((tenant_id, close_date))

    async def closes(self, tenant_id: str, start: date, end: date) -> Sequence[DailyClose]:
        return sorted(
            (c for (tenant, day), c in self._closes.items() if tenant == tenant_id and start <= day <= end),
            key=lambda c: c.close_date,
        )

    # --- job runs --------------------------------------------------------------------------------------

    async def start_job(self, run: JobRun) -> None:
        if any(run_id == run.id for _, run_id in self._jobs):
            raise Conflict(f"job run {run.id} already exists")
        self._jobs[(run.tenant_id, run.id)] = copy.deepcopy(run)

    async def finish_job(self, run: JobRun) -> None:
        started = self._jobs.get((run.tenant_id, run.id))
        if started is None:
            raise Conflict(f"job run {run.id} was never started")
        self._jobs[(run.tenant_id, run.id)] = replace(
            started,
            status=run.status,
            finished_at=run.finished_at,
            error=run.error,
            summary=copy.deepcopy(run.summary),
        )

    async def recent_jobs(
        self, tenant_id: str, *, job: str | None = None, limit: int = 50
    ) -> Sequence[JobRun]:
        runs = [
            copy.deepcopy(r)
            for (tenant, _), r in self._jobs.items()
            if tenant == tenant_id and (job is None or r.job == job)
        ]
        runs.sort(key=lambda r: (r.started_at, r.id), reverse=True)
        return runs[:limit]

    # --- rebuild ---------------------------------------------------------------------------------------

    async def wipe(self, tenant_id: str) -> None:
        self._runs = {k: v for k, v in self._runs.items() if k[0] != tenant_id}
        self._diffs = {k: v for k, v in self._diffs.items() if k[0] != tenant_id}
