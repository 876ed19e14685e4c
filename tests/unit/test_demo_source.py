"""The demo studio: deterministic, realistic (only the portal's real values), evolving day by day."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

from studio_brain.adapters.demo_source import DEMO_COLLECTIONS, DemoCloud, DemoStudio, demo_epoch, evaluate
from studio_brain.adapters.rule_files import load_rule_table
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.snapshot import build_snapshot, metric
from tests.fakes import FakeClock

EPOCH = date(2026, 8, 1)
DAY = date(2026, 11, 25)
TABLE = load_rule_table()

# the values the portal and its Cloud Functions write (reference: firestore-model.md)
ALLOWED = {
    ("batches", "state"): {
        "DRAFT",
        "SUBMITTED",
        "SHELVED",
        "LOADED",
        "FIRED",
        "READY_FOR_PICKUP",
        "CLOSED_PICKED_UP",
        "CLOSED_OTHER",
    },
    ("batches", "status"): {"CLOSED_OTHER"},
    ("reservations", "status"): {
        "REQUESTED",
        "CONFIRMED",
        "WAITLISTED",
        "CANCELLED",
        "CONFIRMED_ARRIVED",
        "LOADED",
    },
    ("kilnFirings", "status"): {
        "scheduled",
        "in-progress",
        "loading",
        "firing",
        "cooling",
        "unloading",
        "completed",
        "cancelled",
    },
    ("communityReports", "status"): {"open", "triaged", "actioned", "resolved", "dismissed"},
    ("communityReports", "severity"): {"low", "medium", "high"},
    ("agentRequests", "status"): {
        "new",
        "triaged",
        "accepted",
        "in_progress",
        "ready",
        "fulfilled",
        "rejected",
        "cancelled",
    },
    ("materialsOrders", "status"): {
        "checkout_created",
        "checkout_pending",
        "paid",
        "picked_up",
        "payment_failed",
        "disputed",
        "refunded",
    },
    ("payments", "status"): {
        "checkout_created",
        "checkout_completed",
        "payment_succeeded",
        "invoice_paid",
        "payment_failed",
        "invoice_payment_failed",
        "charge_disputed",
        "charge_refunded",
    },
}


def test_the_same_seed_gives_the_same_studio_and_another_seed_does_not() -> None:
    first = DemoStudio(seed=5, epoch=EPOCH).documents_on(DAY)
    again = DemoStudio(seed=5, epoch=EPOCH).documents_on(DAY)
    other = DemoStudio(seed=6, epoch=EPOCH).documents_on(DAY)
    assert sha256_hex(first) == sha256_hex(again)
    assert sha256_hex(first) != sha256_hex(other)


def test_the_studio_is_identical_in_a_fresh_interpreter_with_another_hash_seed() -> None:
    code = (
        "from datetime import date;"
        "from studio_brain.adapters.demo_source import DemoStudio;"
        "from studio_brain.domain.hashing import sha256_hex;"
        "print(sha256_hex(DemoStudio(seed=5, epoch=date(2026, 8, 1)).documents_on(date(2026, 11, 25))))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert outputs == {sha256_hex(DemoStudio(seed=5, epoch=EPOCH).documents_on(DAY))}


def test_going_back_to_an_earlier_day_gives_that_days_state_again() -> None:
    studio = DemoStudio(seed=5, epoch=EPOCH)
    earlier = sha256_hex(studio.documents_on(DAY - timedelta(days=10)))
    studio.documents_on(DAY)
    assert sha256_hex(studio.documents_on(DAY - timedelta(days=10))) == earlier


def test_every_document_uses_only_the_portals_collections_fields_and_values() -> None:
    # over many days, so that the conditional rules below are really exercised (issue 20: they used to
    # sit inside ifs that one day's documents might never enter)
    studio = DemoStudio(seed=5, epoch=EPOCH)
    seen_anywhere: dict[tuple[str, str], set[object]] = {key: set() for key in ALLOWED}
    closed_other = safety_reports = 0
    for back in range(0, 60, 3):
        documents = studio.documents_on(DAY - timedelta(days=back))
        assert set(documents) == set(DEMO_COLLECTIONS)
        for (collection, field), allowed in ALLOWED.items():
            seen = {doc[field] for doc in documents[collection].values() if field in doc}
            assert seen <= allowed, (collection, field, seen - allowed)
            seen_anywhere[(collection, field)] |= seen
        for doc in documents["batches"].values():
            if doc.get("status") == "CLOSED_OTHER":
                closed_other += 1
                assert doc["isClosed"] is True
        for doc in documents["communityReports"].values():
            if doc["category"] == "safety":
                safety_reports += 1
                assert doc["severity"] == "high"
    assert closed_other > 0, "no CLOSED_OTHER batch was generated: the isClosed rule was never checked"
    assert safety_reports > 0, "no safety report was generated: the severity rule was never checked"
    never = [key for key, seen in seen_anywhere.items() if not seen]
    assert not never, f"constrained fields that never occur (their check proves nothing): {never}"


def test_the_studio_evolves_with_lifecycles_failures_and_the_occasional_safety_report() -> None:
    studio = DemoStudio(seed=20261125, epoch=demo_epoch(DAY))
    documents = studio.documents_on(DAY)
    batch_states = {doc["state"] for doc in documents["batches"].values()}
    assert {"DRAFT", "SHELVED", "CLOSED_PICKED_UP"} <= batch_states
    assert any(doc["category"] == "safety" for doc in documents["communityReports"].values())

    series = []
    payment_states: set[str] = set()
    for offset in range(60, -1, -1):
        day = DAY - timedelta(days=offset)
        payment_states |= {doc["status"] for doc in studio.view(day)["payments"].values()}
        read = evaluate(TABLE, studio.view(day), source="demo", read_at=datetime(2026, 11, 25, tzinfo=UTC))
        document = build_snapshot(
            table=TABLE, read=read, tenant_id="t", snapshot_date=day, generated_at=read.read_at
        ).document
        series.append(document)
    assert {"payment_failed", "invoice_payment_failed", "invoice_paid", "charge_refunded"} <= payment_states
    assert "charge_disputed" in payment_states
    closed = [metric(d, "counts.batchesClosed") for d in series]
    assert closed == sorted(closed), "closed batches only accumulate"
    assert len({metric(d, "counts.batchesActive") for d in series}) > 5, "active work moves day by day"
    assert any(metric(d, "ops.highSeverityReports") for d in series)
    assert all(d["diagnostics"]["collections"]["batches"]["unclassified"] == 1 for d in series), (
        "the one legacy batch without isClosed is visible, never silently dropped"
    )


async def test_the_demo_cloud_reads_today_in_the_studios_timezone() -> None:
    from zoneinfo import ZoneInfo

    clock = FakeClock(datetime(2026, 11, 26, 5, 0, tzinfo=UTC))  # still the 25th in Phoenix
    cloud = DemoCloud(seed=5, clock=clock, zone=ZoneInfo("America/Phoenix"))
    assert cloud.today() == date(2026, 11, 25)
    read = await cloud.read(TABLE)
    assert read.source == "demo"
    assert read.read_at == clock.now()
    past = await cloud.at(date(2026, 11, 20)).read(TABLE)
    assert past.read_at < clock.now()
    assert past.read_at.astimezone(ZoneInfo("America/Phoenix")).date() == date(2026, 11, 20)
