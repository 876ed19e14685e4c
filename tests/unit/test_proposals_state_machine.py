"""The proposal lifecycle as a transition table, and the lossless record the audit log carries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from studio_brain.domain.audit import ActorType
from studio_brain.domain.errors import Conflict
from studio_brain.domain.proposals import (
    HAS_RUN,
    TERMINAL,
    TRANSITIONS,
    Approval,
    Event,
    Proposal,
    Status,
    binding_hash,
    can,
    from_record,
    next_status,
    to_record,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_terminal_states_have_no_way_out() -> None:
    for (status, _event), _ in TRANSITIONS.items():
        assert status not in TERMINAL


def test_the_only_way_into_executing_is_from_approved_or_an_exempt_pending_proposal() -> None:
    into = {(s, e) for (s, e), t in TRANSITIONS.items() if t is Status.EXECUTING}
    assert into == {
        (Status.APPROVED, Event.START),
        (Status.APPROVED, Event.START_EXEMPT),
        (Status.PENDING_APPROVAL, Event.START_EXEMPT),
    }


def test_nothing_that_has_run_can_start_again() -> None:
    for status in HAS_RUN:
        assert not can(status, Event.START)
        assert not can(status, Event.START_EXEMPT)


@given(st.sampled_from(list(Status)), st.sampled_from(list(Event)))
def test_next_status_follows_the_table_or_refuses(status: Status, event: Event) -> None:
    if (status, event) in TRANSITIONS:
        assert next_status(status, event) is TRANSITIONS[(status, event)]
    else:
        with pytest.raises(Conflict):
            next_status(status, event)


def test_every_status_maps_onto_a_portal_status() -> None:
    assert {s.portal_status for s in Status} <= {
        "draft",
        "pending_approval",
        "approved",
        "rejected",
        "executed",
    }


def test_the_binding_changes_with_any_bound_field() -> None:
    base = {
        "input_hash": "a" * 64,
        "capability_id": "x.y",
        "registry_version": "b" * 64,
        "tenant_id": "t",
        "predicted_effects_hash": "c" * 64,
    }
    first = binding_hash(**base)
    for key in base:
        assert binding_hash(**{**base, key: base[key] + "z"}) != first


@given(text=st.text(max_size=30), approvals=st.integers(min_value=0, max_value=3))
def test_a_proposal_survives_its_record_round_trip(text: str, approvals: int) -> None:
    proposal = Proposal(
        id="p",
        tenant_id="t",
        capability_id="studio.note.append",
        registry_version="v",
        target="local",
        mode="write",
        status=Status.APPROVED,
        requested_by="alice",
        requester_type=ActorType.STAFF,
        input={"text": text},
        input_hash="h",
        predicted_effects=[text],
        predicted_effects_hash="e",
        rationale="because",
        correlation_id="c",
        request_id="r",
        created_at=NOW,
        updated_at=NOW,
        approvals=tuple(
            Approval(approver_id=f"a{i}", approver_type=ActorType.STAFF, at=NOW, rationale="ok", binding="b")
            for i in range(approvals)
        ),
        approval_expires_at=NOW,
    )
    assert from_record(to_record(proposal)) == proposal


def test_an_unknown_outcome_is_settled_only_by_reconciliation_and_never_starts_again() -> None:
    out = {(s, e): t for (s, e), t in TRANSITIONS.items() if s is Status.OUTCOME_UNKNOWN}
    assert out == {
        (Status.OUTCOME_UNKNOWN, Event.RECONCILE_EXECUTED): Status.EXECUTED,
        (Status.OUTCOME_UNKNOWN, Event.RECONCILE_FAILED): Status.FAILED,
    }
    assert Status.OUTCOME_UNKNOWN in HAS_RUN
    assert Status.OUTCOME_UNKNOWN not in TERMINAL
