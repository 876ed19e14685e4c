"""StateService on real PostgreSQL and the real audit log: runs, daily close, diffs, history, demo backfill."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from studio_brain.adapters.demo_source import DemoCloud
from studio_brain.adapters.firestore import FirestoreReader
from studio_brain.adapters.postgres.database import Database
from studio_brain.adapters.postgres.event_store import PostgresEventStore
from studio_brain.adapters.postgres.state_store import PostgresStateStore
from studio_brain.adapters.rule_files import load_rule_table
from studio_brain.domain.audit import ActorType, AuditQuery
from studio_brain.domain.errors import CloudReadError, InputInvalid, NotFound
from studio_brain.domain.rules import RuleTable
from studio_brain.domain.snapshot import CloudRead, QueryStatus
from studio_brain.domain.state import Completeness
from studio_brain.ports import CloudReader
from studio_brain.services.state import COMPUTED_ACTION, StateService
from tests.fakes import FakeClock, SequentialIds

pytestmark = pytest.mark.postgres

PHOENIX = ZoneInfo("America/Phoenix")
TENANT = "monsoonfire-main"
NOON_25TH = datetime(2026, 11, 25, 19, 0, tzinfo=UTC)


class DegradedReader:
    """The demo source with one collection's queries failing, as a broken Firestore read would report it."""

    source = "firestore"

    def __init__(self, inner: DemoCloud, failing: str) -> None:
        self._inner = inner
        self._failing = failing

    async def read(self, table: RuleTable) -> CloudRead:
        read = await self._inner.read(table)

        def degrade(results: Any) -> tuple[Any, ...]:
            return tuple(
                dataclasses.replace(r, count=None, status=QueryStatus.FAILED, error="unreachable: x")
                if r.collection == self._failing
                else r
                for r in results
            )

        return dataclasses.replace(
            read, source=self.source, rule_counts=degrade(read.rule_counts), totals=degrade(read.totals)
        )


@dataclasses.dataclass
class World:
    service: StateService
    store: PostgresStateStore
    events: PostgresEventStore
    clock: FakeClock
    demo: DemoCloud
    table: RuleTable


@pytest.fixture
def world(database: Database) -> World:
    clock = FakeClock(NOON_25TH)
    ids = SequentialIds("run")
    store = PostgresStateStore(database)
    events = PostgresEventStore(database, SequentialIds("evt"))
    demo = DemoCloud(seed=3, clock=clock, zone=PHOENIX)
    table = load_rule_table()
    service = StateService(
        tenant_id=TENANT,
        table=table,
        store=store,
        events=events,
        clock=clock,
        ids=ids,
        zone=PHOENIX,
        sources={"demo": demo, "degraded": DegradedReader(demo, "communityReports")},
        default_source="demo",
    )
    return World(service=service, store=store, events=events, clock=clock, demo=demo, table=table)


async def test_a_computation_is_stored_as_the_days_snapshot_and_audited(world: World) -> None:
    run = await world.service.compute()

    assert run.completeness is Completeness.FULL
    assert run.snapshot_date == date(2026, 11, 25)
    assert await world.store.daily_snapshot(TENANT, date(2026, 11, 25)) == run
    page = await world.events.query(TENANT, AuditQuery(action_prefix=COMPUTED_ACTION))
    [event] = page.events
    assert event.actor_type is ActorType.SYSTEM
    assert event.input_hash == world.table.hash
    assert event.output_hash == run.snapshot_hash
    assert event.metadata["document"] == run.document
    assert event.metadata["ruleTable"] == world.table.definition()


async def test_a_partial_run_is_stored_as_partial_and_never_becomes_the_days_snapshot(world: World) -> None:
    full = await world.service.compute()
    world.clock.advance(3600)

    partial = await world.service.compute("degraded")

    assert partial.completeness is Completeness.PARTIAL
    assert partial.document["counts"]["reportsOpen"] is None
    assert partial.document["diagnostics"]["failedCollections"] == ["communityReports"]
    assert await world.store.daily_snapshot(TENANT, date(2026, 11, 25)) == full
    assert [r.id for r in await world.store.runs_for_date(TENANT, date(2026, 11, 25))] == [
        full.id,
        partial.id,
    ]


async def test_an_unreachable_source_stores_nothing_and_audits_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:1")
    dead = FirestoreReader(project_id="p", clock=world.clock, attempts=1)

    with pytest.raises(CloudReadError, match="does not answer"):
        await world.service.compute(reader=dead)

    assert await world.store.runs_for_date(TENANT, date(2026, 11, 25)) == []
    assert (await world.events.query(TENANT, AuditQuery())).events == []


async def test_consecutive_daily_snapshots_get_a_key_level_diff(world: World) -> None:
    yesterday = await world.service.compute(
        reader=world.demo.at(date(2026, 11, 24)), at=NOON_25TH - timedelta(days=1)
    )
    today = await world.service.compute()

    diff = await world.store.get_diff(TENANT, date(2026, 11, 24), date(2026, 11, 25))

    assert diff is not None
    assert (diff.from_run_id, diff.to_run_id) == (yesterday.id, today.id)
    assert diff.changes, "the demo studio moves from one day to the next"
    for key, change in diff.changes.items():
        section, name = key.split(".")
        assert change == {"from": yesterday.document[section][name], "to": today.document[section][name]}


async def test_a_later_complete_run_of_the_same_day_replaces_the_diff(world: World) -> None:
    await world.service.compute(reader=world.demo.at(date(2026, 11, 24)), at=NOON_25TH - timedelta(days=1))
    await world.service.compute()
    world.clock.advance(600)
    again = await world.service.compute()

    diff = await world.service.diff(date(2026, 11, 24), date(2026, 11, 25))

    assert diff.to_run_id == again.id


async def test_show_and_diff_explain_a_missing_day_and_refuse_a_backwards_range(world: World) -> None:
    with pytest.raises(NotFound, match="no complete snapshot yet"):
        await world.service.show()
    await world.service.compute()
    with pytest.raises(NotFound, match="2026-11-20"):
        await world.service.show(date(2026, 11, 20))
    with pytest.raises(InputInvalid, match="must be before"):
        await world.service.diff(date(2026, 11, 25), date(2026, 11, 24))


async def test_the_demo_backfill_reads_each_day_once_and_a_second_backfill_reads_nothing(
    world: World,
) -> None:
    # how long the backfill takes is measured in bench/, not asserted here (a shared machine)
    asked: list[date] = []

    def reader_for(day: date) -> CloudReader:
        asked.append(day)
        return world.demo.at(day)

    computed = await world.service.backfill(60, reader_for)
    assert len(computed) == 61
    assert asked == [date(2026, 11, 25) - timedelta(days=d) for d in range(60, -1, -1)]
    assert await world.service.backfill(60, reader_for) == []
    assert len(asked) == 61, "days that have a snapshot are not read again"
    history = await world.service.history(61)
    assert [r.snapshot_date for r in history] == [
        date(2026, 11, 25) - timedelta(days=d) for d in range(60, -1, -1)
    ]
    assert all(r.generated_at <= world.clock.now() for r in history)
    diff = await world.store.get_diff(TENANT, date(2026, 11, 1), date(2026, 11, 2))
    assert diff is not None

    assert await world.service.backfill(60, world.demo.at) == [], "a restart computes nothing again"


async def test_history_is_any_date_range_oldest_first(world: World) -> None:
    await world.service.backfill(9, world.demo.at)

    week = await world.service.history(7)

    assert [r.snapshot_date for r in week] == [date(2026, 11, 19) + timedelta(days=d) for d in range(7)]
    with pytest.raises(InputInvalid):
        await world.service.history(0)
