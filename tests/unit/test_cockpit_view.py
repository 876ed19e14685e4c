"""What the cockpit computes for display: metric order and changes, sparklines, badges, plain-words refusals."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from studio_brain.domain.state import Completeness, SnapshotRun
from studio_brain.web import pages_view as view
from tests.e2e.seed import snapshot_run

DAY = date(2026, 11, 25)


def run(
    day: date, document: dict[str, Any], *, completeness: Completeness = Completeness.FULL
) -> SnapshotRun:
    return snapshot_run(day, 0, tenant_id="t1", document=document, completeness=completeness)


def test_metrics_follow_the_schema_order_whatever_order_the_database_returns() -> None:
    document = {
        "ops": {"highSeverityReports": 1, "blockedTickets": 2},
        "counts": {"reportsOpen": 3, "batchesActive": 4},
    }
    assert list(view.metric_values(document)) == [
        "counts.batchesActive",
        "counts.reportsOpen",
        "ops.blockedTickets",
        "ops.highSeverityReports",
    ]


def test_non_numbers_and_booleans_are_not_metrics_and_unknown_keys_get_readable_labels() -> None:
    values = view.metric_values({"counts": {"flag": True, "note": "x", "kilnLoadsWaiting": 2}})
    assert values == {"counts.kilnLoadsWaiting": 2.0}
    assert view.metric_label("counts.kilnLoadsWaiting") == "Kiln loads waiting"


def test_a_rise_in_bad_news_is_marked_as_bad_and_a_fall_as_good() -> None:
    today = run(DAY, {"ops": {"blockedTickets": 5}, "counts": {"batchesActive": 3}})
    yesterday = run(DAY - timedelta(days=1), {"ops": {"blockedTickets": 2}, "counts": {"batchesActive": 7}})
    rows = {r.key: r for r in view.metric_rows(today, yesterday, [yesterday, today])}
    assert (rows["ops.blockedTickets"].change_text, rows["ops.blockedTickets"].trend) == ("+3", "up-bad")
    assert (rows["counts.batchesActive"].change_text, rows["counts.batchesActive"].trend) == ("−4", "down")


def test_without_yesterday_the_change_says_so_rather_than_zero() -> None:
    today = run(DAY, {"counts": {"batchesActive": 3}})
    (row,) = view.metric_rows(today, None, [today])
    assert row.change is None
    assert row.change_text == "no value yesterday"


def test_a_sparkline_breaks_where_days_are_missing_and_names_its_range() -> None:
    line = view.sparkline([1, 2, None, 4, 5], label="Open <reports>")
    assert str(line.svg).count("<polyline") == 2
    assert "Open &lt;reports&gt;" in str(line.svg)
    assert "<reports>" not in str(line.svg)
    assert line.summary == "low 1, high 5 (4 days with data)"


def test_a_sparkline_of_one_day_is_a_dot_and_of_no_days_says_no_history() -> None:
    assert "<polyline" not in str(view.sparkline([None, 3], label="x").svg)
    assert view.sparkline([None, None], label="x").summary == "no history yet"


def test_freshness_turns_stale_past_the_limit() -> None:
    snapshot = run(DAY, {})
    at = snapshot.generated_at
    assert view.freshness_badge(snapshot, now=at + timedelta(minutes=30), max_age_minutes=60).text == "Fresh"
    stale = view.freshness_badge(snapshot, now=at + timedelta(hours=30), max_age_minutes=60)
    assert (stale.text, stale.tone) == ("Stale", "bad")
    assert "30 hours" in stale.detail


def test_a_partial_snapshot_is_flagged() -> None:
    badge = view.completeness_badge(run(DAY, {}, completeness=Completeness.PARTIAL))
    assert (badge.text, badge.tone) == ("Partial", "warn")


def test_warnings_combine_the_snapshots_diagnostics_with_what_the_cockpit_notices() -> None:
    today = run(DAY, {"diagnostics": {"warnings": ["firestore slow", {"code": "STRIPE_SKIPPED"}]}})
    warnings = view.snapshot_warnings(today, None, expected_today=DAY + timedelta(days=1), stale=True)
    assert warnings[:2] == ["firestore slow", "STRIPE_SKIPPED"]
    assert any("no snapshot for 2026-11-26" in w for w in warnings)
    assert any("freshness limit" in w for w in warnings)
    assert any("day before" in w for w in warnings)


def test_every_policy_reason_code_has_plain_words() -> None:
    from studio_brain.domain.reasons import POLICY_REASON_CODES, ReasonCode

    missing = [
        code.value
        for code in sorted(POLICY_REASON_CODES)
        if code is not ReasonCode.ALLOWED and code.value not in view.REASON_WORDS
    ]
    assert missing == []


def test_an_unknown_reason_code_is_shown_with_the_message_not_hidden() -> None:
    assert view.reason_words("NEW_CODE", "the gateway said no") == "the gateway said no (NEW_CODE)"
    assert view.reason_words("SELF_APPROVAL_FORBIDDEN").startswith(
        "Whoever asked for this cannot also approve it"
    )


def test_ages_read_naturally() -> None:
    assert view.describe_age(0.2) == "less than a minute"
    assert view.describe_age(1) == "1 minute"
    assert view.describe_age(125) == "2 hours"
    assert view.describe_age(60 * 24 * 3) == "3 days"


def test_generated_at_is_used_for_freshness_not_the_snapshot_date() -> None:
    snapshot = snapshot_run(DAY, 0, tenant_id="t1", generated_at=datetime(2026, 11, 20, tzinfo=UTC))
    assert (
        view.freshness_badge(snapshot, now=datetime(2026, 11, 25, tzinfo=UTC), max_age_minutes=60).text
        == "Stale"
    )
