"""Decision tables for the pure gateway policy: every reason code, and the order checks run in."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from studio_brain.adapters.capability_registry import load_registry
from studio_brain.domain.audit import ActorType, ApprovalState
from studio_brain.domain.capabilities import Capability
from studio_brain.domain.connectors import ConnectorMode
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.identity import AuthMethod, CredentialKind, Principal, break_glass_principal
from studio_brain.domain.policy import (
    ConnectorFacts,
    Decision,
    Exemption,
    KillSwitch,
    ReasonCode,
    Throttle,
    decide_approve,
    decide_cancel,
    decide_create,
    decide_execute,
    decide_exemption,
    decide_reject,
    decide_staff_action,
    decide_submit,
    decide_throttle,
)
from studio_brain.domain.proposals import Approval, Proposal, Status
from studio_brain.domain.reasons import POLICY_REASON_CODES

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
REGISTRY = load_registry(None)
NOTE = REGISTRY.capabilities["studio.note.append"]
SWITCH = REGISTRY.capabilities["hubitat.switch.set"]
READ = REGISTRY.capabilities["hubitat.devices.read"]


def person(actor_id: str, tenant: str = "t1", roles: frozenset[str] = frozenset({"staff"})) -> Principal:
    return Principal(
        tenant_id=tenant, actor_type=ActorType.STAFF, actor_id=actor_id, via=AuthMethod.CLI, roles=roles
    )


def bot(*scopes: str) -> Principal:
    return Principal(
        tenant_id="t1",
        actor_type=ActorType.AGENT,
        actor_id="bot",
        via=AuthMethod.AGENT_TOKEN,
        scopes=frozenset(scopes),
    )


ALICE, BOB = person("alice"), person("bob")


def proposal(cap: Capability = NOTE, **changes: Any) -> Proposal:
    data = {"text": "hello world"}
    base = Proposal(
        id="p1",
        tenant_id="t1",
        capability_id=cap.id,
        registry_version=REGISTRY.version,
        target=cap.target.value,
        mode=cap.mode.value,
        status=Status.PENDING_APPROVAL,
        requested_by="alice",
        requester_type=ActorType.STAFF,
        input=data,
        input_hash=sha256_hex(data),
        predicted_effects=[],
        predicted_effects_hash=sha256_hex([]),
        rationale="a good reason here",
        correlation_id="c",
        request_id="r",
        created_at=NOW,
        updated_at=NOW,
    )
    return replace(base, **changes)


def approved(cap: Capability = NOTE, **changes: Any) -> Proposal:
    p = proposal(cap)
    approval = Approval(
        approver_id="bob", approver_type=ActorType.STAFF, at=NOW, rationale="ok", binding=p.binding()
    )
    fields: dict[str, Any] = {
        "status": Status.APPROVED,
        "approvals": (approval,),
        "approval_state": ApprovalState.APPROVED,
        "approved_at": NOW,
        "approval_expires_at": NOW + timedelta(hours=1),
    }
    return replace(p, **{**fields, **changes})


def execute(p: Proposal, cap: Capability | None = NOTE, **overrides: Any) -> Decision:
    args: dict[str, Any] = {
        "principal": BOB,
        "proposal": p,
        "capability": cap,
        "kill": KillSwitch(),
        "current_input_hash": p.input_hash,
        "current_binding": p.binding(),
        "exemption": None,
        "connector": ConnectorFacts(present=True, mode=ConnectorMode.READ_WRITE),
        "now": NOW,
    }
    args.update(overrides)
    return decide_execute(**args)


EXEMPTION = Exemption(
    id="e1",
    tenant_id="t1",
    capability_id=NOTE.id,
    justification="nightly notes",
    created_by="alice",
    created_at=NOW,
    expires_at=NOW + timedelta(hours=1),
)


def run_create(kwargs: dict[str, Any]) -> Decision:
    args: dict[str, Any] = {
        "principal": ALICE,
        "capability": NOTE,
        "input": {"text": "hi"},
        "rationale": "a good reason here",
        "kill": KillSwitch(),
    }
    args.update(kwargs)
    return decide_create(**args)


CREATE_DECISION_TABLE_CASES: list[tuple[Any, ...]] = [
    ({"capability": None}, ReasonCode.CAPABILITY_UNKNOWN),
    ({"kill": KillSwitch(global_on=True)}, ReasonCode.KILL_SWITCH_ACTIVE),
    ({"kill": KillSwitch(capabilities=frozenset({NOTE.id}))}, ReasonCode.KILL_SWITCH_ACTIVE),
    ({"kill": KillSwitch(unreadable=True)}, ReasonCode.KILL_SWITCH_ACTIVE),
    ({"principal": bot()}, ReasonCode.DELEGATION_SCOPE_MISSING),
    ({"principal": person("x", roles=frozenset())}, ReasonCode.ACTOR_NOT_ELIGIBLE),
    ({"rationale": "too short"}, ReasonCode.RATIONALE_REQUIRED),
    ({"input": {"text": ""}}, ReasonCode.INPUT_INVALID),
    ({"input": {"text": "hi", "sneaky": True}}, ReasonCode.INPUT_INVALID),
    ({}, ReasonCode.ALLOWED),
    ({"principal": bot(NOTE.propose_scope())}, ReasonCode.ALLOWED),
]


@pytest.mark.parametrize(
    ("kwargs", "code"),
    CREATE_DECISION_TABLE_CASES,
)
def test_create_decision_table(kwargs: dict[str, Any], code: ReasonCode) -> None:
    decision = run_create(kwargs)
    assert decision.reason_code is code
    assert decision.allowed is (code is ReasonCode.ALLOWED)


def test_the_kill_switch_never_blocks_reads() -> None:
    decision = decide_create(
        principal=ALICE,
        capability=READ,
        input={},
        rationale="read the devices",
        kill=KillSwitch(global_on=True),
    )
    assert decision.allowed


def run_approve(principal: Principal, p: Proposal, kwargs: dict[str, Any]) -> Decision:
    args: dict[str, Any] = {
        "principal": principal,
        "proposal": p,
        "capability": NOTE,
        "registry_version": REGISTRY.version,
        "kill": KillSwitch(),
        "rationale": "reviewed and fine",
    }
    args.update(kwargs)
    return decide_approve(**args)


APPROVE_DECISION_TABLE_CASES: list[tuple[Any, ...]] = [
    (person("bob", tenant="t2"), proposal(), {}, ReasonCode.TENANT_MISMATCH),
    (BOB, proposal(), {"capability": None}, ReasonCode.CAPABILITY_UNKNOWN),
    (BOB, proposal(), {"kill": KillSwitch(global_on=True)}, ReasonCode.KILL_SWITCH_ACTIVE),
    (bot(NOTE.propose_scope()), proposal(), {}, ReasonCode.APPROVER_NOT_ELIGIBLE),
    (person("y", roles=frozenset()), proposal(), {}, ReasonCode.APPROVER_NOT_ELIGIBLE),
    (BOB, proposal(status=Status.EXECUTED), {}, ReasonCode.ALREADY_EXECUTED),
    (BOB, proposal(status=Status.DRAFT), {}, ReasonCode.INVALID_TRANSITION),
    (ALICE, proposal(), {}, ReasonCode.SELF_APPROVAL_FORBIDDEN),
    (
        BOB,
        proposal(
            approvals=(
                Approval(
                    approver_id="bob", approver_type=ActorType.STAFF, at=NOW, rationale="x", binding="b"
                ),
            )
        ),
        {},
        ReasonCode.APPROVER_NOT_ELIGIBLE,
    ),
    (BOB, proposal(registry_version="0" * 64), {}, ReasonCode.APPROVAL_PAYLOAD_MISMATCH),
    (BOB, proposal(), {"rationale": "ok"}, ReasonCode.RATIONALE_REQUIRED),
    # issue 11: the break-glass admin token is not a person; a personal token acts within its scopes
    (break_glass_principal("t1"), proposal(), {}, ReasonCode.ADMIN_TOKEN_CANNOT_APPROVE),
    (
        replace(
            BOB, person_id="bob", credential_kind=CredentialKind.PERSONAL_TOKEN, scopes=frozenset({"read"})
        ),
        proposal(),
        {},
        ReasonCode.PERSONAL_TOKEN_SCOPE_MISSING,
    ),
    (BOB, proposal(), {}, ReasonCode.ALLOWED),
]


@pytest.mark.parametrize(
    ("principal", "p", "kwargs", "code"),
    APPROVE_DECISION_TABLE_CASES,
)
def test_approve_decision_table(
    principal: Principal, p: Proposal, kwargs: dict[str, Any], code: ReasonCode
) -> None:
    assert run_approve(principal, p, kwargs).reason_code is code


EXECUTE_DECISION_TABLE_CASES: list[tuple[Any, ...]] = [
    (approved(), {"capability": None}, ReasonCode.CAPABILITY_UNKNOWN),
    (approved(), {"kill": KillSwitch(global_on=True)}, ReasonCode.KILL_SWITCH_ACTIVE),
    (approved(), {"principal": person("bob", tenant="t2")}, ReasonCode.TENANT_MISMATCH),
    (approved(status=Status.EXECUTED), {}, ReasonCode.ALREADY_EXECUTED),
    (approved(), {"principal": break_glass_principal("t1")}, ReasonCode.BREAK_GLASS_NOT_ALLOWED),
    (approved(status=Status.OUTCOME_UNKNOWN), {}, ReasonCode.ALREADY_EXECUTED),
    (approved(status=Status.REJECTED), {}, ReasonCode.INVALID_TRANSITION),
    (approved(), {"principal": bot(NOTE.propose_scope())}, ReasonCode.ACTOR_NOT_ELIGIBLE),
    (approved(), {"principal": person("z", roles=frozenset())}, ReasonCode.ACTOR_NOT_ELIGIBLE),
    (proposal(), {}, ReasonCode.APPROVAL_REQUIRED),
    (approved(), {"now": NOW + timedelta(hours=2)}, ReasonCode.APPROVAL_EXPIRED),
    (approved(), {"current_binding": "f" * 64}, ReasonCode.APPROVAL_PAYLOAD_MISMATCH),
    (approved(), {"current_input_hash": "e" * 64}, ReasonCode.APPROVAL_PAYLOAD_MISMATCH),
    (approved(), {"connector": ConnectorFacts(present=False)}, ReasonCode.ADAPTER_MISSING),
    (
        approved(),
        {"connector": ConnectorFacts(present=True, mode=ConnectorMode.READ_ONLY)},
        ReasonCode.CONNECTOR_READ_ONLY,
    ),
    (approved(), {}, ReasonCode.ALLOWED),
    (proposal(), {"exemption": EXEMPTION}, ReasonCode.ALLOWED),
    (proposal(), {"exemption": replace(EXEMPTION, revoked_at=NOW)}, ReasonCode.APPROVAL_REQUIRED),
    (
        proposal(),
        {"exemption": replace(EXEMPTION, actor_id="someone-else")},
        ReasonCode.APPROVAL_REQUIRED,
    ),
    (
        approved(),
        {
            "now": NOW + timedelta(hours=2),
            "exemption": replace(EXEMPTION, expires_at=NOW + timedelta(hours=3)),
        },
        ReasonCode.ALLOWED,
    ),
]


@pytest.mark.parametrize(
    ("p", "kwargs", "code"),
    EXECUTE_DECISION_TABLE_CASES,
)
def test_execute_decision_table(p: Proposal, kwargs: dict[str, Any], code: ReasonCode) -> None:
    assert execute(p, **kwargs).reason_code is code


def test_execute_checks_kill_switch_before_tenant_before_approval() -> None:
    stranger = person("bob", tenant="t2")
    assert (
        execute(proposal(), kill=KillSwitch(global_on=True), principal=stranger).reason_code
        is ReasonCode.KILL_SWITCH_ACTIVE
    )
    assert execute(proposal(), principal=stranger).reason_code is ReasonCode.TENANT_MISMATCH


def test_an_exemption_never_covers_a_high_risk_capability() -> None:
    p = proposal(SWITCH, input={"deviceId": "1", "state": "on"})
    p = replace(p, input_hash=sha256_hex(p.input))
    exemption = replace(EXEMPTION, capability_id=SWITCH.id)
    assert (
        execute(
            p, SWITCH, exemption=exemption, current_input_hash=p.input_hash, current_binding=p.binding()
        ).reason_code
        is ReasonCode.APPROVAL_REQUIRED
    )


def test_an_exempt_execution_reports_the_exempt_approval_state() -> None:
    assert execute(proposal(), exemption=EXEMPTION).approval_state is ApprovalState.EXEMPT


def run_throttle(throttle: Throttle) -> Decision:
    return decide_throttle(capability=SWITCH, throttle=throttle, now=NOW, state=ApprovalState.APPROVED)


THROTTLE_DECISION_TABLE_IN_ORDER_RATE_COOLDOWN_BUSY_CASES: list[tuple[Any, ...]] = [
    (Throttle(rate_token_taken=False, last_started_at=None, in_flight=0), ReasonCode.RATE_LIMITED),
    (
        Throttle(rate_token_taken=True, last_started_at=NOW - timedelta(seconds=10), in_flight=0),
        ReasonCode.COOLDOWN_ACTIVE,
    ),
    (
        Throttle(rate_token_taken=True, last_started_at=NOW - timedelta(seconds=31), in_flight=1),
        ReasonCode.TARGET_BUSY,
    ),
    (Throttle(rate_token_taken=False, last_started_at=NOW, in_flight=1), ReasonCode.RATE_LIMITED),
    (
        Throttle(rate_token_taken=True, last_started_at=NOW - timedelta(seconds=31), in_flight=0),
        ReasonCode.ALLOWED,
    ),
]


@pytest.mark.parametrize(
    ("throttle", "code"),
    THROTTLE_DECISION_TABLE_IN_ORDER_RATE_COOLDOWN_BUSY_CASES,
)
def test_throttle_decision_table_in_order_rate_cooldown_busy(throttle: Throttle, code: ReasonCode) -> None:
    assert run_throttle(throttle).reason_code is code


def test_a_non_exclusive_capability_ignores_in_flight_runs() -> None:
    throttle = Throttle(rate_token_taken=True, last_started_at=None, in_flight=3)
    assert decide_throttle(capability=NOTE, throttle=throttle, now=NOW, state=ApprovalState.APPROVED).allowed


def run_exemption(kwargs: dict[str, Any]) -> Decision:
    args: dict[str, Any] = {
        "principal": ALICE,
        "capability": NOTE,
        "justification": "nightly notes from cron",
        "lifetime": timedelta(hours=24),
    }
    args.update(kwargs)
    return decide_exemption(**args)


EXEMPTION_DECISION_TABLE_CASES: list[tuple[Any, ...]] = [
    ({"capability": None}, ReasonCode.CAPABILITY_UNKNOWN),
    ({"principal": bot()}, ReasonCode.ACTOR_NOT_ELIGIBLE),
    ({"capability": SWITCH}, ReasonCode.EXEMPTION_FORBIDDEN),
    ({"capability": REGISTRY.capabilities["roborock.clean.start"]}, ReasonCode.EXEMPTION_FORBIDDEN),
    ({"capability": REGISTRY.capabilities["firestore.ops_note.append"]}, ReasonCode.EXEMPTION_FORBIDDEN),
    ({"justification": "because"}, ReasonCode.RATIONALE_REQUIRED),
    ({"lifetime": timedelta(hours=73)}, ReasonCode.INPUT_INVALID),
    ({"lifetime": timedelta(0)}, ReasonCode.INPUT_INVALID),
    ({}, ReasonCode.ALLOWED),
]


@pytest.mark.parametrize(
    ("kwargs", "code"),
    EXEMPTION_DECISION_TABLE_CASES,
)
def test_exemption_decision_table(kwargs: dict[str, Any], code: ReasonCode) -> None:
    assert run_exemption(kwargs).reason_code is code


REJECT_AND_CANCEL_DECISION_TABLE_CASES: list[tuple[Any, ...]] = [
    (decide_reject, BOB, proposal(), ReasonCode.ALLOWED),
    (decide_reject, bot(), proposal(), ReasonCode.APPROVER_NOT_ELIGIBLE),
    (decide_reject, person("bob", tenant="t2"), proposal(), ReasonCode.TENANT_MISMATCH),
    (decide_reject, BOB, proposal(status=Status.EXECUTED), ReasonCode.ALREADY_EXECUTED),
    (decide_reject, BOB, approved(), ReasonCode.INVALID_TRANSITION),
    (decide_cancel, ALICE, approved(), ReasonCode.ALLOWED),
    (decide_cancel, bot(), proposal(), ReasonCode.ACTOR_NOT_ELIGIBLE),
    (decide_cancel, ALICE, proposal(status=Status.EXECUTING), ReasonCode.ALREADY_EXECUTED),
    (decide_cancel, ALICE, proposal(status=Status.CANCELLED), ReasonCode.INVALID_TRANSITION),
]


@pytest.mark.parametrize(
    ("decide", "principal", "p", "code"),
    REJECT_AND_CANCEL_DECISION_TABLE_CASES,
)
def test_reject_and_cancel_decision_table(
    decide: Any, principal: Principal, p: Proposal, code: ReasonCode
) -> None:
    assert decide(principal=principal, proposal=p, rationale="reason enough here").reason_code is code


def test_submit_and_staff_actions() -> None:
    assert decide_submit(principal=ALICE, proposal=proposal(status=Status.DRAFT)).allowed
    assert decide_submit(principal=ALICE, proposal=proposal()).reason_code is ReasonCode.INVALID_TRANSITION
    assert (
        decide_submit(
            principal=bot(), proposal=proposal(status=Status.DRAFT, requested_by="alice")
        ).reason_code
        is ReasonCode.ACTOR_NOT_ELIGIBLE
    )
    assert (
        decide_staff_action(principal=bot(), rationale="long enough reason").reason_code
        is ReasonCode.ACTOR_NOT_ELIGIBLE
    )
    assert decide_staff_action(principal=ALICE, rationale="no").reason_code is ReasonCode.RATIONALE_REQUIRED


def test_the_decision_tables_produce_every_reason_code_the_policy_can_give() -> None:
    # Re-run every row of the tables above and collect what the decisions actually returned: a policy code
    # that no decision produces (or a table row that stopped producing its code) fails here.
    produced: set[ReasonCode] = set()
    produced |= {run_create(kwargs).reason_code for kwargs, _ in CREATE_DECISION_TABLE_CASES}
    produced |= {
        run_approve(who, p, kwargs).reason_code for who, p, kwargs, _ in APPROVE_DECISION_TABLE_CASES
    }
    produced |= {execute(p, **kwargs).reason_code for p, kwargs, _ in EXECUTE_DECISION_TABLE_CASES}
    produced |= {
        run_throttle(throttle).reason_code
        for throttle, _ in THROTTLE_DECISION_TABLE_IN_ORDER_RATE_COOLDOWN_BUSY_CASES
    }
    produced |= {run_exemption(kwargs).reason_code for kwargs, _ in EXEMPTION_DECISION_TABLE_CASES}
    produced |= {
        decide(principal=who, proposal=p, rationale="reason enough here").reason_code
        for decide, who, p, _ in REJECT_AND_CANCEL_DECISION_TABLE_CASES
    }
    # the gateway (not this module) refuses a reused idempotency key: it needs the stored proposal
    expected = POLICY_REASON_CODES - {ReasonCode.IDEMPOTENCY_KEY_REUSED}
    assert sorted(expected - produced) == []
    assert produced <= POLICY_REASON_CODES
