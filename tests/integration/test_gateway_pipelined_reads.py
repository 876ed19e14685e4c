"""A locked proposal read and the kill switch in one round trip (issue 18), against a real PostgreSQL:
the switch is read after the lock is granted, a failing switch read still fails closed, a failing lock
still raises its own error, and approve / execute refuse as before when the switch cannot be read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from studio_brain.adapters.clock import UUID7Factory
from studio_brain.adapters.postgres.database import Database, libpq_url
from studio_brain.adapters.postgres.event_store import PostgresEventStore
from studio_brain.adapters.postgres.gateway_store import PostgresGatewayStore
from studio_brain.domain.errors import PolicyRefused, StorageError
from studio_brain.domain.policy import KillSwitchEntry
from studio_brain.domain.records import Keyring, MacKey
from tests.contract.test_gateway_store import NOON, T, proposal
from tests.integration.gateway_kit import ALICE, BOB, NOTE, WHY, Kit, build_kit

pytestmark = pytest.mark.postgres

KEYRING = Keyring(current=MacKey(key_id="mk-pipelined", secret=bytes(range(64, 96))))
ON = KillSwitchEntry(scope="*", enabled=True, rationale="storm", updated_by="alice", updated_at=NOON)


@pytest.fixture(params=["keyed", "plain"])
def store(request: pytest.FixtureRequest, database: Database) -> PostgresGatewayStore:
    keyring = KEYRING if request.param == "keyed" else None
    return PostgresGatewayStore(database, PostgresEventStore(database, UUID7Factory()), keyring)


async def saved(store: PostgresGatewayStore) -> None:
    async with store.transaction(T) as tx:
        await tx.insert_proposal(proposal(1))


async def refusal(coro: Any) -> str:
    with pytest.raises(PolicyRefused) as caught:
        await coro
    return caught.value.reason_code


async def test_the_switch_read_with_the_lock_sees_a_switch_committed_while_it_waited(
    store: PostgresGatewayStore, database_url: str
) -> None:
    await saved(store)
    holder = await psycopg.AsyncConnection.connect(libpq_url(database_url))
    try:
        await holder.execute("SELECT set_config('studio_brain.tenant_id', %s, true)", (T,))
        await holder.execute("SELECT 1 FROM gateway_proposals WHERE id = 'p1' FOR UPDATE")

        async def locked_read() -> list[KillSwitchEntry]:
            async with store.transaction(T) as tx:
                assert await tx.get_proposal("p1", lock=True, with_kill_switch=True) == proposal(1)
                return await tx.kill_switch_entries()

        waiting = asyncio.create_task(locked_read())
        await asyncio.sleep(0.3)  # the read now waits for the row lock
        assert not waiting.done()
        async with store.transaction(T) as tx:  # the switch turned on while the reader waits
            await tx.set_kill_switch(ON)
        await holder.commit()
        assert await waiting == [ON]
    finally:
        await holder.close()


async def test_a_failing_switch_read_returns_the_proposal_and_fails_the_switch_closed(
    store: PostgresGatewayStore, database: Database
) -> None:
    await saved(store)
    async with database.connection() as conn:
        await conn.execute("ALTER TABLE gateway_kill_switch RENAME TO gateway_kill_switch_gone")
    read: list[object] = []

    async def locked_then_switch() -> None:
        async with store.transaction(T) as tx:
            read.append(await tx.get_proposal("p1", lock=True, with_kill_switch=True))
            await tx.kill_switch_entries()

    with pytest.raises(StorageError, match="reading the kill switch"):
        await locked_then_switch()
    assert read == [proposal(1)]


@pytest.fixture
async def lock_timeout_database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url, max_size=2, options="-c lock_timeout=200")
    await db.open()
    yield db
    await db.close()


async def test_a_lock_that_cannot_be_had_raises_its_own_error_not_the_switch_s(
    store: PostgresGatewayStore, lock_timeout_database: Database, database_url: str
) -> None:
    await saved(store)
    impatient = PostgresGatewayStore(
        lock_timeout_database, PostgresEventStore(lock_timeout_database, UUID7Factory())
    )
    with psycopg.connect(libpq_url(database_url)) as holder:
        holder.execute("SELECT set_config('studio_brain.tenant_id', %s, true)", (T,))
        holder.execute("SELECT 1 FROM gateway_proposals WHERE id = 'p1' FOR UPDATE")
        with pytest.raises(StorageError) as raised:
            async with impatient.transaction(T) as tx:
                await tx.get_proposal("p1", lock=True, with_kill_switch=True)
        # the lock's own error, translated at the boundary (not the aborted switch read's)
        assert isinstance(raised.value.__cause__, psycopg.errors.LockNotAvailable)


@pytest.fixture
def keyed_kit(database: Database) -> Kit:
    return build_kit(database, keyring=KEYRING)


async def test_approve_refuses_when_the_switch_cannot_be_read(keyed_kit: Kit) -> None:
    created = await keyed_kit.service.create_proposal(ALICE, "studio.note.append", NOTE, WHY)
    async with keyed_kit.pg.connection() as conn:
        await conn.execute("ALTER TABLE gateway_kill_switch RENAME TO gateway_kill_switch_gone")
    assert await refusal(keyed_kit.service.approve(BOB, created.proposal.id, "fine by me")) == (
        "KILL_SWITCH_ACTIVE"
    )


async def test_execute_refuses_when_the_switch_is_on(keyed_kit: Kit) -> None:
    created = await keyed_kit.service.create_proposal(ALICE, "studio.note.append", NOTE, WHY)
    await keyed_kit.service.approve(BOB, created.proposal.id, "fine by me")
    await keyed_kit.service.set_kill_switch(BOB, enabled=True, rationale="storm coming in tonight")
    assert await refusal(keyed_kit.service.execute(BOB, created.proposal.id)) == "KILL_SWITCH_ACTIVE"
    assert await keyed_kit.notes() == 0
