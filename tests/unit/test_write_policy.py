"""Write policies as data: allowed local hours, the daily cloud-write budget, two people for high risk —
decision tables over the pure policy."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from studio_brain.adapters.capability_registry import load_registry
from studio_brain.domain.audit import ActorType, ApprovalState
from studio_brain.domain.capabilities import parse_registry_toml
from studio_brain.domain.connectors import ConnectorMode
from studio_brain.domain.identity import AuthMethod, Principal
from studio_brain.domain.policy import (
    ConnectorFacts,
    KillSwitch,
    ReasonCode,
    decide_approve,
    decide_execute,
    decide_write_budget,
)
from studio_brain.domain.proposals import Approval, Proposal, Status
from studio_brain.domain.write_policy import (
    HourWindow,
    budget_window_start,
    persons_involved,
    window_open,
)

REGISTRY = load_registry(None)
NOTE = REGISTRY.capabilities["firestore.ops_note.append"]
CLOSE = REGISTRY.capabilities["firestore.batch.close"]
PHOENIX = ZoneInfo("America/Phoenix")
NOW = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)  # 11:00 in Phoenix


def person(actor_id: str, kind: ActorType = ActorType.STAFF) -> Principal:
    return Principal(
        tenant_id="t", actor_type=kind, actor_id=actor_id, via=AuthMethod.CLI, roles=frozenset({"staff"})
    )


def proposal(
    capability_id: str,
    *,
    requester: str = "alice",
    kind: ActorType = ActorType.STAFF,
    approvers: tuple[str, ...] = ("bob",),
    status: Status = Status.APPROVED,
) -> Proposal:
    base = Proposal(
        id="p-1",
        tenant_id="t",
        capability_id=capability_id,
        registry_version=REGISTRY.version,
        target="firestore",
        mode="write",
        status=status,
        requested_by=requester,
        requester_type=kind,
        input={},
        input_hash="0" * 64,
        predicted_effects=[],
        predicted_effects_hash="1" * 64,
        rationale="a good reason",
        correlation_id="c",
        request_id="r",
        created_at=NOW,
        updated_at=NOW,
    )
    approvals = tuple(
        Approval(approver_id=a, approver_type=ActorType.STAFF, at=NOW, rationale="ok", binding=base.binding())
        for a in approvers
    )
    return replace(
        base,
        approvals=approvals,
        approved_at=NOW if status is Status.APPROVED else None,
        approval_expires_at=NOW + timedelta(hours=1) if status is Status.APPROVED else None,
        approval_state=ApprovalState.APPROVED if status is Status.APPROVED else ApprovalState.REQUIRED,
    )


@pytest.mark.parametrize(
    ("window", "local", "open_"),
    [
        ("06:00-22:00", "05:59", False),
        ("06:00-22:00", "06:00", True),
        ("06:00-22:00", "21:59", True),
        ("06:00-22:00", "22:00", False),  # the end is exclusive
        ("22:00-02:00", "23:30", True),  # across midnight
        ("22:00-02:00", "01:59", True),
        ("22:00-02:00", "02:00", False),
        ("00:00-24:00", "23:59", True),
    ],
)
def test_a_window_is_local_time_with_an_exclusive_end(window: str, local: str, open_: bool) -> None:
    hour, minute = (int(x) for x in local.split(":"))
    at = datetime(2026, 11, 25, hour, minute, tzinfo=PHOENIX)
    assert window_open([HourWindow.parse(window)], at) is open_


def test_no_windows_means_any_time_and_malformed_windows_are_refused() -> None:
    assert window_open([], datetime(2026, 1, 1, 3, 0, tzinfo=UTC))
    for bad in ("6-22", "06:00", "25:00-26:00", "10:00-10:00", "06:00-24:30"):
        with pytest.raises(ValueError, match=r"HH:MM|empty"):
            HourWindow.parse(bad)


def _execute(p: Proposal, local_now: datetime | None, capability=NOTE) -> ReasonCode:  # type: ignore[no-untyped-def]
    return decide_execute(
        principal=person("bob"),
        proposal=p,
        capability=capability,
        kill=KillSwitch(),
        current_input_hash=p.input_hash,
        current_binding=p.binding(),
        exemption=None,
        connector=ConnectorFacts(present=True, mode=ConnectorMode.READ_WRITE),
        now=NOW,
        local_now=local_now,
    ).reason_code


@pytest.mark.parametrize(
    ("local", "code"),
    [
        (datetime(2026, 11, 25, 11, 0, tzinfo=PHOENIX), ReasonCode.ALLOWED),
        (datetime(2026, 11, 25, 5, 0, tzinfo=PHOENIX), ReasonCode.WRITE_WINDOW_CLOSED),
        (datetime(2026, 11, 25, 23, 0, tzinfo=PHOENIX), ReasonCode.WRITE_WINDOW_CLOSED),
        (None, ReasonCode.ALLOWED),
    ],
)
def test_execution_outside_the_allowed_hours_is_refused(local: datetime | None, code: ReasonCode) -> None:
    assert _execute(proposal(NOTE.id), local) is code


def test_earlier_refusals_keep_their_precedence_over_the_window() -> None:
    unapproved = proposal(NOTE.id, approvers=(), status=Status.PENDING_APPROVAL)
    assert _execute(unapproved, datetime(2026, 11, 25, 5, 0, tzinfo=PHOENIX)) is ReasonCode.APPROVAL_REQUIRED


@pytest.mark.parametrize(
    ("capability", "budget", "taken", "code"),
    [
        (NOTE, 50, True, ReasonCode.ALLOWED),
        (NOTE, 50, False, ReasonCode.WRITE_BUDGET_EXHAUSTED),
        (NOTE, None, False, ReasonCode.ALLOWED),  # no budget configured
        (REGISTRY.capabilities["studio.note.append"], 1, False, ReasonCode.ALLOWED),  # not a cloud write
    ],
)
def test_the_daily_budget_counts_cloud_writes_only(capability, budget, taken, code) -> None:  # type: ignore[no-untyped-def]
    decision = decide_write_budget(
        capability=capability, budget=budget, token_taken=taken, state=ApprovalState.APPROVED
    )
    assert decision.reason_code is code


def test_the_budget_day_starts_at_local_midnight() -> None:
    late = datetime(2026, 11, 25, 23, 30, tzinfo=PHOENIX)
    assert budget_window_start(late) == datetime(2026, 11, 25, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "approvers", "code"),
    [
        (ActorType.STAFF, ("bob",), ReasonCode.ALLOWED),  # requester + one approver: two people
        (ActorType.AGENT, ("bob",), ReasonCode.APPROVAL_REQUIRED),  # an agent is not a person
        (ActorType.SYSTEM, ("bob",), ReasonCode.APPROVAL_REQUIRED),
        (ActorType.AGENT, ("bob", "carol"), ReasonCode.ALLOWED),
    ],
)
def test_high_risk_executions_need_two_distinct_people(
    kind: ActorType, approvers: tuple[str, ...], code: ReasonCode
) -> None:
    requester = "ops-bot" if kind is not ActorType.STAFF else "alice"
    p = proposal(CLOSE.id, requester=requester, kind=kind, approvers=approvers)
    assert _execute(p, None, CLOSE) is code


def test_the_two_person_rule_keeps_an_agents_high_risk_draft_pending_after_one_approval() -> None:
    drafted = proposal(
        CLOSE.id, requester="ops-bot", kind=ActorType.AGENT, approvers=(), status=Status.PENDING_APPROVAL
    )
    first = decide_approve(
        principal=person("bob"),
        proposal=drafted,
        capability=CLOSE,
        registry_version=REGISTRY.version,
        kill=KillSwitch(),
        rationale="looks right to me",
    )
    assert first.approval_state is ApprovalState.REQUIRED  # recorded, not complete
    by_staff = proposal(CLOSE.id, approvers=(), status=Status.PENDING_APPROVAL)
    second = decide_approve(
        principal=person("bob"),
        proposal=by_staff,
        capability=CLOSE,
        registry_version=REGISTRY.version,
        kill=KillSwitch(),
        rationale="looks right to me",
    )
    assert second.approval_state is ApprovalState.APPROVED
    assert persons_involved(requested_by="a", requester_type=ActorType.HUMAN, approvers=["a", "b"]) == {
        "a",
        "b",
    }


def test_the_registry_declares_write_policies_as_data_and_lints_them() -> None:
    assert REGISTRY.write_policy.daily_cloud_write_budget == 50
    assert CLOSE.two_person
    assert not NOTE.two_person
    assert [str(w) for w in NOTE.allowed_hours] == ["06:00-22:00"]
    text = (
        REGISTRY_TEXT.replace('allowedHours = ["06:00-22:00"]', 'allowedHours = ["6am-10pm"]', 1)
        .replace("dailyCloudWriteBudget = 50", "dailyCloudWriteBudget = 0")
        .replace('twoPersonRisks = ["high", "critical"]', 'twoPersonRisks = ["huge"]')
    )
    codes = {(v.capability_id, v.code) for v in parse_registry_toml(text + "\n").violations}
    assert ("firestore.ops_note.append", "FIELD_INVALID") in codes
    messages = " ".join(v.message for v in parse_registry_toml(text).violations)
    assert "dailyCloudWriteBudget" in messages
    assert "twoPersonRisks" in messages


from pathlib import Path  # noqa: E402

import studio_brain  # noqa: E402

REGISTRY_TEXT = (Path(studio_brain.__file__).parent / "capabilities.toml").read_text(encoding="utf-8")
