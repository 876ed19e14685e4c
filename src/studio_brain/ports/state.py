"""StateStore: snapshot runs, daily diffs and job runs (seed §6)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Protocol

from studio_brain.domain.state import DailyClose, JobRun, SnapshotDiff, SnapshotRun, SnapshotVersion


class StateStore(Protocol):
    async def save_run(self, run: SnapshotRun) -> None:
        """Store one snapshot run. Runs are immutable: saving an existing id raises Conflict."""
        ...

    async def get_run(self, tenant_id: str, run_id: str) -> SnapshotRun | None: ...

    async def daily_snapshot(self, tenant_id: str, snapshot_date: date) -> SnapshotRun | None:
        """The day's snapshot: the latest *complete* run of that date, or None."""
        ...

    async def latest_snapshot(self, tenant_id: str) -> SnapshotRun | None:
        """The newest complete run of the newest date that has one."""
        ...

    async def latest_snapshot_version(self, tenant_id: str) -> SnapshotVersion | None:
        """The version (id and hash) of what ``latest_snapshot`` returns, without its document: the cheap
        check a cached copy of the latest snapshot is revalidated with (issue 18)."""
        ...

    async def runs_for_date(self, tenant_id: str, snapshot_date: date) -> Sequence[SnapshotRun]:
        """Every run of that date (complete and partial), oldest first."""
        ...

    async def history(self, tenant_id: str, start: date, end: date) -> Sequence[SnapshotRun]:
        """Daily snapshots for each date in [start, end] that has one, oldest first."""
        ...

    async def save_diff(self, diff: SnapshotDiff) -> None:
        """Store a diff; one per (tenant, from, to) — saving again replaces it."""
        ...

    async def get_diff(self, tenant_id: str, from_date: date, to_date: date) -> SnapshotDiff | None: ...

    async def record_close(self, close: DailyClose) -> DailyClose:
        """Store a day's close unless one exists; returns the stored close (closes are final)."""
        ...

    async def get_close(self, tenant_id: str, close_date: date) -> DailyClose | None: ...

    async def closes(self, tenant_id: str, start: date, end: date) -> Sequence[DailyClose]:
        """The closes recorded for dates in [start, end], oldest first."""
        ...

    async def start_job(self, run: JobRun) -> None: ...

    async def finish_job(self, run: JobRun) -> None:
        """Record the final status, end time, error and summary of a started job run."""
        ...

    async def recent_jobs(
        self, tenant_id: str, *, job: str | None = None, limit: int = 50
    ) -> Sequence[JobRun]:
        """Newest first."""
        ...

    async def wipe(self, tenant_id: str) -> None:
        """Delete the tenant's snapshots and diffs (used by ``rebuild``; job runs are kept)."""
        ...
