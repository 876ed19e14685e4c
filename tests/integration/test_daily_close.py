"""The daily close is final (issue 14): a catch-up never re-closes yesterday from today's cloud data.

On real PostgreSQL with the demo studio, and with the official Firestore client against the emulator for
the ``read_time`` path (the emulator keeps versions about 7 days; a read older than that is refused).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from studio_brain.adapters.demo_source import DemoCloud
from studio_brain.adapters.firestore import FirestoreReader
from studio_brain.adapters.postgres.database import Database
from studio_brain.adapters.postgres.event_store import PostgresEventStore
from studio_brain.adapters.postgres.state_store import PostgresStateStore
from studio_brain.adapters.rule_files import load_rule_table
from studio_brain.domain.audit import AuditQuery
from studio_brain.domain.snapshot import diff_documents
from studio_brain.domain.state import CloseKind
from studio_brain.services.job_catalogue import daily_close_job
from studio_brain.services.jobs import JobContext
from studio_brain.services.state import CLOSED_ACTION, StateService
from tests.fakes import FakeClock, SequentialIds
from tests.fixtures.firestore import TEST_PROJECT, wipe_firestore

pytestmark = pytest.mark.postgres

PHOENIX = ZoneInfo("America/Phoenix")
TENANT = "monsoonfire-main"
#: 23:30 on the 24th in Phoenix (UTC-7)
LATE_EVENING_24TH = datetime(2026, 11, 25, 6, 30, tzinfo=UTC)
#: 09:00 on the 25th in Phoenix: the brain comes up long after the 00:05 close was due
MORNING_25TH = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)


def service_for(
    database: Database, clock: FakeClock, zone: object, sources: dict[str, object]
) -> StateService:
    return StateService(
        tenant_id=TENANT,
        table=load_rule_table(),
        store=PostgresStateStore(database),
        events=PostgresEventStore(database, SequentialIds("evt")),
        clock=clock,
        ids=SequentialIds("run"),
        zone=zone,  # type: ignore[arg-type]
        sources=sources,  # type: ignore[arg-type]
        default_source=next(iter(sources)),
    )


def catch_up(clock: FakeClock) -> JobContext:
    """What the scheduler passes a job it catches up at start: due now."""
    return JobContext(
        run_id=f"job-{clock.now().isoformat()}",
        trigger="catch_up",
        scheduled_for=clock.now(),
        started_at=clock.now(),
    )


async def test_a_catch_up_close_keeps_yesterdays_real_numbers_so_today_shows_the_true_changes(
    database: Database,
) -> None:
    clock = FakeClock(LATE_EVENING_24TH)
    demo = DemoCloud(seed=3, clock=clock, zone=PHOENIX)
    service = service_for(database, clock, PHOENIX, {"demo": demo})
    store = PostgresStateStore(database)
    evening = await service.compute()  # the last regular snapshot of the 24th
    assert evening.snapshot_date == date(2026, 11, 24)

    clock.set(MORNING_25TH)  # down at 00:05; the scheduler catches the close up at start
    await daily_close_job(service, PHOENIX)(catch_up(clock))
    today = await service.compute()

    assert await store.daily_snapshot(TENANT, date(2026, 11, 24)) == evening, (
        "the 24th must keep its own numbers, not this morning's"
    )
    changes = (await service.diff(date(2026, 11, 24), date(2026, 11, 25))).changes
    assert changes, "the demo studio moved overnight: 'no change' here is the bug"
    since = await service.since_yesterday()
    assert since.baseline == evening
    assert since.changes == diff_documents(evening.document, today.document) == changes
    close = await service.close_of(date(2026, 11, 24))
    assert close is not None
    assert (close.kind, close.run_id) == (CloseKind.LATE, evening.id)
    assert "missed midnight by 9 h" in close.reason
    assert "(late)" in since.basis


async def test_a_close_is_final_a_second_run_reports_it_and_replaces_nothing(database: Database) -> None:
    clock = FakeClock(datetime(2026, 11, 25, 7, 5, tzinfo=UTC))  # 00:05 on the 25th in Phoenix
    demo = DemoCloud(seed=3, clock=clock, zone=PHOENIX)
    service = service_for(database, clock, PHOENIX, {"demo": demo})
    job = daily_close_job(service, PHOENIX)

    first = await job(catch_up(clock))
    clock.advance(3 * 3600)
    second = await job(catch_up(clock))

    assert first["kind"] == CloseKind.ON_TIME.value
    assert second["runId"] == first["runId"]
    assert second["alreadyClosed"] is True
    runs = await PostgresStateStore(database).runs_for_date(TENANT, date(2026, 11, 24))
    assert [r.id for r in runs] == [first["runId"]], "the second run computed nothing"
    events = await PostgresEventStore(database, SequentialIds("q")).query(
        TENANT, AuditQuery(action_prefix=CLOSED_ACTION)
    )
    assert [e.metadata["kind"] for e in events.events] == ["on_time"]


async def test_a_missed_day_without_any_snapshot_is_not_closed_and_never_filled_with_later_data(
    database: Database,
) -> None:
    clock = FakeClock(MORNING_25TH)
    demo = DemoCloud(seed=3, clock=clock, zone=PHOENIX)
    service = service_for(database, clock, PHOENIX, {"demo": demo})

    summary = await daily_close_job(service, PHOENIX)(catch_up(clock))

    assert summary["kind"] == CloseKind.NOT_CLOSED.value
    assert summary["runId"] is None
    assert await PostgresStateStore(database).runs_for_date(TENANT, date(2026, 11, 24)) == []
    await service.compute()
    since = await service.since_yesterday()
    assert since.baseline is None
    assert since.changes == {}
    assert "was not closed" in since.basis


async def test_closing_a_day_that_is_not_over_is_refused(database: Database) -> None:
    from studio_brain.domain.errors import InputInvalid

    clock = FakeClock(LATE_EVENING_24TH)
    service = service_for(database, clock, PHOENIX, {"demo": DemoCloud(seed=3, clock=clock, zone=PHOENIX)})
    with pytest.raises(InputInvalid, match="not over yet"):
        await service.close_day(date(2026, 11, 24))


# --- Firestore read_time against the emulator ---------------------------------------------------------


@pytest.fixture
def emulator(firestore_emulator_host: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator_host)
    wipe_firestore(firestore_emulator_host)
    yield firestore_emulator_host
    wipe_firestore(firestore_emulator_host)


async def add_batches(ids: range) -> None:
    from google.cloud import firestore

    client = firestore.AsyncClient(project=TEST_PROJECT)
    try:
        batch = client.batch()
        for i in ids:
            batch.set(client.collection("batches").document(f"b{i}"), {"state": "DRAFT", "isClosed": False})
        await batch.commit()
    finally:
        await client._transport.close()


def zone_with_midnight_at(instant: datetime) -> timezone:
    """A fixed-offset zone in which ``instant`` is exactly local midnight (so a day ends 'now')."""
    since_utc_midnight = instant - instant.replace(hour=0, minute=0, second=0, microsecond=0)
    offset = -since_utc_midnight
    if offset <= timedelta(hours=-12):
        offset += timedelta(days=1)
    return timezone(offset)


@pytest.mark.firestore
async def test_a_late_close_reads_the_day_boundary_with_read_time_on_the_emulator(
    database: Database, emulator: str
) -> None:
    await add_batches(range(3))
    await asyncio.sleep(0.5)
    boundary = datetime.now(UTC)
    await asyncio.sleep(0.5)
    await add_batches(range(3, 10))  # after midnight: must not count in the closed day
    zone = zone_with_midnight_at(boundary)
    clock = FakeClock(boundary + timedelta(minutes=40))  # past the 30-minute grace, within 1 h of versions
    firestore = FirestoreReader(project_id=TEST_PROJECT, clock=clock, retry_wait_seconds=0.01)
    service = service_for(database, clock, zone, {"firestore": firestore})
    day = (boundary.astimezone(zone) - timedelta(seconds=1)).date()

    close = await service.close_day(day)

    assert close.kind is CloseKind.READ_TIME
    run = await PostgresStateStore(database).get_run(TENANT, close.run_id or "")
    assert run is not None
    assert run.snapshot_date == day
    assert run.document["counts"]["batchesActive"] == 3, "read as of midnight, not now (10)"
    assert (await firestore.read(load_rule_table())).totals[0].count is not None


@pytest.mark.firestore
async def test_past_the_version_retention_the_close_does_not_read_the_cloud_at_all(
    database: Database, emulator: str
) -> None:
    await add_batches(range(4))
    boundary = datetime.now(UTC)
    zone = zone_with_midnight_at(boundary)
    clock = FakeClock(boundary + timedelta(hours=2))
    firestore = FirestoreReader(project_id=TEST_PROJECT, clock=clock)
    service = service_for(database, clock, zone, {"firestore": firestore})
    day = (boundary.astimezone(zone) - timedelta(seconds=1)).date()

    close = await service.close_day(day)

    assert close.kind is CloseKind.NOT_CLOSED
    assert await PostgresStateStore(database).runs_for_date(TENANT, day) == []


@pytest.mark.firestore
async def test_the_emulator_refuses_a_read_time_older_than_its_version_retention(emulator: str) -> None:
    from studio_brain.domain.errors import CloudReadError

    firestore = FirestoreReader(project_id=TEST_PROJECT, clock=FakeClock(), retry_wait_seconds=0.01)
    with pytest.raises(CloudReadError, match="too old"):
        await firestore.read_as_of(load_rule_table(), datetime.now(UTC) - timedelta(days=8))


async def test_a_rebuild_puts_a_lost_close_back_from_the_audit_log_and_keeps_an_existing_one(
    database: Database,
) -> None:
    from studio_brain.services.rebuild import RebuildService

    clock = FakeClock(LATE_EVENING_24TH)
    demo = DemoCloud(seed=3, clock=clock, zone=PHOENIX)
    service = service_for(database, clock, PHOENIX, {"demo": demo})
    evening = await service.compute()
    clock.set(MORNING_25TH)
    close = await service.close_day(date(2026, 11, 24))
    events = PostgresEventStore(database, SequentialIds("r"))
    async with database.connection() as conn:
        await conn.execute("SELECT set_config('studio_brain.tenant_id', %s, true)", (TENANT,))
        await conn.execute("DELETE FROM daily_closes")

    report = await RebuildService(state=service, store=PostgresStateStore(database), events=events).rebuild()

    assert report.closes_restored == 1
    back = await service.close_of(date(2026, 11, 24))
    assert back is not None
    assert (back.kind, back.run_id, back.reason) == (CloseKind.LATE, evening.id, close.reason)
    again = await RebuildService(state=service, store=PostgresStateStore(database), events=events).rebuild()
    assert again.closes_restored == 0, "the close in the store stands"
