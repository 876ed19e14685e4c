"""The StateStore contract; every implementation subclasses StateStoreContract and provides ``store``:
PostgreSQL and the in-memory store (``adapters/memory/state_store.py``)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from studio_brain.adapters.memory.state_store import InMemoryStateStore
from studio_brain.adapters.postgres.database import Database
from studio_brain.adapters.postgres.state_store import PostgresStateStore
from studio_brain.domain.errors import Conflict
from studio_brain.domain.hashing import sha256_hex
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
from studio_brain.ports import StateStore

T = "tenant-a"
NOON = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def run(
    run_id: str, day: date, *, hour: int = 12, complete: bool = True, tenant: str = T, n: int = 1
) -> SnapshotRun:
    document = {"snapshotDate": day.isoformat(), "counts": {"batchesActive": n}}
    return SnapshotRun(
        id=run_id,
        tenant_id=tenant,
        snapshot_date=day,
        generated_at=datetime(day.year, day.month, day.day, hour, tzinfo=UTC),
        completeness=Completeness.FULL if complete else Completeness.PARTIAL,
        source="demo",
        document=document,
        snapshot_hash=sha256_hex(document),
    )


def close(
    day: date,
    *,
    tenant: str = T,
    kind: CloseKind = CloseKind.ON_TIME,
    run_id: str | None = "r-close",
    reason: str = "read just after midnight",
) -> DailyClose:
    return DailyClose(
        tenant_id=tenant, close_date=day, kind=kind, run_id=run_id, closed_at=NOON, reason=reason
    )


class StateStoreContract:
    async def test_a_saved_run_reads_back_unchanged(self, store: StateStore) -> None:
        saved = run("r1", date(2026, 11, 20))
        await store.save_run(saved)
        assert await store.get_run(T, "r1") == saved

    async def test_runs_are_immutable(self, store: StateStore) -> None:
        await store.save_run(run("r1", date(2026, 11, 20)))
        with pytest.raises(Conflict):
            await store.save_run(run("r1", date(2026, 11, 20), n=2))

    async def test_the_daily_snapshot_is_the_latest_complete_run_of_the_day(self, store: StateStore) -> None:
        day = date(2026, 11, 20)
        await store.save_run(run("morning", day, hour=8, n=1))
        await store.save_run(run("evening", day, hour=20, n=2))
        await store.save_run(run("late-partial", day, hour=23, complete=False, n=3))
        daily = await store.daily_snapshot(T, day)
        assert daily is not None
        assert daily.id == "evening"
        assert [r.id for r in await store.runs_for_date(T, day)] == ["morning", "evening", "late-partial"]

    async def test_a_day_with_only_partial_runs_has_no_daily_snapshot(self, store: StateStore) -> None:
        await store.save_run(run("p", date(2026, 11, 20), complete=False))
        assert await store.daily_snapshot(T, date(2026, 11, 20)) is None
        assert await store.latest_snapshot(T) is None

    async def test_latest_snapshot_is_the_newest_day_and_tenants_do_not_mix(self, store: StateStore) -> None:
        await store.save_run(run("d1", date(2026, 11, 19)))
        await store.save_run(run("d2", date(2026, 11, 20)))
        await store.save_run(run("other", date(2026, 11, 21), tenant="tenant-b"))
        latest = await store.latest_snapshot(T)
        assert latest is not None
        assert latest.id == "d2"
        assert await store.get_run(T, "other") is None

    async def test_the_latest_snapshot_version_names_the_latest_snapshot(self, store: StateStore) -> None:
        assert await store.latest_snapshot_version(T) is None
        day = date(2026, 11, 20)
        await store.save_run(run("d1", day - timedelta(days=1), hour=23))
        await store.save_run(run("morning", day, hour=8, n=1))
        await store.save_run(run("evening", day, hour=20, n=2))
        await store.save_run(run("late-partial", day, hour=23, complete=False, n=3))
        await store.save_run(run("other", day + timedelta(days=1), tenant="tenant-b"))
        latest = await store.latest_snapshot(T)
        assert latest is not None
        assert latest.id == "evening"
        assert await store.latest_snapshot_version(T) == SnapshotVersion.of(latest)
        theirs = await store.latest_snapshot_version("tenant-b")
        assert theirs is not None
        assert theirs.id == "other"

    async def test_history_gives_one_daily_snapshot_per_date_in_range(self, store: StateStore) -> None:
        start = date(2026, 11, 1)
        for i in range(10):
            day = start + timedelta(days=i)
            await store.save_run(run(f"a{i}", day, hour=6))
            await store.save_run(run(f"b{i}", day, hour=18))
        history = await store.history(T, date(2026, 11, 3), date(2026, 11, 6))
        assert [r.id for r in history] == ["b2", "b3", "b4", "b5"]

    async def test_one_diff_per_day_pair_and_saving_again_replaces_it(self, store: StateStore) -> None:
        d1, d2 = date(2026, 11, 19), date(2026, 11, 20)
        first = SnapshotDiff(
            tenant_id=T,
            from_date=d1,
            to_date=d2,
            from_run_id="a",
            to_run_id="b",
            changes={"counts.batchesActive": {"from": 1, "to": 2}},
            computed_at=NOON,
        )
        await store.save_diff(first)
        second = SnapshotDiff(
            tenant_id=T,
            from_date=d1,
            to_date=d2,
            from_run_id="a",
            to_run_id="c",
            changes={},
            computed_at=NOON + timedelta(hours=1),
        )
        await store.save_diff(second)
        assert await store.get_diff(T, d1, d2) == second
        assert await store.get_diff(T, d2, d1) is None

    async def test_job_runs_record_start_and_result_newest_first(self, store: StateStore) -> None:
        started = JobRun(id="j1", job="snapshot", tenant_id=T, status=JobStatus.RUNNING, started_at=NOON)
        await store.start_job(started)
        await store.start_job(
            JobRun(
                id="j2",
                job="health",
                tenant_id=T,
                status=JobStatus.RUNNING,
                started_at=NOON + timedelta(minutes=1),
            )
        )
        finished = JobRun(
            id="j1",
            job="snapshot",
            tenant_id=T,
            status=JobStatus.FAILED,
            started_at=NOON,
            finished_at=NOON + timedelta(seconds=3),
            error="emulator down",
            summary={"tries": 2},
        )
        await store.finish_job(finished)
        jobs = await store.recent_jobs(T)
        assert [j.id for j in jobs] == ["j2", "j1"]
        assert jobs[1] == finished
        assert jobs[1].duration_ms == 3000.0
        assert [j.id for j in await store.recent_jobs(T, job="snapshot")] == ["j1"]

    async def test_finishing_a_job_that_never_started_is_a_conflict(self, store: StateStore) -> None:
        with pytest.raises(Conflict):
            await store.finish_job(
                JobRun(
                    id="ghost",
                    job="x",
                    tenant_id=T,
                    status=JobStatus.SUCCEEDED,
                    started_at=NOON,
                    finished_at=NOON,
                )
            )

    async def test_wipe_removes_one_tenants_snapshots_and_diffs_and_keeps_job_runs_and_closes(
        self, store: StateStore
    ) -> None:
        d1, d2 = date(2026, 11, 19), date(2026, 11, 20)
        for tenant, suffix in ((T, "mine"), ("tenant-b", "theirs")):
            await store.save_run(run(f"{suffix}-1", d1, tenant=tenant))
            await store.save_run(run(f"{suffix}-2", d2, tenant=tenant))
            await store.save_diff(
                SnapshotDiff(
                    tenant_id=tenant,
                    from_date=d1,
                    to_date=d2,
                    from_run_id=f"{suffix}-1",
                    to_run_id=f"{suffix}-2",
                    changes={"counts.batchesActive": {"from": 1, "to": 1}},
                    computed_at=NOON,
                )
            )
        await store.start_job(
            JobRun(id="j1", job="snapshot", tenant_id=T, status=JobStatus.RUNNING, started_at=NOON)
        )
        await store.record_close(close(d1))
        assert await store.get_diff(T, d1, d2) is not None
        await store.wipe(T)
        assert await store.latest_snapshot(T) is None
        assert await store.runs_for_date(T, d1) == []
        assert await store.get_diff(T, d1, d2) is None
        assert [j.id for j in await store.recent_jobs(T)] == ["j1"]
        assert await store.get_close(T, d1) == close(d1)
        theirs = await store.latest_snapshot("tenant-b")
        assert theirs is not None
        assert theirs.id == "theirs-2"
        assert await store.get_diff("tenant-b", d1, d2) is not None

    async def test_the_first_close_of_a_day_is_final(self, store: StateStore) -> None:
        day = date(2026, 11, 19)
        first = await store.record_close(close(day))
        assert first == close(day)
        late = close(day, kind=CloseKind.READ_TIME, run_id="r-late", reason="a second try")
        assert await store.record_close(late) == close(day)
        assert await store.get_close(T, day) == close(day)
        assert await store.get_close("tenant-b", day) is None

    async def test_closes_list_the_days_in_range_oldest_first(self, store: StateStore) -> None:
        days = [date(2026, 11, d) for d in (21, 19, 20, 23)]
        for day in days:
            await store.record_close(close(day))
        await store.record_close(close(date(2026, 11, 20), tenant="tenant-b"))
        listed = await store.closes(T, date(2026, 11, 19), date(2026, 11, 21))
        assert [c.close_date.day for c in listed] == [19, 20, 21]
        assert await store.get_close(T, date(2026, 11, 22)) is None

    async def test_changing_a_saved_or_read_document_changes_nothing_stored(self, store: StateStore) -> None:
        saved = run("r1", date(2026, 11, 20))
        await store.save_run(saved)
        saved.document["counts"]["batchesActive"] = 99
        read = await store.get_run(T, "r1")
        assert read is not None
        assert read.document["counts"]["batchesActive"] == 1
        read.document["counts"]["batchesActive"] = 42
        again = await store.get_run(T, "r1")
        assert again is not None
        assert again.document["counts"]["batchesActive"] == 1


@pytest.mark.postgres
class TestPostgresStateStore(StateStoreContract):
    @pytest.fixture
    def store(self, database: Database) -> PostgresStateStore:
        return PostgresStateStore(database)


class TestInMemoryStateStore(StateStoreContract):
    @pytest.fixture
    def store(self) -> InMemoryStateStore:
        return InMemoryStateStore()
