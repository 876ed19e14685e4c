"""Pure pieces of the morning cockpit (issue 14): the summary sentence, the trend chart, device problems,
who a proposal waits for, and effects and results in words."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from studio_brain.domain.audit import ActorType
from studio_brain.domain.identity import AuthMethod, Principal
from studio_brain.domain.proposals import Approval, Proposal, Status
from studio_brain.web.charts import line_chart
from studio_brain.web.pages_actions import result_text
from studio_brain.web.pages_attention import device_problem, waits_for
from studio_brain.web.pages_view import change_summary

DAY = date(2026, 11, 25)


def test_the_summary_names_each_moved_metric_with_from_and_to_in_display_order() -> None:
    changes = {
        "counts.firingsScheduled": {"from": 4, "to": 3},
        "counts.batchesClosed": {"from": 342, "to": 345},
        "sourceHashes.firestore": {"from": "a", "to": "b"},
    }
    assert change_summary(changes, has_baseline=True) == (
        "2 changes since yesterday: closed batches 342 → 345, scheduled firings 4 → 3"
    )
    assert change_summary({}, has_baseline=True) == "No change since yesterday."
    assert change_summary(changes, has_baseline=False).startswith("Nothing to compare with")
    many = {f"counts.m{i}": {"from": i, "to": i + 1} for i in range(9)}
    assert change_summary(many, has_baseline=True).endswith(", …")


def test_the_chart_has_dated_x_ticks_round_y_ticks_gaps_and_marked_anomalies() -> None:
    days = [DAY - timedelta(days=29 - n) for n in range(30)]
    series = [(d, None if n == 10 else float(n % 5)) for n, d in enumerate(days)]
    chart = line_chart(series, label="Open reports", anomalies={days[20]})
    svg = str(chart.svg)
    assert "Oct 27" in svg
    assert "Nov 25" in svg
    assert re.findall(r'class="tick y"[^>]*>([^<]+)<', svg) == ["0", "1", "2", "3", "4"], "whole numbers"
    assert svg.count("<polyline") == 2, "the day without a close breaks the line"
    assert f'data-day="{days[20].isoformat()}"' in svg
    assert "1 anomaly marked" in chart.summary
    empty = line_chart([(d, None) for d in days], label="x")
    assert "No closes in this range" in str(empty.svg)


def test_the_chart_escapes_its_label() -> None:
    chart = line_chart([(DAY, 1.0), (DAY + timedelta(days=1), 2.0)], label='<script>"x"</script>')
    assert "<script>" not in str(chart.svg)


def test_a_device_needs_attention_when_offline_silent_or_low_on_battery() -> None:
    assert device_problem({"online": True, "battery": 80}) == ""
    assert device_problem({"online": False, "stale": True, "battery": 4}) == (
        "offline, no recent report, battery 4 %"
    )
    assert device_problem({"battery": True}) == "", "a boolean is not a battery level"


def _principal(actor_id: str) -> Principal:
    return Principal(
        tenant_id="t",
        actor_type=ActorType.STAFF,
        actor_id=actor_id,
        via=AuthMethod.SESSION,
        roles=frozenset({"staff"}),
    )


def _proposal(requested_by: str, approvals: tuple[Approval, ...] = (), **extra: object) -> Proposal:
    now = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)
    return Proposal(
        id="p1",
        tenant_id="t",
        capability_id="studio.note.append",
        registry_version="v",
        target="local",
        mode="write",
        status=Status.PENDING_APPROVAL,
        requested_by=requested_by,
        requester_type=ActorType.STAFF,
        input={"text": "Shelf 3 cracked"},
        input_hash="0" * 64,
        predicted_effects=[],
        predicted_effects_hash="0" * 64,
        rationale="r",
        correlation_id="c",
        request_id="r",
        created_at=now,
        updated_at=now,
        approvals=approvals,
        **extra,  # type: ignore[arg-type]
    )


def test_a_proposal_waits_for_someone_who_neither_asked_for_it_nor_approved_it_yet() -> None:
    ada, grace = _principal("p-ada"), _principal("p-grace")
    assert waits_for(_proposal("p-grace"), ada)
    assert not waits_for(_proposal("p-ada"), ada), "never her own"
    given = Approval(
        approver_id="p-ada", approver_type=ActorType.STAFF, at=datetime.now(UTC), rationale="ok", binding="b"
    )
    assert not waits_for(_proposal("p-grace", (given,)), ada), "not twice"
    assert not waits_for(_proposal("p-grace", (given,)), grace)


def test_an_executed_note_reads_as_its_text() -> None:
    done = _proposal("p-grace", result={"noteId": "n-1", "createdAt": "2026-11-25T17:00:00Z"})
    assert result_text(done) == "Note added: “Shelf 3 cracked” (note n-1)"
    assert result_text(_proposal("p-grace")) == ""
