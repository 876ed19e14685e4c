"""The DraftStore contract, run against PostgreSQL (table + cooldown trigger) and the in-memory store:
one draft per finding per studio day, a cooldown per rule and subject, newest-first listing,
compare-and-set status changes, and tenants kept apart."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from studio_brain.adapters.memory.drafts_store import InMemoryDraftStore
from studio_brain.adapters.postgres.database import Database
from studio_brain.adapters.postgres.drafts_store import PostgresDraftStore
from studio_brain.domain.drafts import DraftKind, DraftOutcome, DraftStatus, Evidence, Finding, Severity
from studio_brain.domain.errors import InputInvalid
from studio_brain.ports import DraftStore

T = "tenant-a"
U = "tenant-b"
PHOENIX = ZoneInfo("America/Phoenix")
#: 10:00 in Phoenix (UTC-7, no daylight saving)
MORNING = datetime(2026, 11, 20, 17, 0, tzinfo=UTC)


def finding(
    *,
    subject: str = "ops.agentRequestsPending:up",
    cooldown_hours: float = 0.0,
    kind: DraftKind = DraftKind.OPS,
) -> Finding:
    return Finding(
        kind=kind,
        rule_id="ops.anomaly.robust_z" if kind is DraftKind.OPS else f"{kind.value}.cash.low",
        subject=subject,
        severity=Severity.MEDIUM,
        title="agent requests unusually high",
        rationale="30 vs about 4 expected",
        recommendation="Triage the queue.",
        snapshot_date=date(2026, 11, 20),
        evidence=Evidence(
            snapshot_ids=("run-1",), metrics={"ops.agentRequestsPending": 30}, rule_ids=("ops.x",)
        ),
        confidence=0.8,
        cooldown_hours=cooldown_hours,
    )


async def add(
    store: DraftStore, f: Finding, draft_id: str, at: datetime = MORNING, tenant: str = T
) -> DraftOutcome:
    return await store.add(f, tenant_id=tenant, draft_id=draft_id, actor_type="agent", actor_id="ops", at=at)


class DraftStoreContract:
    async def test_a_draft_reads_back_with_its_day_in_the_studios_zone(self, store: DraftStore) -> None:
        late_evening = datetime(2026, 11, 21, 5, 0, tzinfo=UTC)  # still the 20th in Phoenix
        assert await add(store, finding(), "d1", at=late_evening) is DraftOutcome.CREATED
        draft = await store.get(T, "d1")
        assert draft is not None
        assert draft.draft_day == date(2026, 11, 20)
        assert draft.status is DraftStatus.OPEN
        assert draft.evidence["metrics"] == {"ops.agentRequestsPending": 30}
        assert draft.created_at == late_evening
        assert await store.get(U, "d1") is None

    async def test_the_same_finding_on_the_same_studio_day_is_one_draft(self, store: DraftStore) -> None:
        assert await add(store, finding(), "d1") is DraftOutcome.CREATED
        assert await add(store, finding(), "d2", at=MORNING + timedelta(hours=3)) is DraftOutcome.DUPLICATE
        assert await add(store, finding(), "d3", at=MORNING + timedelta(days=1)) is DraftOutcome.CREATED
        assert await add(store, finding(), "d4", tenant=U) is DraftOutcome.CREATED
        assert [d.id for d in await store.list(T, kind=DraftKind.OPS)] == ["d3", "d1"]

    async def test_a_finding_in_its_cooldown_is_refused_until_it_ends(self, store: DraftStore) -> None:
        cooling = finding(cooldown_hours=48)
        assert await add(store, cooling, "d1") is DraftOutcome.CREATED
        assert await add(store, cooling, "d2", at=MORNING + timedelta(days=1)) is DraftOutcome.COOLING_DOWN
        assert (
            await add(
                store, finding(subject="other:up", cooldown_hours=48), "d3", at=MORNING + timedelta(days=1)
            )
            is DraftOutcome.CREATED
        )
        assert (
            await add(store, cooling, "d4", at=MORNING + timedelta(hours=48, seconds=1))
            is DraftOutcome.CREATED
        )

    async def test_listing_is_per_kind_newest_first_and_limited(self, store: DraftStore) -> None:
        for n in range(5):
            await add(store, finding(subject=f"s{n}:up"), f"d{n}", at=MORNING + timedelta(minutes=n))
        assert await add(store, finding(kind=DraftKind.FINANCE), "f1") is DraftOutcome.CREATED
        listed = await store.list(T, kind=DraftKind.OPS, limit=3)
        assert [d.id for d in listed] == ["d4", "d3", "d2"]
        assert [d.id for d in await store.list(T, kind=DraftKind.FINANCE)] == ["f1"]

    async def test_a_status_changes_only_from_the_expected_one(self, store: DraftStore) -> None:
        # the store compares and sets; which changes make sense is the drafts service's business
        await add(store, finding(), "d1")
        later = MORNING + timedelta(hours=1)
        assert await store.set_status(
            T, "d1", expected=DraftStatus.OPEN, to=DraftStatus.NEEDS_REVIEW, at=later
        )
        assert not await store.set_status(
            T, "d1", expected=DraftStatus.OPEN, to=DraftStatus.NEEDS_REVIEW, at=later
        )
        assert not await store.set_status(
            U, "d1", expected=DraftStatus.NEEDS_REVIEW, to=DraftStatus.OPEN, at=later
        )
        draft = await store.get(T, "d1")
        assert draft is not None
        assert (draft.status, draft.updated_at) == (DraftStatus.NEEDS_REVIEW, later)

    async def test_two_simultaneous_status_changes_let_exactly_one_win(self, store: DraftStore) -> None:
        await add(store, finding(), "d1")
        results = await asyncio.gather(
            *(
                store.set_status(T, "d1", expected=DraftStatus.OPEN, to=DraftStatus.NEEDS_REVIEW, at=MORNING)
                for _ in range(5)
            )
        )
        assert sorted(results) == [False, False, False, False, True]

    async def test_an_invalid_finding_is_refused_and_nothing_is_stored(self, store: DraftStore) -> None:
        with pytest.raises(InputInvalid):
            await add(store, finding(cooldown_hours=-1), "d1")
        assert await store.get(T, "d1") is None


class TestInMemoryDraftStore(DraftStoreContract):
    @pytest.fixture
    def store(self) -> DraftStore:
        return InMemoryDraftStore(zone=PHOENIX)


@pytest.mark.postgres
class TestPostgresDraftStore(DraftStoreContract):
    @pytest.fixture
    def store(self, database: Database) -> DraftStore:
        return PostgresDraftStore(database, zone=PHOENIX)
