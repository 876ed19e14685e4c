"""The GatewayStore contract (a tenant-scoped unit of work), run against PostgreSQL and the in-memory
store alike: what the gateway service relies on, stated once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from studio_brain.adapters.clock import UUID7Factory
from studio_brain.adapters.memory import InMemoryEventStore, InMemoryGatewayStore
from studio_brain.adapters.postgres.database import Database
from studio_brain.adapters.postgres.event_store import PostgresEventStore
from studio_brain.adapters.postgres.gateway_store import PostgresGatewayStore
from studio_brain.domain.audit import ActorType, ApprovalState, AuditDraft, AuditEvent
from studio_brain.domain.errors import Conflict, InputInvalid, StorageError
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.policy import AgentToken, Exemption, KillSwitchEntry
from studio_brain.domain.proposals import Event, Proposal, Status
from studio_brain.ports import EventStore, GatewayStore
from studio_brain.ports.gateway import ProposalFilter
from tests.fakes import FakeClock

T = "tenant-a"
U = "tenant-b"
NOON = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def proposal(n: int, *, tenant: str = T, at: datetime = NOON, **changes: Any) -> Proposal:
    base = Proposal(
        id=f"p{n}",
        tenant_id=tenant,
        capability_id="studio.note.append",
        registry_version="v1",
        target="local",
        mode="write",
        status=Status.PENDING_APPROVAL,
        requested_by="alice",
        requester_type=ActorType.STAFF,
        input={"text": f"note {n}", "nested": {"list": [1, 2]}},
        input_hash=sha256_hex({"n": n}),
        predicted_effects=[f"append note {n}"],
        predicted_effects_hash=sha256_hex([n]),
        rationale="a reason long enough",
        correlation_id=f"corr-{n}",
        request_id=f"req-{n}",
        created_at=at,
        updated_at=at,
    )
    return replace(base, **changes)


def draft(n: int = 0, *, tenant: str = T, **changes: Any) -> AuditDraft:
    base = AuditDraft(
        tenant_id=tenant,
        actor_type=ActorType.STAFF,
        actor_id="alice",
        action="capability.proposal.created",
        target="local",
        rationale=f"event number {n}",
        approval_state=ApprovalState.REQUIRED,
        input_hash=sha256_hex({"n": n}),
        request_id=f"req-{n}",
        correlation_id="corr-1",
        capability_id="studio.note.append",
        metadata={"n": n},
    )
    return replace(base, **changes)


def exemption(n: int, *, capability: str = "studio.note.append", at: datetime = NOON) -> Exemption:
    return Exemption(
        id=f"e{n}",
        tenant_id=T,
        capability_id=capability,
        justification="routine notes need no approval this week",
        created_by="alice",
        created_at=at,
        expires_at=at + timedelta(days=1),
    )


def token(n: int, *, at: datetime = NOON) -> AgentToken:
    return AgentToken(
        id=f"t{n}",
        tenant_id=T,
        agent_id="ops-swarm",
        token_hash=sha256_hex({"secret": n}),
        scopes=frozenset({"state:read"}),
        created_by="alice",
        created_at=at,
        expires_at=at + timedelta(days=30),
    )


@dataclass
class Backend:
    store: GatewayStore
    events: EventStore

    async def audit(self, tenant: str = T) -> list[AuditEvent]:
        return [e async for e in self.events.stream(tenant)]


async def save(b: Backend, *proposals: Proposal) -> None:
    async with b.store.transaction(proposals[0].tenant_id) as tx:
        for p in proposals:
            await tx.insert_proposal(p)


class RolledBack(Exception):
    """Raised by a test to leave its transaction the way the gateway does after a refusal."""


async def refused_then_rolled_back(
    b: Backend,
    takes: list[tuple[str, datetime, int]],
    *,
    insert: Proposal | None = None,
    then_audit: AuditDraft | None = None,
) -> None:
    async with b.store.transaction(T) as tx:
        if insert is not None:
            await tx.insert_proposal(insert)
        assert await tx.take_rate_tokens(takes, then_audit=then_audit) is False
        raise RolledBack


class GatewayStoreContract:
    # --- the unit of work ------------------------------------------------------------------------------

    async def test_a_change_and_its_audit_row_commit_together(self, backend: Backend) -> None:
        async with backend.store.transaction(T) as tx:
            await tx.insert_proposal(proposal(1))
            await tx.audit(draft(1))
        async with backend.store.transaction(T) as tx:
            assert await tx.get_proposal("p1") == proposal(1)
        assert [e.metadata["n"] for e in await backend.audit()] == [1]

    async def test_leaving_by_an_exception_rolls_back_the_change_and_its_audit_row(
        self, backend: Backend
    ) -> None:
        async def refused() -> None:
            async with backend.store.transaction(T) as tx:
                await tx.insert_proposal(proposal(1))
                await tx.audit(draft(1))
                raise RuntimeError("the use case refused")

        with pytest.raises(RuntimeError):
            await refused()
        async with backend.store.transaction(T) as tx:
            assert await tx.get_proposal("p1") is None
        assert await backend.audit() == []
        assert await backend.store.proposal_tenant("p1") is None

    async def test_audit_with_commit_commits_the_transaction_with_it(self, backend: Backend) -> None:
        async with backend.store.transaction(T) as tx:
            await tx.insert_proposal(proposal(1))
            await tx.audit(draft(1), commit=True)
        async with backend.store.transaction(T) as tx:
            assert await tx.get_proposal("p1") is not None
        assert len(await backend.audit()) == 1

    async def test_a_malformed_audit_draft_is_refused_and_nothing_of_its_transaction_is_stored(
        self, backend: Backend
    ) -> None:
        async def malformed() -> None:
            async with backend.store.transaction(T) as tx:
                await tx.insert_proposal(proposal(1))
                await tx.audit(draft(1, input_hash="not-a-hash"))

        with pytest.raises(InputInvalid):
            await malformed()
        async with backend.store.transaction(T) as tx:
            assert await tx.get_proposal("p1") is None
        assert await backend.audit() == []

    async def test_a_conflict_leaves_the_transaction_unusable(self, backend: Backend) -> None:
        await save(backend, proposal(1))

        async def after_a_conflict() -> None:
            async with backend.store.transaction(T) as tx:
                with pytest.raises(Conflict):
                    await tx.insert_proposal(proposal(1))
                await tx.get_proposal("p1")

        with pytest.raises(StorageError):
            await after_a_conflict()

    # --- update and audit in one step (issue 18: one round trip fewer on PostgreSQL) ------------------

    async def test_insert_and_audit_stores_the_proposal_and_its_row_together(self, backend: Backend) -> None:
        async with backend.store.transaction(T) as tx:
            await tx.insert_and_audit(proposal(1), draft(1))
        async with backend.store.transaction(T) as tx:
            assert await tx.get_proposal("p1") == proposal(1)
        assert [e.metadata["n"] for e in await backend.audit()] == [1]
        assert await backend.store.proposal_tenant("p1") == T

    async def test_insert_and_audit_of_a_taken_id_appends_nothing(self, backend: Backend) -> None:
        await save(backend, proposal(1))

        async def again() -> None:
            async with backend.store.transaction(T) as tx:
                await tx.insert_and_audit(proposal(1, rationale="another reason entirely"), draft(1))

        with pytest.raises(Conflict, match="already exists"):
            await again()
        async with backend.store.transaction(T) as tx:
            assert await tx.get_proposal("p1") == proposal(1)
        assert await backend.audit() == []

    async def test_update_and_audit_stores_the_version_and_its_row_together(self, backend: Backend) -> None:
        await save(backend, proposal(1))
        async with backend.store.transaction(T) as tx:
            await tx.update_and_audit(proposal(1, version=2, status=Status.APPROVED), draft(2))
        async with backend.store.transaction(T) as tx:
            stored = await tx.get_proposal("p1")
        assert stored is not None
        assert (stored.version, stored.status) == (2, Status.APPROVED)
        assert [e.metadata["n"] for e in await backend.audit()] == [2]

    async def test_update_and_audit_of_a_stale_version_appends_nothing(self, backend: Backend) -> None:
        await save(backend, proposal(1))

        async def stale() -> None:
            async with backend.store.transaction(T) as tx:
                await tx.update_and_audit(proposal(1, version=3), draft(3))

        with pytest.raises(Conflict, match="changed underneath"):
            await stale()
        async with backend.store.transaction(T) as tx:
            stored = await tx.get_proposal("p1")
        assert stored is not None
        assert stored.version == 1
        assert await backend.audit() == []

    async def test_update_and_audit_with_a_taken_execution_key_appends_nothing(
        self, backend: Backend
    ) -> None:
        await save(backend, proposal(1, execution_key="k"), proposal(2))

        async def taken() -> None:
            async with backend.store.transaction(T) as tx:
                await tx.update_and_audit(proposal(2, version=2, execution_key="k"), draft(2))

        with pytest.raises(Conflict, match="execution idempotency key"):
            await taken()
        async with backend.store.transaction(T) as tx:
            stored = await tx.get_proposal("p2")
        assert stored is not None
        assert (stored.version, stored.execution_key) == (1, None)
        assert await backend.audit() == []

    async def test_update_and_audit_over_exactly_the_expected_proposal_stores_it(
        self, backend: Backend
    ) -> None:
        await save(backend, proposal(1))
        async with backend.store.transaction(T) as tx:
            await tx.update_and_audit(
                proposal(1, version=2, status=Status.APPROVED), draft(2), expected=proposal(1)
            )
        async with backend.store.transaction(T) as tx:
            stored = await tx.get_proposal("p1")
        assert stored is not None
        assert (stored.version, stored.status) == (2, Status.APPROVED)
        assert [e.metadata["n"] for e in await backend.audit()] == [2]

    async def test_update_and_audit_over_other_content_of_the_expected_version_appends_nothing(
        self, backend: Backend
    ) -> None:
        # the stored row has the version the caller expects but not its content (e.g. edited by hand)
        await save(backend, proposal(1, rationale="what the row holds now"))

        async def over_another() -> None:
            async with backend.store.transaction(T) as tx:
                await tx.update_and_audit(proposal(1, version=2), draft(2), expected=proposal(1))

        with pytest.raises(Conflict, match="changed underneath"):
            await over_another()
        async with backend.store.transaction(T) as tx:
            stored = await tx.get_proposal("p1")
        assert stored is not None
        assert (stored.version, stored.rationale) == (1, "what the row holds now")
        assert await backend.audit() == []

    async def test_update_and_audit_with_a_malformed_draft_changes_nothing(self, backend: Backend) -> None:
        await save(backend, proposal(1))

        async def malformed() -> None:
            async with backend.store.transaction(T) as tx:
                await tx.update_and_audit(proposal(1, version=2), draft(2, input_hash="not-a-hash"))

        with pytest.raises(InputInvalid):
            await malformed()
        async with backend.store.transaction(T) as tx:
            stored = await tx.get_proposal("p1")
        assert stored is not None
        assert stored.version == 1
        assert await backend.audit() == []

    # --- proposals ------------------------------------------------------------------------------------

    async def test_a_proposal_reads_back_equal_and_changing_it_changes_nothing_stored(
        self, backend: Backend
    ) -> None:
        await save(backend, proposal(1))
        async with backend.store.transaction(T) as tx:
            read = await tx.get_proposal("p1", lock=True)
            assert read == proposal(1)
            assert read is not None
            read.input["text"] = "edited in memory"
        async with backend.store.transaction(T) as tx:
            assert await tx.get_proposal("p1") == proposal(1)

    async def test_an_id_or_idempotency_key_is_stored_once(self, backend: Backend) -> None:
        await save(backend, proposal(1, idempotency_key="k"))
        for duplicate in (proposal(1), proposal(2, idempotency_key="k")):
            with pytest.raises(Conflict):
                async with backend.store.transaction(T) as tx:
                    await tx.insert_proposal(duplicate)
        async with backend.store.transaction(T) as tx:
            found = await tx.proposal_by_key("idempotency_key", "k")
            assert found is not None
            assert found.id == "p1"
            assert await tx.proposal_by_key("execution_key", "k") is None

    async def test_an_update_needs_the_next_version_and_a_free_execution_key(self, backend: Backend) -> None:
        await save(backend, proposal(1), proposal(2))
        running = proposal(1).transition(Event.APPROVE, at=NOON, execution_key="x1")
        async with backend.store.transaction(T) as tx:
            await tx.update_proposal(running)
            assert await tx.proposal_by_key("execution_key", "x1") == running
        with pytest.raises(Conflict):
            async with backend.store.transaction(T) as tx:
                await tx.update_proposal(running)  # the stored version moved on
        with pytest.raises(Conflict):
            async with backend.store.transaction(T) as tx:
                await tx.update_proposal(proposal(2).transition(Event.APPROVE, at=NOON, execution_key="x1"))
        async with backend.store.transaction(T) as tx:
            stored = await tx.get_proposal("p2")
            assert stored is not None
            assert stored.version == 1

    async def test_listing_filters_and_pages_newest_first_by_keyset(self, backend: Backend) -> None:
        await save(
            backend,
            *[
                proposal(n, at=NOON + timedelta(minutes=n), requested_by="bob" if n % 2 else "alice")
                for n in range(1, 8)
            ],
        )
        async with backend.store.transaction(T) as tx:
            first = await tx.list_proposals(ProposalFilter(limit=3))
            assert [p.id for p in first] == ["p7", "p6", "p5"]
            last = first[-1]
            rest = await tx.list_proposals(ProposalFilter(limit=10, before=(last.created_at, last.id)))
            assert [p.id for p in rest] == ["p4", "p3", "p2", "p1"]
            bobs = await tx.list_proposals(ProposalFilter(requested_by="bob", limit=10))
            assert [p.id for p in bobs] == ["p7", "p5", "p3", "p1"]
            assert await tx.list_proposals(ProposalFilter(status=Status.EXECUTED)) == []
            assert await tx.list_proposals(ProposalFilter(capability_id="other")) == []

    async def test_replacing_the_proposals_wipes_the_tenant_and_keeps_the_owner_index(
        self, backend: Backend
    ) -> None:
        await save(backend, proposal(1), proposal(2))
        await save(backend, proposal(9, tenant=U))
        async with backend.store.transaction(T) as tx:
            await tx.replace_proposals([proposal(2, rationale="rebuilt from the log"), proposal(3)])
        async with backend.store.transaction(T) as tx:
            assert [p.id for p in await tx.list_proposals(ProposalFilter())] == ["p3", "p2"]
            rebuilt = await tx.get_proposal("p2")
            assert rebuilt is not None
            assert rebuilt.rationale == "rebuilt from the log"
        assert await backend.store.proposal_tenant("p1") == T
        assert await backend.store.proposal_tenant("p3") == T
        async with backend.store.transaction(U) as tx:
            assert [p.id for p in await tx.list_proposals(ProposalFilter())] == ["p9"]

    async def test_a_tenant_sees_only_its_own_rows_but_the_owner_of_an_id_is_known(
        self, backend: Backend
    ) -> None:
        await save(backend, proposal(1))
        async with backend.store.transaction(T) as tx:
            await tx.set_kill_switch(
                KillSwitchEntry(scope="*", enabled=True, rationale="r", updated_by="a", updated_at=NOON)
            )
            await tx.save_exemption(exemption(1))
            await tx.save_agent_token(token(1))
        async with backend.store.transaction(U) as tx:
            assert await tx.get_proposal("p1") is None
            assert await tx.list_proposals(ProposalFilter()) == []
            assert await tx.kill_switch_entries() == []
            assert await tx.exemptions() == []
            assert await tx.get_agent_token("t1") is None
        assert await backend.store.proposal_tenant("p1") == T
        assert await backend.store.proposal_tenant("nope") is None

    # --- kill switch, exemptions, tokens --------------------------------------------------------------

    async def test_kill_switch_entries_are_replaced_per_scope_and_listed_by_scope(
        self, backend: Backend
    ) -> None:
        def entry(scope: str, enabled: bool) -> KillSwitchEntry:
            return KillSwitchEntry(
                scope=scope, enabled=enabled, rationale="storm", updated_by="alice", updated_at=NOON
            )

        async with backend.store.transaction(T) as tx:
            await tx.set_kill_switch(entry("studio.note.append", True))
            await tx.set_kill_switch(entry("*", True))
        async with backend.store.transaction(T) as tx:
            await tx.set_kill_switch(entry("*", False))
            assert await tx.kill_switch_entries() == [entry("*", False), entry("studio.note.append", True)]

    async def test_an_overview_reads_what_its_parts_read_marked_as_the_store_marks_it_unchanged(
        self, backend: Backend
    ) -> None:
        where = ProposalFilter(limit=2)
        await save(backend, proposal(1), proposal(2, at=NOON + timedelta(minutes=1)), proposal(3))
        switch = KillSwitchEntry(scope="*", enabled=True, rationale="storm", updated_by="a", updated_at=NOON)
        async with backend.store.transaction(T) as tx:
            await tx.set_kill_switch(switch)
            await tx.save_exemption(exemption(1))
            await tx.audit(draft(1))
        async with backend.store.transaction(T) as tx:
            overview = await tx.overview(where)
            assert overview.proposals == await tx.list_proposals(where)
            assert overview.kill_switch == [switch] == await tx.kill_switch_entries()
            assert overview.exemptions == [exemption(1)] == await tx.exemptions()
        assert await backend.store.overview_mark(T, where) == overview.mark
        assert await backend.store.overview_mark(T, where) == overview.mark  # reading moves nothing

    async def test_the_overview_mark_moves_with_every_write_it_shows_and_every_audit_event(
        self, backend: Backend
    ) -> None:
        where = ProposalFilter(limit=5)
        await save(backend, proposal(1))
        seen = [await backend.store.overview_mark(T, where)]

        async def moved() -> bool:
            mark = await backend.store.overview_mark(T, where)
            fresh = mark not in seen
            seen.append(mark)
            return fresh

        await save(backend, proposal(2))
        assert await moved()
        async with backend.store.transaction(T) as tx:
            stored = await tx.get_proposal("p1")
            assert stored is not None
            await tx.update_proposal(replace(stored, version=stored.version + 1, rationale="changed reason"))
        assert await moved()
        async with backend.store.transaction(T) as tx:
            switch = KillSwitchEntry(
                scope="*", enabled=True, rationale="storm", updated_by="a", updated_at=NOON
            )
            await tx.set_kill_switch(switch)
        assert await moved()
        async with backend.store.transaction(T) as tx:
            await tx.save_exemption(exemption(1))
        assert await moved()
        async with backend.store.transaction(T) as tx:
            await tx.audit(draft(1))
        assert await moved()
        async with backend.store.transaction(T) as tx:
            await tx.replace_proposals([proposal(1), proposal(2)])  # p1 written back as it was first stored
        assert await moved()
        async with backend.store.transaction(U) as tx:  # another tenant's writes are not this mark's
            await tx.insert_proposal(proposal(9, tenant=U))
        assert not await moved()

    async def test_a_locked_read_with_the_kill_switch_answers_the_switch_as_stored_once(
        self, backend: Backend
    ) -> None:
        on = KillSwitchEntry(scope="*", enabled=True, rationale="storm", updated_by="alice", updated_at=NOON)
        await save(backend, proposal(1))
        async with backend.store.transaction(T) as tx:
            assert await tx.get_proposal("p1", lock=True, with_kill_switch=True) == proposal(1)
            assert await tx.kill_switch_entries() == []
            await tx.set_kill_switch(on)
            # the read along with the lock is used once: a later read sees this transaction's write
            assert await tx.kill_switch_entries() == [on]
        async with backend.store.transaction(T) as tx:
            assert await tx.get_proposal("p1", lock=True, with_kill_switch=True) == proposal(1)
            await tx.set_kill_switch(replace(on, enabled=False))
            # a write of the switch in between makes the read along with the lock stale: read again
            assert await tx.kill_switch_entries() == [replace(on, enabled=False)]
            await tx.set_kill_switch(on)
        async with backend.store.transaction(T) as tx:
            assert await tx.get_proposal("p1", lock=True, with_kill_switch=True) == proposal(1)
            assert await tx.kill_switch_entries() == [on]
        async with backend.store.transaction(T) as tx:
            assert await tx.get_proposal("nope", lock=True, with_kill_switch=True) is None
            assert await tx.kill_switch_entries() == [on]

    async def test_exemptions_list_newest_first_and_only_their_revocation_changes(
        self, backend: Backend
    ) -> None:
        async with backend.store.transaction(T) as tx:
            await tx.save_exemption(exemption(1))
            await tx.save_exemption(exemption(2, at=NOON + timedelta(hours=1)))
            await tx.save_exemption(exemption(3, capability="hubitat.switch.set"))
        revoked = replace(
            exemption(1),
            justification="an attempt to rewrite it",
            revoked_at=NOON + timedelta(hours=2),
            revoked_by="bob",
            revoke_reason="no longer needed",
        )
        async with backend.store.transaction(T) as tx:
            await tx.save_exemption(revoked)
            assert [e.id for e in await tx.exemptions(capability_id="studio.note.append")] == ["e2", "e1"]
            assert len(await tx.exemptions()) == 3
            assert await tx.get_exemption("e1") == replace(revoked, justification=exemption(1).justification)
            assert await tx.get_exemption("nope") is None

    async def test_agent_tokens_list_newest_first_and_only_their_revocation_changes(
        self, backend: Backend
    ) -> None:
        async with backend.store.transaction(T) as tx:
            await tx.save_agent_token(token(1))
            await tx.save_agent_token(token(2, at=NOON + timedelta(minutes=1)))
        revoked = replace(token(1), agent_id="someone-else", revoked_at=NOON, revoked_by="bob")
        async with backend.store.transaction(T) as tx:
            await tx.save_agent_token(revoked)
            assert [t.id for t in await tx.agent_tokens()] == ["t2", "t1"]
            assert await tx.get_agent_token("t1") == replace(revoked, agent_id="ops-swarm")

    # --- throttles ------------------------------------------------------------------------------------

    async def test_rate_tokens_count_up_to_the_limit_of_every_bucket(self, backend: Backend) -> None:
        hour, minute = NOON, NOON
        takes = [("cap:hour", hour, 3), ("cap:minute", minute, 2)]
        for _ in range(2):
            async with backend.store.transaction(T) as tx:
                assert await tx.take_rate_tokens(takes) is True
        # the minute bucket is full: refused, and the caller rolls back what was counted
        with pytest.raises(RolledBack):
            await refused_then_rolled_back(backend, takes)
        with pytest.raises(RolledBack):
            await refused_then_rolled_back(backend, [("cap:zero", NOON, 0)])
        async with backend.store.transaction(T) as tx:
            assert await tx.take_rate_tokens([]) is True
        async with backend.store.transaction(T) as tx:
            buckets = await tx.rate_buckets(limit=10)
            assert sorted((b.bucket, b.count) for b in buckets) == [("cap:hour", 2), ("cap:minute", 2)]
            assert await tx.reset_rate_bucket("cap:minute") == 1
            assert await tx.reset_rate_bucket("cap:minute") == 0
            assert await tx.take_rate_tokens(takes) is True

    async def test_rate_buckets_list_the_newest_window_first_up_to_the_limit(self, backend: Backend) -> None:
        async with backend.store.transaction(T) as tx:
            for minutes in (0, 2, 1):
                await tx.take_rate_tokens([("b", NOON + timedelta(minutes=minutes), 5), ("a", NOON, 5)])
        async with backend.store.transaction(T) as tx:
            listed = [(b.bucket, b.window_start) for b in await tx.rate_buckets(limit=3)]
        assert listed == [
            ("b", NOON + timedelta(minutes=2)),
            ("b", NOON + timedelta(minutes=1)),
            ("a", NOON),
        ]

    async def test_a_refused_rate_token_takes_nothing_once_rolled_back(self, backend: Backend) -> None:
        async with backend.store.transaction(T) as tx:
            assert await tx.take_rate_tokens([("full", NOON, 1)])
        with pytest.raises(RolledBack):
            await refused_then_rolled_back(backend, [("free", NOON, 5), ("full", NOON, 1)])
        async with backend.store.transaction(T) as tx:
            assert [b.bucket for b in await tx.rate_buckets(limit=10)] == ["full"]

    async def test_rate_tokens_then_audit_commit_only_when_every_bucket_counts(
        self, backend: Backend
    ) -> None:
        async with backend.store.transaction(T) as tx:
            await tx.insert_proposal(proposal(1))
            assert await tx.take_rate_tokens([("b", NOON, 1)], then_audit=draft(1))
        with pytest.raises(RolledBack):
            await refused_then_rolled_back(backend, [("b", NOON, 1)], insert=proposal(2), then_audit=draft(2))
        async with backend.store.transaction(T) as tx:
            assert await tx.get_proposal("p1") is not None
            assert await tx.get_proposal("p2") is None
        assert [e.metadata["n"] for e in await backend.audit()] == [1]

    async def test_target_facts_give_the_last_start_and_the_fresh_executions_asked_for(
        self, backend: Backend
    ) -> None:
        executing = [
            proposal(n, status=Status.EXECUTING, updated_at=NOON + timedelta(minutes=n)) for n in (1, 2, 3)
        ]
        await save(backend, *executing, proposal(4, target="hubitat", status=Status.EXECUTING))
        async with backend.store.transaction(T) as tx:
            await tx.mark_target_started("local", NOON + timedelta(minutes=5))
            await tx.mark_target_started("local", NOON)  # an older start does not win
        async with backend.store.transaction(T) as tx:
            facts = await tx.target_facts(
                "local", exclusive=True, cooldown=True, started_after=NOON + timedelta(minutes=1)
            )
            assert facts.last_started_at == NOON + timedelta(minutes=5)
            assert facts.in_flight == 2
            unasked = await tx.target_facts("local", exclusive=False, cooldown=False, started_after=NOON)
            assert (unasked.last_started_at, unasked.in_flight) == (None, 0)
            assert (
                await tx.target_facts("kiln", exclusive=True, cooldown=True, started_after=NOON)
            ).in_flight == 0

    async def test_an_exclusive_target_serialises_the_transactions_that_check_it(
        self, backend: Backend
    ) -> None:
        """Two claims of one exclusive target: the second sees the first one's executing proposal."""
        await save(backend, proposal(1), proposal(2))
        seen: list[int] = []

        async def claim(proposal_id: str) -> None:
            async with backend.store.transaction(T) as tx:
                facts = await tx.target_facts(
                    "local", exclusive=True, cooldown=False, started_after=NOON - timedelta(hours=1)
                )
                seen.append(facts.in_flight)
                if facts.in_flight == 0:
                    current = await tx.get_proposal(proposal_id, lock=True)
                    assert current is not None
                    await asyncio.sleep(0.05)  # let the other claim run into the lock
                    await tx.update_proposal(
                        replace(
                            current, status=Status.EXECUTING, updated_at=NOON, version=current.version + 1
                        )
                    )

        await asyncio.gather(claim("p1"), claim("p2"))
        assert sorted(seen) == [0, 1]

    async def test_a_locked_proposal_is_changed_by_one_transaction_at_a_time(self, backend: Backend) -> None:
        await save(backend, proposal(1))

        async def bump() -> None:
            async with backend.store.transaction(T) as tx:
                current = await tx.get_proposal("p1", lock=True)
                assert current is not None
                await asyncio.sleep(0.01)
                await tx.update_proposal(replace(current, version=current.version + 1))

        await asyncio.gather(*(bump() for _ in range(5)))
        async with backend.store.transaction(T) as tx:
            final = await tx.get_proposal("p1")
        assert final is not None
        assert final.version == 6


class TestInMemoryGatewayStore(GatewayStoreContract):
    @pytest.fixture
    def backend(self) -> Backend:
        events = InMemoryEventStore(FakeClock(NOON), UUID7Factory())
        return Backend(store=InMemoryGatewayStore(events), events=events)


@pytest.mark.postgres
class TestPostgresGatewayStore(GatewayStoreContract):
    @pytest.fixture
    def backend(self, database: Database) -> Backend:
        events = PostgresEventStore(database, UUID7Factory())
        return Backend(store=PostgresGatewayStore(database, events), events=events)
