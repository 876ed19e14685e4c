"""The two decisions execute and dry-run share (issue 20): which exemption applies, and the throttle —
cooldown and busy decided before the rate token is counted, the rate limit after, in the seed's order."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from studio_brain.domain.audit import ApprovalState
from studio_brain.domain.policy import (
    ReasonCode,
    Throttle,
    applicable_exemption,
    decide_target_free,
    decide_throttle,
    exemption_may_apply,
    rate_limited,
)
from tests.unit.test_policy_decisions import EXEMPTION, NOTE, NOW, SWITCH, approved, proposal

ROBOROCK_LIKE = replace(NOTE, cooldown_seconds=30, exclusive=True)


def test_the_first_covering_exemption_applies_to_a_proposal_waiting_for_approval() -> None:
    other_actor = replace(EXEMPTION, id="e0", actor_id="someone-else")
    chosen = applicable_exemption([other_actor, EXEMPTION], proposal=proposal(), capability=NOTE, now=NOW)
    assert chosen == EXEMPTION


def test_no_exemption_applies_while_an_approval_is_current_or_the_capability_allows_none() -> None:
    current = approved()
    assert not exemption_may_apply(proposal=current, capability=NOTE, now=NOW)
    assert applicable_exemption([EXEMPTION], proposal=current, capability=NOTE, now=NOW) is None
    assert applicable_exemption([EXEMPTION], proposal=proposal(SWITCH), capability=SWITCH, now=NOW) is None
    assert applicable_exemption([EXEMPTION], proposal=proposal(), capability=None, now=NOW) is None


def test_an_expired_approval_lets_an_exemption_apply_again() -> None:
    lapsed = approved(approval_expires_at=NOW - timedelta(seconds=1))
    assert exemption_may_apply(proposal=lapsed, capability=NOTE, now=NOW)
    assert applicable_exemption([EXEMPTION], proposal=lapsed, capability=NOTE, now=NOW) == EXEMPTION


def test_revoked_expired_or_foreign_exemptions_never_apply() -> None:
    for stale in (
        replace(EXEMPTION, revoked_at=NOW),
        replace(EXEMPTION, expires_at=NOW),
        replace(EXEMPTION, tenant_id="t2"),
        replace(EXEMPTION, capability_id=SWITCH.id),
    ):
        assert applicable_exemption([stale], proposal=proposal(), capability=NOTE, now=NOW) is None


def test_cooldown_wins_over_busy_and_both_are_the_throttles_own_answers() -> None:
    state = ApprovalState.APPROVED
    cooling = decide_target_free(
        capability=ROBOROCK_LIKE,
        last_started_at=NOW - timedelta(seconds=10),
        in_flight=1,
        now=NOW,
        state=state,
    )
    busy = decide_target_free(
        capability=ROBOROCK_LIKE,
        last_started_at=NOW - timedelta(seconds=31),
        in_flight=1,
        now=NOW,
        state=state,
    )
    free = decide_target_free(
        capability=ROBOROCK_LIKE,
        last_started_at=NOW - timedelta(seconds=31),
        in_flight=0,
        now=NOW,
        state=state,
    )
    assert (cooling.reason_code, busy.reason_code, free.reason_code) == (
        ReasonCode.COOLDOWN_ACTIVE,
        ReasonCode.TARGET_BUSY,
        ReasonCode.ALLOWED,
    )
    for decided, throttle in (
        (cooling, Throttle(rate_token_taken=True, last_started_at=NOW - timedelta(seconds=10), in_flight=1)),
        (busy, Throttle(rate_token_taken=True, last_started_at=NOW - timedelta(seconds=31), in_flight=1)),
    ):
        assert decide_throttle(capability=ROBOROCK_LIKE, throttle=throttle, now=NOW, state=state) == decided


def test_a_full_rate_bucket_refuses_before_cooldown_and_busy() -> None:
    throttle = Throttle(rate_token_taken=False, last_started_at=NOW, in_flight=3)
    decided = decide_throttle(
        capability=ROBOROCK_LIKE, throttle=throttle, now=NOW, state=ApprovalState.EXEMPT
    )
    assert decided == rate_limited(ROBOROCK_LIKE, ApprovalState.EXEMPT)
    assert decided.reason_code is ReasonCode.RATE_LIMITED
    assert decided.approval_state is ApprovalState.EXEMPT
