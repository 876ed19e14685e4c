"""Rebuild (seed §6): wipe the local state, replay the audit log, take a fresh read — and get it all back."""

from __future__ import annotations

import dataclasses
from datetime import date
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from studio_brain.adapters.demo_source import DemoCloud
from studio_brain.adapters.postgres.database import Database
from studio_brain.adapters.postgres.event_store import PostgresEventStore
from studio_brain.adapters.postgres.state_store import PostgresStateStore
from studio_brain.adapters.rule_files import load_rule_table
from studio_brain.domain.audit import AuditQuery
from studio_brain.domain.state import SnapshotRun
from studio_brain.services.rebuild import RebuildService, run_from_event
from studio_brain.services.state import COMPUTED_ACTION, StateService
from tests.fakes import FakeClock, SequentialIds
from tests.integration.test_state_service import NOON_25TH, TENANT, DegradedReader

pytestmark = pytest.mark.postgres

PHOENIX = ZoneInfo("America/Phoenix")


@pytest.fixture
def parts(database: Database) -> tuple[StateService, RebuildService, PostgresStateStore, PostgresEventStore]:
    clock = FakeClock(NOON_25TH)
    store = PostgresStateStore(database)
    events = PostgresEventStore(database, SequentialIds("evt"))
    demo = DemoCloud(seed=11, clock=clock, zone=PHOENIX)
    service = StateService(
        tenant_id=TENANT,
        table=load_rule_table(),
        store=store,
        events=events,
        clock=clock,
        ids=SequentialIds("run"),
        zone=PHOENIX,
        sources={"demo": demo, "degraded": DegradedReader(demo, "payments")},
        default_source="demo",
    )
    return service, RebuildService(state=service, store=store, events=events), store, events


async def _everything(store: PostgresStateStore, days: list[date]) -> dict[str, Any]:
    runs: list[SnapshotRun] = []
    diffs = []
    for day in days:
        runs.extend(await store.runs_for_date(TENANT, day))
    for older, newer in pairwise(days):
        diff = await store.get_diff(TENANT, older, newer)
        diffs.append(None if diff is None else (diff.from_run_id, diff.to_run_id, diff.changes))
    return {"runs": runs, "diffs": diffs}


async def test_wiping_and_rebuilding_restores_every_run_and_diff(parts: Any) -> None:
    service, rebuild, store, _ = parts
    await service.backfill(7, service.source("demo").at)  # type: ignore[attr-defined]
    await service.compute("degraded")
    days = [date(2026, 11, 18 + d) for d in range(8)]
    before = await _everything(store, days)
    assert len(before["runs"]) == 9
    assert all(before["diffs"])

    await store.wipe(TENANT)
    assert (await _everything(store, days))["runs"] == []
    report = await rebuild.rebuild()

    assert (report.events_replayed, report.runs_restored, report.diffs_rebuilt) == (9, 9, 7)
    assert report.skipped == []
    assert await _everything(store, days) == before


async def test_a_rebuild_with_a_source_also_takes_a_fresh_snapshot(parts: Any) -> None:
    service, rebuild, store, _ = parts
    await service.compute()

    report = await rebuild.rebuild(refresh_source="demo")

    assert report.runs_restored == 1
    assert report.fresh_run is not None
    assert report.cloud_error is None
    assert await store.daily_snapshot(TENANT, date(2026, 11, 25)) == report.fresh_run


async def test_a_rebuild_is_idempotent(parts: Any) -> None:
    service, rebuild, _, _ = parts
    await service.backfill(3, service.source("demo").at)  # type: ignore[attr-defined]
    first = await rebuild.rebuild()
    second = await rebuild.rebuild()
    assert (
        (first.runs_restored, first.diffs_rebuilt) == (second.runs_restored, second.diffs_rebuilt) == (4, 3)
    )


async def test_an_event_whose_document_does_not_match_its_hash_is_never_restored(parts: Any) -> None:
    service, _, _, events = parts
    await service.compute()
    [event] = (await events.query(TENANT, AuditQuery(action_prefix=COMPUTED_ACTION))).events
    assert run_from_event(event).snapshot_hash == event.output_hash

    forged_document = {
        **event.metadata["document"],
        "counts": {**event.metadata["document"]["counts"], "reportsOpen": 0},
    }
    forged = dataclasses.replace(event, metadata={**event.metadata, "document": forged_document})
    with pytest.raises(ValueError, match="output_hash"):
        run_from_event(forged)
    with pytest.raises(ValueError, match="no snapshot document"):
        run_from_event(dataclasses.replace(event, metadata={}))
