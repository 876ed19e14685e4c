"""The snapshot document: schema v3.0, nulls never zeros, deterministic hashes, diffs, the studio's date."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from studio_brain.adapters.rule_files import load_rule_table
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.rules import SNAPSHOT_FIELDS, RuleTable
from studio_brain.domain.snapshot import (
    CloudRead,
    FinanceSummary,
    QueryResult,
    QueryStatus,
    build_snapshot,
    diff_documents,
    snapshot_date_at,
)
from studio_brain.domain.state import Completeness

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "studio-state.schema.json").read_text(encoding="utf-8")
)
READ_AT = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
TABLE = load_rule_table()


def validate(document: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(document)


def a_read(
    table: RuleTable = TABLE,
    *,
    counts: dict[str, int] | None = None,
    totals: dict[str, int] | None = None,
    failing: dict[str, QueryStatus] | None = None,
    read_at: datetime = READ_AT,
    duration_ms: float = 12.5,
) -> CloudRead:
    counts = counts or {}
    totals = totals or {}
    failing = failing or {}
    rules = tuple(
        QueryResult(
            key=r.target,
            collection=r.collection,
            count=None if r.collection in failing else counts.get(r.target, 3),
            status=failing.get(r.collection, QueryStatus.OK),
            duration_ms=duration_ms,
            error="unreachable: ServiceUnavailable" if r.collection in failing else None,
        )
        for r in table.rules
    )
    collection_totals = tuple(
        QueryResult(
            key=c,
            collection=c,
            count=None if c in failing else totals.get(c, 20),
            status=failing.get(c, QueryStatus.OK),
            duration_ms=duration_ms,
        )
        for c in table.collections
    )
    return CloudRead(
        source="firestore",
        read_at=read_at,
        rule_counts=rules,
        totals=collection_totals,
        duration_ms=duration_ms,
    )


def build(read: CloudRead, **kwargs: Any) -> Any:
    options: dict[str, Any] = {
        "table": TABLE,
        "read": read,
        "tenant_id": "monsoonfire-main",
        "snapshot_date": date(2026, 11, 25),
        "generated_at": READ_AT,
    }
    options.update(kwargs)
    return build_snapshot(**options)


def test_a_complete_read_gives_a_full_snapshot_that_matches_the_published_schema() -> None:
    snapshot = build(a_read(counts={"counts.batchesActive": 7}))
    document = snapshot.document

    validate(document)
    assert snapshot.completeness is Completeness.FULL
    assert document["schemaVersion"] == "v3.0"
    assert document["snapshotDate"] == "2026-11-25"
    assert document["counts"]["batchesActive"] == 7
    assert document["cloudSync"] == {
        "firestoreReadAt": "2026-11-25T15:00:00.000000Z",
        "stripeReadAt": "2026-11-25T15:00:00.000000Z",
    }
    assert document["diagnostics"]["ruleTable"] == {"version": TABLE.version, "hash": TABLE.hash}
    assert snapshot.snapshot_hash == sha256_hex(document)


def test_a_failed_collection_is_null_and_partial_never_zero() -> None:
    snapshot = build(
        a_read(failing={"communityReports": QueryStatus.FAILED, "batches": QueryStatus.TIMED_OUT})
    )
    document = snapshot.document

    validate(document)
    assert snapshot.completeness is Completeness.PARTIAL
    assert document["counts"]["reportsOpen"] is None
    assert document["ops"]["highSeverityReports"] is None
    assert document["counts"]["batchesActive"] is None
    assert document["counts"]["reservationsOpen"] == 3
    assert document["diagnostics"]["failedCollections"] == ["communityReports"]
    assert document["diagnostics"]["timedOutCollections"] == ["batches"]
    assert document["diagnostics"]["collections"]["batches"]["total"] is None


def test_hashes_cover_what_was_read_and_never_when_or_how_fast() -> None:
    early = build(a_read(read_at=READ_AT, duration_ms=5.0), generated_at=READ_AT)
    late = build(
        a_read(read_at=READ_AT + timedelta(hours=3), duration_ms=900.0),
        generated_at=READ_AT + timedelta(hours=3),
    )
    assert early.document["sourceHashes"] == late.document["sourceHashes"]
    assert early.snapshot_hash != late.snapshot_hash, "the stored document does record its times"

    moved = build(a_read(counts={"counts.reservationsOpen": 4}))
    assert moved.document["sourceHashes"]["firestore"] != early.document["sourceHashes"]["firestore"]
    assert moved.document["sourceHashes"]["stripe"] == early.document["sourceHashes"]["stripe"]

    more_documents = build(a_read(totals={"batches": 21}))
    assert more_documents.document["sourceHashes"]["firestore"] != early.document["sourceHashes"]["firestore"]


def test_the_stripe_hash_and_read_time_are_null_when_no_finance_figure_was_read() -> None:
    snapshot = build(a_read(failing={"payments": QueryStatus.FAILED, "materialsOrders": QueryStatus.FAILED}))
    validate(snapshot.document)
    assert snapshot.document["sourceHashes"]["stripe"] is None
    assert snapshot.document["cloudSync"]["stripeReadAt"] is None


def test_a_functions_finance_summary_replaces_the_finance_rules_and_sets_its_own_read_time() -> None:
    finance_at = READ_AT + timedelta(seconds=2)
    snapshot = build(
        a_read(), finance=FinanceSummary(pending_orders=11, unsettled_payments=4, read_at=finance_at)
    )
    document = snapshot.document
    validate(document)
    assert document["finance"] == {"pendingOrders": 11, "unsettledPayments": 4}
    assert document["cloudSync"]["stripeReadAt"] == "2026-11-25T15:00:02.000000Z"
    assert document["diagnostics"]["financeSource"] == "functions"
    assert document["sourceHashes"]["stripe"] != build(a_read()).document["sourceHashes"]["stripe"]


def test_unclassified_documents_are_counted_where_the_rules_allow_it() -> None:
    snapshot = build(
        a_read(
            counts={"counts.batchesActive": 5, "counts.batchesClosed": 14, "counts.reportsOpen": 2},
            totals={"batches": 20, "communityReports": 9},
        )
    )
    collections = snapshot.document["diagnostics"]["collections"]
    assert collections["batches"]["unclassified"] == 1
    assert collections["communityReports"]["unclassified"] == 7


def test_an_empty_or_missing_collection_counts_zero_with_a_warning() -> None:
    snapshot = build(a_read(counts={"counts.reservationsOpen": 0}, totals={"reservations": 0}))
    assert snapshot.completeness is Completeness.FULL
    assert snapshot.document["counts"]["reservationsOpen"] == 0
    assert any("'reservations'" in w for w in snapshot.document["diagnostics"]["warnings"])


def test_the_snapshot_date_is_the_studios_calendar_date() -> None:
    phoenix = ZoneInfo("America/Phoenix")
    late_evening_in_phoenix = datetime(2026, 11, 26, 5, 30, tzinfo=UTC)
    assert snapshot_date_at(late_evening_in_phoenix, phoenix) == date(2026, 11, 25)
    assert snapshot_date_at(late_evening_in_phoenix, UTC) == date(2026, 11, 26)


def test_a_diff_lists_only_the_keys_that_changed_as_from_and_to() -> None:
    old = build(a_read(counts={"counts.batchesActive": 3, "finance.pendingOrders": 1})).document
    new = build(
        a_read(counts={"counts.batchesActive": 5, "finance.pendingOrders": 1}),
        generated_at=READ_AT + timedelta(days=1),
        snapshot_date=date(2026, 11, 26),
    ).document

    changes = diff_documents(old, new)

    assert changes["counts.batchesActive"] == {"from": 3, "to": 5}
    assert "finance.pendingOrders" not in changes
    assert "generatedAt" not in changes
    assert "snapshotDate" not in changes
    assert set(changes) == {"counts.batchesActive", "sourceHashes.firestore"}


def test_a_diff_of_identical_snapshots_is_empty() -> None:
    document = build(a_read()).document
    assert diff_documents(document, document) == {}


@pytest.mark.parametrize("field", SNAPSHOT_FIELDS)
def test_the_schema_refuses_a_negative_count(field: str) -> None:
    document = build(a_read()).document
    section, name = field.split(".")
    document[section][name] = -1
    with pytest.raises(jsonschema.ValidationError):
        validate(document)


_counts = st.one_of(st.none(), st.integers(min_value=0, max_value=10**6))
_documents = st.fixed_dictionaries(
    {
        section: st.fixed_dictionaries(
            {t.split(".")[1]: _counts for t in SNAPSHOT_FIELDS if t.startswith(section)}
        )
        for section in ("counts", "ops", "finance")
    }
    | {"sourceHashes": st.fixed_dictionaries({"firestore": st.sampled_from(["a" * 64, "b" * 64])})}
)


@given(old=_documents, new=_documents)
def test_applying_a_diff_to_the_old_snapshot_gives_the_new_one(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    changes = diff_documents(old, new)
    patched = {section: dict(values) for section, values in old.items()}
    for key, change in changes.items():
        section, name = key.split(".", 1)
        assert patched[section][name] == change["from"]
        patched[section][name] = change["to"]
    assert patched == new
    assert (changes == {}) == (old == new)
