"""The EventStore contract, run against the in-memory store and the PostgreSQL store alike."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from studio_brain.adapters.clock import UUID7Factory
from studio_brain.adapters.memory import InMemoryEventStore
from studio_brain.adapters.postgres.database import Database
from studio_brain.adapters.postgres.event_store import PostgresEventStore
from studio_brain.domain.audit import (
    GENESIS_HASH,
    ActorType,
    ApprovalState,
    AuditDraft,
    AuditEvent,
    AuditQuery,
    ChainHead,
    event_hash,
)
from studio_brain.domain.errors import InputInvalid
from studio_brain.domain.hashing import sha256_hex
from studio_brain.ports import EventStore
from tests.fakes import FakeClock

T = "tenant-a"
U = "tenant-b"


def draft(n: int = 0, **changes: Any) -> AuditDraft:
    base = AuditDraft(
        tenant_id=T,
        actor_type=ActorType.AGENT,
        actor_id="ops-swarm",
        action="capability.proposal.created",
        target="local",
        rationale=f"event number {n}",
        approval_state=ApprovalState.REQUIRED,
        input_hash=sha256_hex({"n": n}),
        request_id=f"req-{n}",
        correlation_id="corr-1",
        capability_id="kiln.schedule",
        metadata={"n": n},
    )
    return replace(base, **changes)


async def collect(stream: AsyncIterator[AuditEvent]) -> list[AuditEvent]:
    return [event async for event in stream]


MALFORMED: list[tuple[dict[str, Any], str]] = [
    ({"input_hash": "not-a-hash"}, "input_hash"),
    ({"input_hash": "A" * 64}, "input_hash"),
    ({"output_hash": "abc"}, "output_hash"),
    ({"action": "approved"}, "action"),
    ({"action": "Capability.Approved"}, "action"),
    ({"actor_id": "  "}, "actor_id"),
    ({"tenant_id": ""}, "tenant_id"),
    ({"actor_type": "robot"}, "actor_type"),
    ({"approval_state": "maybe"}, "approval_state"),
    ({"rationale": ""}, "rationale"),
    ({"request_id": "r\x00"}, "request_id"),
    ({"target": "Not A Target"}, "target"),
    ({"metadata": {"big": 2**60}}, "metadata"),
    ({"metadata": {"big": 1e300}}, "metadata"),
    ({"metadata": {"nul": "a\x00b"}}, "metadata"),
    ({"metadata": {"obj": object()}}, "metadata"),
    ({"metadata": ["not", "a", "dict"]}, "metadata"),
]


NONSENSE = [
    AuditQuery(limit=0),
    AuditQuery(after_seq=-1),
    AuditQuery(after_seq=3, newest_first=True),
    AuditQuery(before_seq=3),
    AuditQuery(since=datetime(2026, 1, 1)),  # naive on purpose
]


class TickingClock(FakeClock):
    """Moves a millisecond every time it is read, like time does between appends."""

    def now(self) -> datetime:
        self.advance(0.001)
        return super().now()


class EventStoreContract:
    async def test_the_first_event_of_a_tenant_starts_the_chain_at_genesis(self, store: EventStore) -> None:
        event = await store.append(draft())
        assert event.seq == 1
        assert event.prev_hash == GENESIS_HASH
        assert event.hash == event_hash(event)
        assert event.at.tzinfo is not None

    async def test_appends_form_a_gap_free_linked_chain(self, store: EventStore) -> None:
        events = [await store.append(draft(n)) for n in range(5)]
        assert [e.seq for e in events] == [1, 2, 3, 4, 5]
        for before, after in itertools.pairwise(events):
            assert after.prev_hash == before.hash
            assert after.at >= before.at
        assert len({e.id for e in events}) == 5

    async def test_an_event_reads_back_exactly_as_append_returned_it(self, store: EventStore) -> None:
        written = await store.append(
            draft(
                metadata={
                    "when": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
                    "price": Decimal("12.50"),
                    "ratio": 0.25,
                    "nested": {"list": [1, "two", None, True]},
                }
            )
        )
        assert await store.head(T) == written
        assert (await store.query(T, AuditQuery())).events == [written]
        assert await collect(store.stream(T)) == [written]
        assert event_hash(written) == written.hash

    async def test_metadata_is_stored_as_the_plain_json_that_was_hashed(self, store: EventStore) -> None:
        event = await store.append(
            draft(metadata={"when": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "price": Decimal("12.50")})
        )
        assert event.metadata == {"when": "2026-01-02T03:04:05.000000Z", "price": "12.50"}

    async def test_equivalent_unicode_spellings_are_stored_in_one_form(self, store: EventStore) -> None:
        event = await store.append(draft(rationale="cafe\u0301 kiln", metadata={"note": "cafe\u0301"}))
        assert event.rationale == "caf\u00e9 kiln"
        assert event.metadata == {"note": "caf\u00e9"}
        assert await store.head(T) == event

    async def test_each_tenant_has_its_own_chain(self, store: EventStore) -> None:
        a1 = await store.append(draft(1))
        b1 = await store.append(draft(2, tenant_id=U))
        a2 = await store.append(draft(3))
        assert (a1.seq, b1.seq, a2.seq) == (1, 1, 2)
        assert b1.prev_hash == GENESIS_HASH
        assert a2.prev_hash == a1.hash
        assert await store.tenants() == [T, U]
        assert [e.seq for e in await collect(store.stream(U))] == [1]

    async def test_append_many_seals_drafts_in_order_across_tenants(self, store: EventStore) -> None:
        await store.append(draft(0))
        events = await store.append_many([draft(1), draft(2, tenant_id=U), draft(3)])
        assert [(e.tenant_id, e.seq) for e in events] == [(T, 2), (U, 1), (T, 3)]
        assert events[2].prev_hash == events[0].hash
        stored = await collect(store.stream(T))
        assert stored[1:] == [events[0], events[2]]

    async def test_concurrent_appends_each_get_their_own_event_in_one_gap_free_chain(
        self, store: EventStore
    ) -> None:
        events = await asyncio.gather(*(store.append(draft(n)) for n in range(40)))
        assert [e.rationale for e in events] == [f"event number {n}" for n in range(40)]
        assert sorted(e.seq for e in events) == list(range(1, 41))
        stored = await collect(store.stream(T))
        assert sorted(stored, key=lambda e: e.id) == sorted(events, key=lambda e: e.id)
        for before, after in itertools.pairwise(stored):
            assert after.prev_hash == before.hash

    async def test_append_many_of_nothing_stores_nothing(self, store: EventStore) -> None:
        assert await store.append_many([]) == []
        assert await store.tenants() == []

    async def test_a_malformed_draft_is_refused_naming_the_field_and_nothing_is_stored(
        self, store: EventStore
    ) -> None:
        # One store for the whole matrix: each case is independent because nothing may be stored.
        for changes, complaint in MALFORMED:
            with pytest.raises(InputInvalid, match=complaint):
                await store.append(draft(**changes))
        assert await store.head(T) is None
        assert await store.tenants() == []

    async def test_one_bad_draft_in_a_batch_stores_none_of_it(self, store: EventStore) -> None:
        with pytest.raises(InputInvalid):
            await store.append_many([draft(1), draft(2, input_hash="plain string")])
        assert await store.tenants() == []

    async def test_query_filters_by_action_prefix_on_whole_segments(self, store: EventStore) -> None:
        await store.append(draft(1, action="capability.proposal.approved"))
        await store.append(draft(2, action="capability.proposals.listed"))
        await store.append(draft(3, action="capability.proposal"))
        await store.append(draft(4, action="connector.hubitat.read"))
        found = await store.query(T, AuditQuery(action_prefix="capability.proposal"))
        assert [e.seq for e in found.events] == [1, 3]
        children = await store.query(T, AuditQuery(action_prefix="capability.proposal."))
        assert [e.seq for e in children.events] == [1]
        assert [e.seq for e in (await store.query(T, AuditQuery(action_prefix="capability"))).events] == [
            1,
            2,
            3,
        ]

    async def test_query_filters_by_actor_capability_approval_and_correlation(
        self, store: EventStore
    ) -> None:
        await store.append(draft(1, actor_id="alice", actor_type=ActorType.STAFF))
        await store.append(draft(2, capability_id=None, approval_state=ApprovalState.EXEMPT))
        await store.append(draft(3, correlation_id="corr-9", approval_state=ApprovalState.APPROVED))
        assert [e.seq for e in (await store.query(T, AuditQuery(actor_id="alice"))).events] == [1]
        assert [e.seq for e in (await store.query(T, AuditQuery(capability_id="kiln.schedule"))).events] == [
            1,
            3,
        ]
        exempt = await store.query(T, AuditQuery(approval_state=ApprovalState.EXEMPT))
        assert [e.seq for e in exempt.events] == [2]
        assert [e.seq for e in (await store.query(T, AuditQuery(correlation_id="corr-9"))).events] == [3]
        assert (await store.query(U, AuditQuery())).events == []

    async def test_query_time_range_is_half_open(self, store: EventStore) -> None:
        events = [await store.append(draft(n)) for n in range(4)]
        assert len({e.at for e in events}) == 4
        window = await store.query(T, AuditQuery(since=events[1].at, until=events[3].at))
        assert [e.seq for e in window.events] == [2, 3]

    async def test_keyset_pages_walk_every_event_once_in_both_directions(self, store: EventStore) -> None:
        await store.append_many([draft(n) for n in range(23)])
        seen: list[int] = []
        cursor: int | None = None
        while True:
            page = await store.query(T, AuditQuery(after_seq=cursor, limit=5))
            seen += [e.seq for e in page.events]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == list(range(1, 24))
        backwards: list[int] = []
        before: int | None = None
        while True:
            page = await store.query(T, AuditQuery(newest_first=True, before_seq=before, limit=10))
            backwards += [e.seq for e in page.events]
            if page.next_cursor is None:
                break
            before = page.next_cursor
        assert backwards == list(range(23, 0, -1))

    async def test_a_page_exactly_as_long_as_the_rest_has_no_next_cursor(self, store: EventStore) -> None:
        await store.append_many([draft(n) for n in range(4)])
        page = await store.query(T, AuditQuery(limit=4))
        assert len(page.events) == 4
        assert page.next_cursor is None

    async def test_a_large_limit_is_honoured_without_a_hidden_cap(self, store: EventStore) -> None:
        await store.append_many([draft(n) for n in range(1500)])
        page = await store.query(T, AuditQuery(limit=1400))
        assert len(page.events) == 1400
        assert page.next_cursor == 1400
        assert len(await collect(store.stream(T))) == 1500

    async def test_a_nonsensical_query_is_refused(self, store: EventStore) -> None:
        for query in NONSENSE:
            with pytest.raises(InputInvalid):
                await store.query(T, query)

    async def test_stream_honours_its_seq_bounds(self, store: EventStore) -> None:
        await store.append_many([draft(n) for n in range(10)])
        assert [e.seq for e in await collect(store.stream(T, from_seq=4, to_seq=6))] == [4, 5, 6]
        assert [e.seq for e in await collect(store.stream(T, from_seq=9))] == [9, 10]
        assert await collect(store.stream(U)) == []

    async def test_an_empty_log_has_no_head_and_no_tenants(self, store: EventStore) -> None:
        assert await store.head(T) is None
        assert await store.tenants() == []

    async def test_the_chain_head_names_the_newest_event_of_its_own_tenant_only(
        self, store: EventStore
    ) -> None:
        assert await store.chain_head(T) is None
        await store.append_many([draft(n) for n in range(3)])
        other = await store.append(replace(draft(), tenant_id=U))
        newest = await store.head(T)
        assert newest is not None
        assert await store.chain_head(T) == ChainHead(seq=3, hash=newest.hash)
        assert await store.chain_head(U) == ChainHead(seq=1, hash=other.hash)
        assert await store.chain_head("tenant-c") is None

    async def test_changing_a_returned_event_does_not_change_the_log(self, store: EventStore) -> None:
        event = await store.append(draft(metadata={"k": "v"}))
        event.metadata["k"] = "tampered"
        stored = await store.head(T)
        assert stored is not None
        assert stored.metadata == {"k": "v"}


class TestInMemoryEventStore(EventStoreContract):
    @pytest.fixture
    def store(self) -> EventStore:
        return InMemoryEventStore(TickingClock(), UUID7Factory())


@pytest.mark.postgres
class TestPostgresEventStore(EventStoreContract):
    @pytest.fixture
    def store(self, database: Database) -> EventStore:
        return PostgresEventStore(database, UUID7Factory())


async def test_the_in_memory_store_refuses_a_naive_clock() -> None:
    class NaiveClock(FakeClock):
        def now(self) -> datetime:
            return datetime(2026, 11, 25, 12, 0)  # naive: the point of the test

    store = InMemoryEventStore(NaiveClock(), UUID7Factory())
    with pytest.raises(InputInvalid):
        await store.append(draft())
    assert await store.head(T) is None
