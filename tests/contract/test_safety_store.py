"""The SafetyStore and NotificationStore contracts, run against PostgreSQL (tables of migration 0011,
row-level security) and the in-memory stores: onsets replaced per pass, the newest finding per dedupe key,
open findings resolved when their condition is gone, an outbox that takes a message once and whose due rows
are claimed (a second deliverer gets nothing until the lease ends), and tenants kept apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from studio_brain.adapters.memory.safety_store import InMemoryNotificationStore, InMemorySafetyStore
from studio_brain.adapters.postgres.database import Database
from studio_brain.adapters.postgres.safety_store import PostgresNotificationStore, PostgresSafetyStore
from studio_brain.domain.drafts import Severity
from studio_brain.domain.notify import DeliveryStatus, Notification, NotificationKind
from studio_brain.domain.safety import FindingRecord, FindingStatus, RuleKind
from studio_brain.ports.safety import NotificationStore, SafetyStore

T = "tenant-a"
U = "tenant-b"
NOW = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)


def record(
    finding_id: str, *, key: str = "safety.kiln_power_without_firing:21", at: datetime = NOW, tenant: str = T
) -> FindingRecord:
    return FindingRecord(
        id=finding_id,
        tenant_id=tenant,
        rule_id=key.split(":")[0],
        rule_kind=RuleKind.KILN_POWER_WITHOUT_FIRING,
        subject=key.split(":")[1],
        dedupe_key=key,
        severity=Severity.HIGH,
        title="Kiln outlet drawing power with no firing in progress",
        summary="Kiln Room Outlet draws 1480 W and no firing is in progress",
        status=FindingStatus.OPEN,
        cooldown=timedelta(minutes=120),
        onset_at=at,
        detected_at=at,
        last_seen_at=at,
        resolved_at=None,
        evidence={"readings": [{"deviceId": "21", "attributes": {"power": 1480.0}}], "firings": []},
        rules_version="v1",
        rules_hash="0" * 64,
    )


def message(
    notification_id: str, *, dedupe: str = "alert:f1:ops", at: datetime = NOW, tenant: str = T
) -> Notification:
    return Notification(
        id=notification_id,
        tenant_id=tenant,
        dedupe_key=dedupe,
        kind=NotificationKind.ALERT,
        severity=Severity.HIGH,
        target="ops",
        target_display="json://127.0.0.1/hook",
        title="[HIGH] kiln",
        body="body",
        finding_id="f1",
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=at,
        last_error=None,
        created_at=at,
    )


class SafetyStoreContract:
    async def test_onsets_are_replaced_by_each_pass(self, safety: SafetyStore) -> None:
        await safety.save_onsets(T, {"a": NOW, "b": NOW}, NOW)
        await safety.save_onsets(T, {"b": NOW - timedelta(minutes=5)}, NOW)
        assert await safety.onsets(T) == {"b": NOW - timedelta(minutes=5)}
        assert await safety.onsets(U) == {}

    async def test_the_newest_finding_of_a_dedupe_key_is_found_with_its_evidence(
        self, safety: SafetyStore
    ) -> None:
        await safety.add(record("f1", at=NOW - timedelta(hours=3)))
        await safety.add(record("f2"))
        latest = await safety.latest_for(T, "safety.kiln_power_without_firing:21")
        assert latest is not None
        assert latest.id == "f2"
        assert latest.evidence["readings"][0]["attributes"]["power"] == 1480.0
        assert latest.cooldown == timedelta(minutes=120)
        assert await safety.latest_for(U, "safety.kiln_power_without_firing:21") is None

    async def test_open_findings_whose_condition_is_gone_are_resolved(self, safety: SafetyStore) -> None:
        await safety.add(record("f1"))
        await safety.add(record("f2", key="safety.device_stale:31"))
        resolved = await safety.resolve_absent(T, ["safety.device_stale:31"], NOW + timedelta(minutes=1))
        assert [r.id for r in resolved] == ["f1"]
        assert resolved[0].resolved_at == NOW + timedelta(minutes=1)
        assert [r.id for r in await safety.list(T, status="open")] == ["f2"]
        assert await safety.resolve_absent(T, ["safety.device_stale:31"], NOW) == []

    async def test_links_and_touches_are_kept_and_listing_is_newest_first(self, safety: SafetyStore) -> None:
        await safety.add(record("f1", at=NOW - timedelta(minutes=1)))
        await safety.add(record("f2", key="safety.device_stale:31"))
        await safety.link(T, "f1", draft_id="d1", proposal_id="p1")
        await safety.touch(T, "f1", NOW + timedelta(minutes=2))
        rows = await safety.list(T)
        assert [r.id for r in rows] == ["f2", "f1"]
        assert (rows[1].draft_id, rows[1].proposal_id) == ("d1", "p1")
        assert rows[1].last_seen_at == NOW + timedelta(minutes=2)
        assert await safety.list(U) == []


class NotificationStoreContract:
    async def test_a_message_is_taken_once_per_dedupe_key_and_tenant(self, outbox: NotificationStore) -> None:
        assert await outbox.enqueue(message("n1"))
        assert not await outbox.enqueue(message("n2"))
        assert await outbox.enqueue(message("n3", tenant=U))
        assert [n.id for n in await outbox.list(T)] == ["n1"]

    async def test_due_rows_are_claimed_until_their_lease_ends(self, outbox: NotificationStore) -> None:
        await outbox.enqueue(message("n1"))
        await outbox.enqueue(message("n2", dedupe="alert:f2:ops", at=NOW + timedelta(minutes=5)))
        lease = NOW + timedelta(minutes=2)
        [first] = await outbox.due(T, NOW, lease_until=lease)
        assert first.id == "n1"
        assert await outbox.due(T, NOW, lease_until=lease) == []
        later = await outbox.due(T, lease + timedelta(minutes=4), lease_until=lease + timedelta(minutes=6))
        assert sorted(n.id for n in later) == ["n1", "n2"]

    async def test_an_attempt_is_recorded_and_a_sent_message_is_never_due_again(
        self, outbox: NotificationStore
    ) -> None:
        await outbox.enqueue(message("n1"))
        [n] = await outbox.due(T, NOW, lease_until=NOW + timedelta(minutes=2))
        await outbox.record_attempt(
            n, status="pending", attempts=1, next_attempt_at=NOW + timedelta(seconds=30), error="503", at=NOW
        )
        [again] = await outbox.due(T, NOW + timedelta(seconds=31), lease_until=NOW + timedelta(minutes=3))
        assert again.attempts == 1
        assert again.last_error == "503"
        await outbox.record_attempt(
            again, status="sent", attempts=2, next_attempt_at=None, error=None, at=NOW + timedelta(minutes=1)
        )
        assert await outbox.due(T, NOW + timedelta(days=1), lease_until=NOW + timedelta(days=2)) == []
        [row] = await outbox.list(T)
        assert row.status is DeliveryStatus.SENT
        assert row.sent_at == NOW + timedelta(minutes=1)


class TestInMemorySafetyStore(SafetyStoreContract):
    @pytest.fixture
    def safety(self) -> SafetyStore:
        return InMemorySafetyStore()


class TestInMemoryNotificationStore(NotificationStoreContract):
    @pytest.fixture
    def outbox(self) -> NotificationStore:
        return InMemoryNotificationStore()


@pytest.mark.postgres
class TestPostgresSafetyStore(SafetyStoreContract):
    @pytest.fixture
    def safety(self, database: Database) -> SafetyStore:
        return PostgresSafetyStore(database)


@pytest.mark.postgres
class TestPostgresNotificationStore(NotificationStoreContract):
    @pytest.fixture
    def outbox(self, database: Database) -> NotificationStore:
        return PostgresNotificationStore(database)
