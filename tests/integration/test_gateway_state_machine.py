"""A Hypothesis state machine over the proposal lifecycle, on the in-memory stores and on real PostgreSQL.

Random sequences of create / approve / reject / cancel / execute / kill switch / exemptions / time
passing, by staff and agents, must keep these true after every step: nothing executes twice; nothing
executes without a valid approval (by someone other than the requester) or an active exemption; every
transition of every proposal has its audit row; and at the end the audit chain verifies.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from studio_brain.adapters.postgres.database import Database
from studio_brain.domain.audit import ApprovalState
from studio_brain.domain.errors import PolicyRefused
from studio_brain.domain.proposals import HAS_RUN, Status
from studio_brain.ports.gateway import ProposalFilter
from tests.fakes import FakeClock
from tests.integration.gateway_kit import Kit, agent, build_kit, staff

pytestmark = pytest.mark.slow
T = TypeVar("T")

PEOPLE = ["alice", "bob", "carol"]


@pytest.mark.parametrize("store", ["memory", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_lifecycle_keeps_its_invariants_under_random_operations(
    store: str, request: pytest.FixtureRequest
) -> None:
    loop = asyncio.new_event_loop()
    database: Database | None = None
    if store == "postgres":
        database = Database(request.getfixturevalue("database_url"), max_size=4)
        loop.run_until_complete(database.open())

    def run(coro: Coroutine[Any, Any, T]) -> T:
        return loop.run_until_complete(coro)

    class Lifecycle(RuleBasedStateMachine):
        proposals = Bundle("proposals")

        def __init__(self) -> None:
            super().__init__()
            self.tenant = f"sm-{uuid.uuid4().hex[:10]}"
            self.kit: Kit = build_kit(database, clock=FakeClock(datetime.now(UTC)))
            self.exemption: str | None = None

        def who(self, name: str) -> Any:
            if name == "bot":
                return agent(
                    "bot",
                    "capability:studio.note.append:propose",
                    "capability:hubitat.switch.set:propose",
                    tenant=self.tenant,
                )
            return staff(name, tenant=self.tenant)

        @rule(
            target=proposals,
            by=st.sampled_from([*PEOPLE, "bot"]),
            capability=st.sampled_from(["studio.note.append", "hubitat.switch.set"]),
        )
        def create(self, by: str, capability: str) -> str:
            data = (
                {"text": "a note"} if capability == "studio.note.append" else {"deviceId": "4", "state": "on"}
            )
            try:
                created = run(
                    self.kit.service.create_proposal(self.who(by), capability, data, "random walk step")
                )
            except PolicyRefused:
                return "refused"
            return created.proposal.id

        @rule(p=proposals, by=st.sampled_from([*PEOPLE, "bot"]))
        def approve(self, p: str, by: str) -> None:
            if p != "refused":
                with contextlib.suppress(PolicyRefused):
                    run(self.kit.service.approve(self.who(by), p, "random approval"))

        @rule(p=proposals, by=st.sampled_from(PEOPLE), how=st.sampled_from(["reject", "cancel"]))
        def close(self, p: str, by: str, how: str) -> None:
            if p != "refused":
                call = self.kit.service.reject if how == "reject" else self.kit.service.cancel
                with contextlib.suppress(PolicyRefused):
                    run(call(self.who(by), p, "random closing"))

        @rule(
            p=proposals,
            by=st.sampled_from([*PEOPLE, "bot"]),
            key=st.sampled_from([None, "k1", "k2"]),
            outcome=st.sampled_from(["ok", "ok", "fail", "connector_timeout"]),
        )
        def execute(self, p: str, by: str, key: str | None, outcome: str) -> None:
            if p == "refused":
                return
            self.kit.hubitat.behaviour = outcome
            with contextlib.suppress(PolicyRefused):
                run(self.kit.service.execute(self.who(by), p, idempotency_key=key))

        @rule(
            target=proposals,
            by=st.sampled_from(PEOPLE),
            approver=st.sampled_from([*PEOPLE, "bot"]),
            capability=st.sampled_from(["studio.note.append", "hubitat.switch.set"]),
        )
        def create_and_approve(self, by: str, approver: str, capability: str) -> str:
            proposal_id = self.create(by, capability)
            self.approve(proposal_id, approver)
            return proposal_id

        @rule(
            change=st.sampled_from(["kill_on", "kill_off", "exempt", "revoke", "10", "40", "3600", "90000"])
        )
        def environment(self, change: str) -> None:
            alice = self.who("alice")
            if change in ("kill_on", "kill_off"):
                run(
                    self.kit.service.set_kill_switch(
                        alice, enabled=change == "kill_on", rationale="random kill switch flip"
                    )
                )
            elif change == "exempt" and self.exemption is None:
                made = run(
                    self.kit.service.create_exemption(
                        alice,
                        capability_id="studio.note.append",
                        justification="random exemption",
                        lifetime=timedelta(hours=1),
                    )
                )
                self.exemption = made.id
            elif change == "revoke" and self.exemption is not None:
                run(self.kit.service.revoke_exemption(alice, self.exemption, "random revocation"))
                self.exemption = None
            elif change.isdigit():
                self.kit.clock.advance(int(change))

        def state(self) -> tuple[list[Any], list[Any]]:
            proposals = run(self.kit.service.list_proposals(self.who("alice"), ProposalFilter(limit=500)))
            events = run(self.kit.audit(self.tenant))
            return proposals, events

        @invariant()
        def nothing_runs_twice_or_unapproved_and_every_transition_is_audited(self) -> None:
            proposals, events = self.state()
            for p in proposals:
                records = [e for e in events if e.metadata.get("proposal", {}).get("id") == p.id]
                assert [r.metadata["proposal"]["version"] for r in records] == list(range(1, p.version + 1))
                starts = [e for e in records if e.action == "capability.proposal.executing"]
                assert len(starts) <= 1
                if p.status in HAS_RUN:
                    assert len(starts) == 1
                    state = starts[0].approval_state
                    assert state in (ApprovalState.APPROVED, ApprovalState.EXEMPT)
                    if state is ApprovalState.APPROVED:
                        assert p.approvals
                        assert all(a.approver_id != p.requested_by for a in p.approvals)
                        assert all(a.approver_id != "bot" for a in p.approvals)
                    else:
                        assert p.exemption_id is not None
                        assert p.capability_id == "studio.note.append"
                    assert p.executed_by != "bot"
            executed_notes = [
                p
                for p in proposals
                if p.capability_id == "studio.note.append" and p.status is Status.EXECUTED
            ]
            assert run(self.kit.notes(self.tenant)) == len(executed_notes)

        def teardown(self) -> None:
            assert run(self.kit.chain_intact(self.tenant))

    try:
        run_state_machine_as_test(
            Lifecycle,
            settings=settings(
                max_examples=15,
                stateful_step_count=25,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
    finally:
        if database is not None:
            loop.run_until_complete(database.close())
        loop.close()
