"""The Firestore reader against the official emulator, and the demo source held to the same numbers."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any

import pytest

from studio_brain.adapters.demo_source import DemoStudio, evaluate
from studio_brain.adapters.firestore import FirestoreReader
from studio_brain.adapters.rule_files import load_rule_table
from studio_brain.domain.errors import CloudReadError
from studio_brain.domain.rules import RuleTable, parse_rule_table_toml
from studio_brain.domain.snapshot import QueryResult, QueryStatus, build_snapshot
from studio_brain.domain.state import Completeness
from tests.fakes import FakeClock
from tests.fixtures.firestore import TEST_PROJECT, wipe_firestore

pytestmark = pytest.mark.firestore

DAY = date(2026, 11, 20)


@pytest.fixture
def emulator(firestore_emulator_host: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An empty emulator, with FIRESTORE_EMULATOR_HOST set for this test only."""
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator_host)
    wipe_firestore(firestore_emulator_host)
    yield firestore_emulator_host
    wipe_firestore(firestore_emulator_host)


async def seed(documents: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> int:
    """Write documents with batched writes of 500 (the emulator's fast path); returns how many."""
    from google.cloud import firestore

    client = firestore.AsyncClient(project=TEST_PROJECT)
    written = 0
    try:
        batch = client.batch()
        for collection, docs in documents.items():
            for doc_id, doc in docs.items():
                batch.set(client.collection(collection).document(doc_id), dict(doc))
                written += 1
                if written % 500 == 0:
                    await batch.commit()
                    batch = client.batch()
        await batch.commit()
    finally:
        await client._transport.close()
    return written


def reader(clock: FakeClock | None = None, **overrides: Any) -> FirestoreReader:
    options: dict[str, Any] = {"deadline_seconds": 30.0, "max_concurrency": 4, "retry_wait_seconds": 0.01}
    options.update(overrides)
    return FirestoreReader(project_id=TEST_PROJECT, clock=clock or FakeClock(), **options)


@pytest.fixture(scope="module")
def table() -> RuleTable:
    return load_rule_table()


async def test_the_firestore_reader_and_the_demo_source_agree_on_every_rule_and_total(
    emulator: str, table: RuleTable
) -> None:
    studio = DemoStudio(seed=7, epoch=date(2026, 9, 1))
    documents = studio.documents_on(DAY)
    assert await seed(documents) > 1000

    from_firestore = await reader().read(table)
    from_demo = evaluate(table, documents, source="demo", read_at=FakeClock().now())

    def numbers(results: tuple[QueryResult, ...]) -> dict[str, tuple[QueryStatus, int | None]]:
        return {r.key: (r.status, r.count) for r in results}

    assert numbers(from_firestore.rule_counts) == numbers(from_demo.rule_counts)
    assert set(numbers(from_firestore.rule_counts)) == {r.target for r in table.rules}
    assert numbers(from_firestore.totals) == numbers(from_demo.totals)
    assert set(numbers(from_firestore.totals)) == set(table.collections)
    assert all(type(r.count) is int for r in from_firestore.rule_counts + from_firestore.totals)


async def test_unchanged_data_hashes_alike_and_a_count_moving_change_does_not(
    emulator: str, table: RuleTable
) -> None:
    await seed(
        {
            "batches": {
                "b1": {"state": "DRAFT", "isClosed": False},
                "b2": {"state": "CLOSED_PICKED_UP", "isClosed": True},
            },
            "payments": {"p1": {"status": "payment_failed"}},
        }
    )

    def hashes(read: Any) -> dict[str, Any]:
        doc = build_snapshot(
            table=table, read=read, tenant_id="t", snapshot_date=DAY, generated_at=FakeClock().now()
        ).document
        return dict(doc["sourceHashes"])

    first = hashes(await reader().read(table))
    second = hashes(await reader().read(table))
    assert first == second

    await seed({"batches": {"b1": {"state": "CLOSED_PICKED_UP", "isClosed": True}}})
    third = hashes(await reader().read(table))
    assert third["firestore"] != first["firestore"]
    assert third["stripe"] == first["stripe"], "no finance figure moved"

    await seed({"payments": {"p1": {"status": "payment_succeeded"}}})
    assert hashes(await reader().read(table))["stripe"] != first["stripe"]


async def test_a_rule_on_a_missing_collection_counts_zero_with_a_warning(
    emulator: str, table: RuleTable
) -> None:
    await seed({"batches": {"b1": {"state": "DRAFT", "isClosed": False}}})

    read = await reader().read(table)
    snapshot = build_snapshot(
        table=table, read=read, tenant_id="t", snapshot_date=DAY, generated_at=FakeClock().now()
    )

    assert snapshot.completeness is Completeness.FULL
    assert snapshot.document["counts"]["reservationsOpen"] == 0
    assert snapshot.document["diagnostics"]["collections"]["reservations"]["total"] == 0
    assert any("'reservations'" in w for w in snapshot.document["diagnostics"]["warnings"])


async def test_a_query_past_its_deadline_is_cancelled_and_reported_as_timed_out_never_zero(
    emulator: str, table: RuleTable
) -> None:
    await seed({"batches": {"b1": {"state": "DRAFT", "isClosed": False}}})
    clock = FakeClock()
    slow = reader(clock, deadline_seconds=1e-6)
    # issue 20: this used to check only the message; now also that every query was really sent and cut
    # off (not refused up front), that the read as a whole fails (so no 0 is stored), and that a reader
    # with a sane deadline still reads the real number afterwards
    with pytest.raises(CloudReadError, match=r"every query to .* exceeded its 1e-06 s deadline") as caught:
        await slow.read(table)
    assert slow.peak_in_flight >= 1, "queries were started, then cancelled by the deadline"
    assert "BRAIN_FIRESTORE_QUERY_DEADLINE_SECONDS" in caught.value.message, "it says what to change"
    fine = await reader().read(table)
    counts = {r.key: r.count for r in fine.rule_counts}
    assert counts["counts.batchesActive"] == 1


async def test_a_failing_query_makes_its_field_null_and_the_snapshot_partial(emulator: str) -> None:
    # A rule Firestore refuses (an `in` on a value type mix it rejects is hard to provoke; a field path
    # with a reserved name is not): `__name__ == "x"` must be a document reference, so the server says no.
    table = parse_rule_table_toml(
        load_rule_table_text().replace(
            'where = [{ field = "isClosed", op = "==", value = false }]',
            'where = [{ field = "__name__", op = "==", value = "not-a-reference" }]',
        ),
        source="test",
    )
    await seed({"batches": {"b1": {"state": "DRAFT", "isClosed": False}}})

    read = await reader().read(table)
    snapshot = build_snapshot(
        table=table, read=read, tenant_id="t", snapshot_date=DAY, generated_at=FakeClock().now()
    )

    assert snapshot.completeness is Completeness.PARTIAL
    assert snapshot.document["counts"]["batchesActive"] is None
    assert snapshot.document["counts"]["batchesClosed"] == 0
    assert snapshot.document["diagnostics"]["failedCollections"] == ["batches"]


def load_rule_table_text() -> str:
    from studio_brain.adapters.rule_files import default_rules_text

    return default_rules_text()


async def test_queries_run_concurrently_within_the_bound(emulator: str, table: RuleTable) -> None:
    bounded = reader(max_concurrency=3)
    await bounded.read(table)
    assert bounded.peak_in_flight == 3


async def test_an_emulator_that_does_not_answer_is_named_with_how_to_fix_it(
    monkeypatch: pytest.MonkeyPatch, table: RuleTable
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", dead)
    started = time.monotonic()
    with pytest.raises(CloudReadError) as caught:
        await reader(attempts=2).read(table)
    assert dead in caught.value.message
    assert "start it" in caught.value.message
    assert time.monotonic() - started < 20


async def test_missing_credentials_for_real_firestore_say_how_to_provide_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, table: RuleTable
) -> None:
    monkeypatch.delenv("FIRESTORE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "absent.json"))
    with pytest.raises(CloudReadError, match="application-default login"):
        await reader().read(table)
