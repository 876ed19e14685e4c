"""The swarms as pure judges of snapshot history: ops rules and anomalies, finance flags, marketing copy.

Also the guarantees: nothing from a partial or stale snapshot is used, marketing copy never carries a
finance or safety figure, and the marketing review machine has no path around a human.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studio_brain.domain.calendar import parse_calendar_toml
from studio_brain.domain.drafts import (
    DraftKind,
    DraftStatus,
    Evidence,
    Finding,
    Severity,
    copy_leaks,
    review_transition,
)
from studio_brain.domain.errors import Conflict, InputInvalid
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.rules import SNAPSHOT_FIELDS
from studio_brain.domain.state import Completeness, SnapshotRun
from studio_brain.services.swarms.base import SwarmInput, usable_metrics
from studio_brain.services.swarms.finance import (
    PENDING_AGEING_RULE,
    READ_FAILED_RULE,
    READ_STALE_RULE,
    UNSETTLED_RISING_RULE,
    FinanceSwarm,
)
from studio_brain.services.swarms.marketing import MarketingSwarm
from studio_brain.services.swarms.ops import (
    AGENT_QUEUE_RULE,
    ANOMALY_RULE,
    FIRING_BACKLOG_RULE,
    HIGH_SEVERITY_RULE,
    OpsSwarm,
)

PHOENIX = ZoneInfo("America/Phoenix")
TODAY = date(2026, 11, 25)
NOW = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)
CALM: dict[str, int] = {
    "counts.batchesActive": 30,
    "counts.batchesClosed": 400,
    "counts.reservationsOpen": 15,
    "counts.firingsScheduled": 6,
    "counts.reportsOpen": 2,
    "ops.blockedTickets": 2,
    "ops.agentRequestsPending": 4,
    "ops.highSeverityReports": 0,
    "finance.pendingOrders": 3,
    "finance.unsettledPayments": 10,
}


def snapshot_run(
    day: date,
    values: dict[str, int | None],
    *,
    completeness: Completeness = Completeness.FULL,
    read_lag: timedelta = timedelta(minutes=1),
    stripe_read_at: datetime | str | None = "same",
    failed: tuple[str, ...] = (),
) -> SnapshotRun:
    generated = datetime.combine(day, datetime.min.time(), tzinfo=PHOENIX).astimezone(UTC) + timedelta(
        hours=20
    )
    read_at = generated - read_lag
    stripe = read_at if stripe_read_at == "same" else stripe_read_at
    document: dict[str, Any] = {
        "schemaVersion": "v3.0",
        "snapshotDate": day.isoformat(),
        "generatedAt": generated.isoformat(),
        "cloudSync": {
            "firestoreReadAt": read_at.isoformat(),
            "stripeReadAt": stripe.isoformat() if isinstance(stripe, datetime) else None,
        },
        "counts": {},
        "ops": {},
        "finance": {},
        "diagnostics": {"completeness": completeness.value, "failedCollections": list(failed)},
    }
    for target in SNAPSHOT_FIELDS:
        section, name = target.split(".", 1)
        document[section][name] = values.get(target)
    return SnapshotRun(
        id=f"run-{day.isoformat()}",
        tenant_id="monsoonfire-main",
        snapshot_date=day,
        generated_at=generated,
        completeness=completeness,
        source="test",
        document=document,
        snapshot_hash=sha256_hex(document),
    )


def calm_history(days: int = 40, *, seed: int = 3, end: date = TODAY) -> list[SnapshotRun]:
    rng = random.Random(seed)
    runs = []
    for i in range(days):
        day = end - timedelta(days=days - 1 - i)
        values = {k: max(0, v + rng.choice((-1, 0, 0, 1))) for k, v in CALM.items()}
        values["counts.batchesClosed"] = CALM["counts.batchesClosed"] + 3 * i + rng.choice((0, 1))
        runs.append(snapshot_run(day, values))
    return runs


def swarm_input(
    history: list[SnapshotRun], *, now: datetime = NOW, newest: SnapshotRun | None = None
) -> SwarmInput:
    return SwarmInput(
        tenant_id="monsoonfire-main",
        now=now,
        today=TODAY,
        zone=PHOENIX,
        history=history,
        newest_run=newest or (history[-1] if history else None),
    )


def replace_today(history: list[SnapshotRun], **changes: int | None) -> list[SnapshotRun]:
    last = history[-1]
    values = {t: last.document[t.split(".")[0]][t.split(".")[1]] for t in SNAPSHOT_FIELDS}
    values.update({k.replace("__", "."): v for k, v in changes.items()})
    return [*history[:-1], snapshot_run(last.snapshot_date, values)]


def rules_of(findings: list[Finding]) -> list[str]:
    return sorted(f.rule_id for f in findings)


# --- ops ---------------------------------------------------------------------------------------------


def test_a_calm_studio_gives_the_ops_swarm_nothing_to_draft() -> None:
    notes: list[str] = []
    assert OpsSwarm().findings(swarm_input(calm_history()), notes) == []


def test_a_spike_in_agent_requests_is_drafted_with_what_how_much_and_since_when() -> None:
    history = replace_today(calm_history(), ops__agentRequestsPending=30)
    found = OpsSwarm().findings(swarm_input(history), [])
    assert rules_of(found) == sorted([ANOMALY_RULE, AGENT_QUEUE_RULE])
    anomaly = next(f for f in found if f.rule_id == ANOMALY_RULE)
    assert anomaly.subject == "ops.agentRequestsPending:up"
    assert "30" in anomaly.title
    assert "robust SD above" in anomaly.rationale
    assert f"since {TODAY}" in anomaly.rationale
    evidence = anomaly.evidence.metrics["ops.agentRequestsPending"]
    assert evidence["value"] == 30
    assert evidence["zScore"] >= 3.5
    assert evidence["since"] == TODAY.isoformat()
    assert anomaly.evidence.snapshot_ids[0] == history[-1].id
    assert 0 < anomaly.confidence <= 1


def test_an_anomaly_names_the_earlier_days_left_out_of_its_baseline_and_why() -> None:
    history = calm_history()
    # an earlier spike (flagged then) and a day the studio was closed, then today's spike
    spiked = TODAY - timedelta(days=12)
    closed = TODAY - timedelta(days=5)
    history = [
        snapshot_run(r.snapshot_date, {**_values(r), "ops.agentRequestsPending": 40})
        if r.snapshot_date == spiked
        else snapshot_run(r.snapshot_date, {**_values(r), "ops.agentRequestsPending": 0})
        if r.snapshot_date == closed
        else r
        for r in history
    ]
    history = replace_today(history, ops__agentRequestsPending=30)
    calendar = parse_calendar_toml(
        f'[[days]]\ndate = {closed.isoformat()}\nkind = "closure"\nlabel = "Kiln repair"\n', source="test"
    )
    found = OpsSwarm(calendar=calendar).findings(swarm_input(history), [])
    anomaly = next(
        f for f in found if f.rule_id == ANOMALY_RULE and f.subject.startswith("ops.agentRequests")
    )
    excluded = anomaly.evidence.metrics["ops.agentRequestsPending"]["excludedDays"]
    assert {"day": spiked.isoformat(), "reason": "flagged"} in excluded
    assert {"day": closed.isoformat(), "reason": "closure: Kiln repair"} in excluded
    assert "left out: 1 closure day, 1 flagged day" in anomaly.rationale


def test_a_day_in_the_studio_calendar_is_not_judged_statistically() -> None:
    history = replace_today(calm_history(), ops__agentRequestsPending=30)
    calendar = parse_calendar_toml(
        f'[[days]]\ndate = {TODAY.isoformat()}\nkind = "event"\nlabel = "Open day"\n', source="test"
    )
    notes: list[str] = []
    found = OpsSwarm(calendar=calendar).findings(swarm_input(history), notes)
    assert ANOMALY_RULE not in rules_of(found)
    assert AGENT_QUEUE_RULE in rules_of(found)  # the plain rules still look at today
    assert any("event: Open day" in n and "not judged" in n for n in notes)


def _values(run: SnapshotRun) -> dict[str, int | None]:
    return {t: run.document[t.split(".")[0]][t.split(".")[1]] for t in SNAPSHOT_FIELDS}


def test_the_configurable_rules_fire_on_todays_snapshot() -> None:
    history = replace_today(
        calm_history(), counts__batchesActive=60, counts__firingsScheduled=2, ops__highSeverityReports=2
    )
    found = OpsSwarm().findings(swarm_input(history), [])
    assert {FIRING_BACKLOG_RULE, HIGH_SEVERITY_RULE} <= set(rules_of(found))
    high = next(f for f in found if f.rule_id == HIGH_SEVERITY_RULE)
    assert high.severity is Severity.HIGH
    assert high.evidence.metrics == {"ops.highSeverityReports": 2}


def test_a_partial_snapshot_is_never_used() -> None:
    history = calm_history()
    last = history[-1]
    values = dict.fromkeys(SNAPSHOT_FIELDS, 999)
    partial = snapshot_run(last.snapshot_date, values, completeness=Completeness.PARTIAL)
    assert usable_metrics(partial, swarm_input(history).freshness) == {}
    # a complete-looking run whose diagnostics say partial is refused too
    mislabelled = snapshot_run(last.snapshot_date, values)
    mislabelled.document["diagnostics"]["completeness"] = "partial"
    assert usable_metrics(mislabelled, swarm_input(history).freshness) == {}


def test_a_snapshot_built_from_a_stale_cloud_read_is_never_used() -> None:
    history = calm_history()
    stale = snapshot_run(TODAY, dict.fromkeys(SNAPSHOT_FIELDS, 999), read_lag=timedelta(hours=30))
    notes: list[str] = []
    assert OpsSwarm().findings(swarm_input([*history[:-1], stale]), notes) == []
    assert any("stale" in n for n in notes)


def test_an_old_latest_snapshot_makes_the_swarms_judge_nothing() -> None:
    notes: list[str] = []
    later = NOW + timedelta(days=3)
    assert (
        OpsSwarm().findings(
            swarm_input(replace_today(calm_history(), ops__highSeverityReports=3), now=later), notes
        )
        == []
    )
    assert notes == ["no complete snapshot fresh enough to judge from"]


def test_a_null_metric_is_skipped_not_read_as_zero() -> None:
    history = replace_today(calm_history(), counts__firingsScheduled=None, counts__batchesActive=90)
    found = OpsSwarm().findings(swarm_input(history), [])
    assert FIRING_BACKLOG_RULE not in rules_of(found)


def test_fewer_than_fourteen_days_of_history_give_no_statistical_findings() -> None:
    history = replace_today(calm_history(days=10), ops__agentRequestsPending=30)
    notes: list[str] = []
    found = OpsSwarm().findings(swarm_input(history), notes)
    assert ANOMALY_RULE not in rules_of(found)
    assert any("fewer than 14" in n for n in notes)


# --- finance -----------------------------------------------------------------------------------------


def test_unsettled_payments_rising_three_days_running_is_flagged() -> None:
    history = calm_history()
    tail = []
    for i, run in enumerate(history[-4:]):
        values = {t: run.document[t.split(".")[0]][t.split(".")[1]] for t in SNAPSHOT_FIELDS}
        values["finance.unsettledPayments"] = 10 + 2 * i
        tail.append(snapshot_run(run.snapshot_date, values))
    found = FinanceSwarm().findings(swarm_input([*history[:-4], *tail]), [])
    rising = next(f for f in found if f.rule_id == UNSETTLED_RISING_RULE)
    assert rising.evidence.metrics == {"finance.unsettledPayments": [10, 12, 14, 16]}
    assert len(rising.evidence.snapshot_ids) == 4
    assert "10 → 16" in rising.title


def test_pending_orders_that_never_drain_are_flagged_as_ageing() -> None:
    history = calm_history()
    tail = []
    for run in history[-7:]:
        values = {t: run.document[t.split(".")[0]][t.split(".")[1]] for t in SNAPSHOT_FIELDS}
        values["finance.pendingOrders"] = 4
        tail.append(snapshot_run(run.snapshot_date, values))
    found = FinanceSwarm().findings(swarm_input([*history[:-7], *tail]), [])
    assert PENDING_AGEING_RULE in rules_of(found)


def test_a_finance_read_older_than_a_day_is_flagged_stale() -> None:
    history = calm_history()
    old = NOW - timedelta(hours=30)
    values = {t: history[-1].document[t.split(".")[0]][t.split(".")[1]] for t in SNAPSHOT_FIELDS}
    newest = snapshot_run(TODAY, values, stripe_read_at=old)
    found = FinanceSwarm().findings(swarm_input([*history[:-1], newest]), [])
    stale = next(f for f in found if f.rule_id == READ_STALE_RULE)
    assert "30.0 h ago" in stale.rationale


def test_a_failed_finance_read_is_flagged_and_never_read_as_zero() -> None:
    history = calm_history()
    failed = snapshot_run(
        TODAY,
        {**CALM, "finance.unsettledPayments": None},
        completeness=Completeness.PARTIAL,
        failed=("payments",),
    )
    found = FinanceSwarm().findings(swarm_input(history[:-1], newest=failed), [])
    flag = next(f for f in found if f.rule_id == READ_FAILED_RULE)
    assert flag.severity is Severity.HIGH
    assert "unknown, not zero" in flag.rationale
    assert "payments" in flag.rationale


def test_the_disputes_rule_says_when_the_snapshot_has_no_disputes_count() -> None:
    notes: list[str] = []
    FinanceSwarm().findings(swarm_input(calm_history()), notes)
    assert any("disputes" in n for n in notes)


# --- marketing ---------------------------------------------------------------------------------------


def test_marketing_drafts_copy_about_kiln_space_and_upcoming_firings() -> None:
    history = replace_today(calm_history(), counts__firingsScheduled=3)
    found = MarketingSwarm().findings(swarm_input(history), [])
    assert rules_of(found) == ["marketing.kiln_space", "marketing.upcoming_firings"]
    for finding in found:
        assert finding.kind is DraftKind.MARKETING
        assert finding.body["copy"]
        assert finding.body["templateVersion"]
        assert set(finding.evidence.metrics) == {"counts.firingsScheduled", "counts.reservationsOpen"}


@settings(max_examples=60, deadline=None)
@given(
    firings=st.integers(min_value=0, max_value=40),
    reservations=st.integers(min_value=0, max_value=60),
    private=st.lists(st.integers(min_value=2, max_value=10_000), min_size=6, max_size=6),
)
def test_marketing_copy_never_includes_finance_or_safety_figures(
    firings: int, reservations: int, private: list[int]
) -> None:
    values = dict(CALM)
    values["counts.firingsScheduled"] = firings
    values["counts.reservationsOpen"] = reservations
    for name, value in zip(
        (
            "finance.pendingOrders",
            "finance.unsettledPayments",
            "ops.highSeverityReports",
            "counts.reportsOpen",
            "ops.blockedTickets",
            "ops.agentRequestsPending",
        ),
        private,
        strict=True,
    ):
        values[name] = value
    history = [*calm_history()[:-1], snapshot_run(TODAY, values)]
    public = {firings, reservations}
    for finding in MarketingSwarm().findings(swarm_input(history), []):
        text = f"{finding.title}\n{finding.body['copy']}"
        assert copy_leaks(text, set(private) - public) == []
        assert not {int(n) for n in re.findall(r"\d+", text)} & (set(private) - public)


def test_the_copy_check_catches_private_words_and_figures() -> None:
    assert copy_leaks("3 unsettled payments this week", set())
    assert copy_leaks("We fired 1234 pots", {1234}) == ["contains the internal figure 1234"]
    assert copy_leaks("A safety report is open", set())
    assert copy_leaks("Kiln space this week: 3 firings", {7}) == []


def test_the_marketing_review_machine_goes_draft_needs_review_approved() -> None:
    assert review_transition(DraftStatus.DRAFT, DraftStatus.NEEDS_REVIEW) is DraftStatus.NEEDS_REVIEW
    assert (
        review_transition(DraftStatus.NEEDS_REVIEW, DraftStatus.APPROVED_FOR_PUBLISH)
        is DraftStatus.APPROVED_FOR_PUBLISH
    )
    assert review_transition(DraftStatus.NEEDS_REVIEW, DraftStatus.DRAFT) is DraftStatus.DRAFT


@pytest.mark.parametrize(
    ("current", "wanted"),
    [
        (DraftStatus.DRAFT, DraftStatus.APPROVED_FOR_PUBLISH),
        (DraftStatus.APPROVED_FOR_PUBLISH, DraftStatus.DRAFT),
        (DraftStatus.APPROVED_FOR_PUBLISH, DraftStatus.NEEDS_REVIEW),
        (DraftStatus.OPEN, DraftStatus.NEEDS_REVIEW),
    ],
)
def test_the_review_machine_refuses_skipping_or_leaving_a_final_state(
    current: DraftStatus, wanted: DraftStatus
) -> None:
    with pytest.raises(Conflict):
        review_transition(current, wanted)


def test_a_finding_without_evidence_or_with_a_bad_confidence_is_refused() -> None:
    base = {
        "kind": DraftKind.OPS,
        "rule_id": "ops.x",
        "subject": "x",
        "severity": Severity.LOW,
        "title": "t",
        "rationale": "r",
        "recommendation": "do",
        "snapshot_date": TODAY,
    }
    with pytest.raises(InputInvalid, match="evidence"):
        Finding(**base, evidence=Evidence(), confidence=0.5).validate()  # type: ignore[arg-type]
    with pytest.raises(InputInvalid, match="confidence"):
        Finding(**base, evidence=Evidence(rule_ids=("ops.x",)), confidence=1.5).validate()  # type: ignore[arg-type]


def test_the_dedupe_key_is_the_same_finding_on_the_same_day() -> None:
    finding = Finding(
        kind=DraftKind.OPS,
        rule_id="ops.x",
        subject="m:up",
        severity=Severity.LOW,
        title="t",
        rationale="r",
        recommendation="do",
        snapshot_date=TODAY,
        evidence=Evidence(rule_ids=("ops.x",)),
        confidence=0.5,
    )
    assert finding.dedupe_key("t1", TODAY) == finding.dedupe_key("t1", TODAY)
    assert finding.dedupe_key("t1", TODAY) != finding.dedupe_key("t1", TODAY + timedelta(days=1))
    assert finding.dedupe_key("t1", TODAY) != finding.dedupe_key("t2", TODAY)
