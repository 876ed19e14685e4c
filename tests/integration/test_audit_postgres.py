"""What only the PostgreSQL EventStore can promise: the database itself refuses to change history, appends
join the caller's transaction, and the unique constraints make a fork impossible."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from studio_brain.adapters.clock import UUID7Factory
from studio_brain.adapters.postgres.database import Database
from studio_brain.adapters.postgres.event_store import PostgresCheckpointStore, PostgresEventStore
from studio_brain.domain.audit import (
    GENESIS_HASH,
    ActorType,
    ApprovalState,
    AuditCheckpoint,
    AuditDraft,
    event_hash,
)
from studio_brain.domain.errors import InputInvalid
from studio_brain.domain.hashing import sha256_hex
from tests.fakes import FakeClock

pytestmark = pytest.mark.postgres

T = "tenant-a"


def draft(n: int = 0) -> AuditDraft:
    return AuditDraft(
        tenant_id=T,
        actor_type=ActorType.SYSTEM,
        actor_id="scheduler",
        action="job.snapshot.finished",
        target="local",
        rationale=f"run {n}",
        approval_state=ApprovalState.NOT_APPLICABLE,
        input_hash=sha256_hex(n),
        request_id=f"req-{n}",
        correlation_id="corr",
    )


@pytest.fixture
def store(database: Database) -> PostgresEventStore:
    return PostgresEventStore(database, UUID7Factory())


def superuser(database_url: str) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(database_url, autocommit=True)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET rationale = 'rewritten'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
        "UPDATE audit_checkpoints SET seq = 2",
        "DELETE FROM audit_checkpoints",
        "TRUNCATE audit_checkpoints",
    ],
)
async def test_the_database_refuses_to_change_history_even_for_a_superuser(
    store: PostgresEventStore, database: Database, database_url: str, statement: str
) -> None:
    event = await store.append(draft())
    await PostgresCheckpointStore(database).save(
        AuditCheckpoint(
            tenant_id=T, seq=1, hash=event.hash, at=FakeClock().now(), signature="00", public_key="00"
        )
    )
    with (
        superuser(database_url) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"),
    ):
        conn.execute(statement)
    assert await store.head(T) == event


async def test_update_delete_and_truncate_are_revoked_from_public(database_url: str) -> None:
    with superuser(database_url) as conn:
        rows = conn.execute(
            "SELECT table_name, privilege_type FROM information_schema.role_table_grants"
            " WHERE grantee = 'PUBLIC' AND table_name IN ('audit_events', 'audit_checkpoints')"
        ).fetchall()
    assert not [r for r in rows if r[1] in {"UPDATE", "DELETE", "TRUNCATE"}]


async def test_append_on_joins_the_callers_transaction_and_rolls_back_with_it(
    store: PostgresEventStore, database: Database
) -> None:
    async with database.connection() as conn:
        appended = await store.append_on(conn, draft(1))
        assert appended.seq == 1
        await conn.rollback()
    assert await store.head(T) is None
    again = await store.append(draft(2))
    assert (again.seq, again.prev_hash) == (1, GENESIS_HASH)


async def test_append_on_commits_atomically_with_the_callers_own_write(
    store: PostgresEventStore, database: Database
) -> None:
    async with database.connection() as conn:
        await conn.execute("CREATE TEMP TABLE side_effect (note text) ON COMMIT PRESERVE ROWS")
        await conn.execute("INSERT INTO side_effect VALUES ('proposal approved')")
        appended = await store.append_on(conn, draft(1))
    assert await store.head(T) == appended


async def test_append_on_validates_before_touching_the_transaction(
    store: PostgresEventStore, database: Database
) -> None:
    async with database.connection() as conn:
        with pytest.raises(InputInvalid, match="input_hash"):
            await store.append_on(conn, AuditDraft(**(_fields(draft()) | {"input_hash": "plain text"})))
        cursor = await conn.execute("SELECT 1 AS ok")  # the transaction is still usable
        assert await cursor.fetchone() == {"ok": 1}


async def test_a_second_row_at_the_same_seq_is_refused_by_the_database(
    store: PostgresEventStore, database_url: str
) -> None:
    first = await store.append(draft(1))
    with (
        superuser(database_url) as conn,
        pytest.raises(psycopg.errors.UniqueViolation, match="tenant_id_seq"),
    ):
        conn.execute(
            "INSERT INTO audit_events SELECT 'fork', tenant_id, seq, at, actor_type, actor_id, action,"
            " capability_id, target, rationale, approval_state, input_hash, output_hash, request_id,"
            " correlation_id, metadata, %s, %s FROM audit_events WHERE id = %s",
            (sha256_hex("other parent"), sha256_hex("other"), first.id),
        )


async def test_a_second_successor_of_one_event_is_refused_by_the_database(
    store: PostgresEventStore, database_url: str
) -> None:
    first = await store.append(draft(1))
    with superuser(database_url) as conn, pytest.raises(psycopg.errors.UniqueViolation, match="prev_hash"):
        conn.execute(
            "INSERT INTO audit_events SELECT 'fork', tenant_id, 2, at, actor_type, actor_id, action,"
            " capability_id, target, rationale, approval_state, input_hash, output_hash, request_id,"
            " correlation_id, metadata, prev_hash, %s FROM audit_events WHERE id = %s",
            (sha256_hex("other"), first.id),
        )


async def test_a_plain_string_where_a_hash_belongs_is_refused_by_the_database_too(
    store: PostgresEventStore, database_url: str
) -> None:
    first = await store.append(draft(1))
    with superuser(database_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO audit_events SELECT 'x', tenant_id, 2, at, actor_type, actor_id, action,"
            " capability_id, target, rationale, approval_state, 'not a hash', output_hash, request_id,"
            " correlation_id, metadata, hash, hash FROM audit_events WHERE id = %s",
            (first.id,),
        )


async def test_the_hash_is_computed_from_the_values_as_written_not_a_jsonb_read_back(
    store: PostgresEventStore,
) -> None:
    # JSONB stores keys in its own order (shorter keys first); the read-back must still re-hash alike.
    written = await store.append(
        AuditDraft(**(_fields(draft()) | {"metadata": {"zzz_long_key": 1, "a": {"y": 2, "x": [3, 1.5]}}}))
    )
    stored = await store.head(T)
    assert stored is not None
    assert list(stored.metadata) != list(written.metadata)  # JSONB really did reorder the keys
    assert event_hash(stored) == written.hash == stored.hash


def _fields(d: AuditDraft) -> dict[str, Any]:
    return {f: getattr(d, f) for f in d.__dataclass_fields__}


async def test_at_comes_from_the_database_clock(store: PostgresEventStore, database: Database) -> None:
    async with database.connection() as conn:
        cursor = await conn.execute("SELECT clock_timestamp() AS now")
        row = await cursor.fetchone()
    assert row is not None
    event = await store.append(draft())
    assert abs((event.at - row["now"]).total_seconds()) < 5


async def test_tenants_are_listed_without_scanning_every_row(store: PostgresEventStore) -> None:
    await store.append_many(
        [AuditDraft(**(_fields(draft(n)) | {"tenant_id": f"t{n % 3}x"})) for n in range(9)]
    )
    assert await store.tenants() == ["t0x", "t1x", "t2x"]


async def test_concurrent_appends_share_commits_and_a_cancelled_caller_strands_no_one(
    store: PostgresEventStore,
) -> None:
    tasks = [asyncio.create_task(store.append(draft(n))) for n in range(30)]
    await asyncio.sleep(0)  # let every task queue its draft
    tasks[7].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    events = [e for e in done if not isinstance(e, BaseException)]
    assert len(events) == 29
    head = await store.head(T)
    assert head is not None
    # The cancelled caller's event may or may not have been committed; either way the chain has no gap.
    assert head.seq in (29, 30)
    assert len({e.seq for e in events}) == 29  # no seq handed out twice
    assert len({e.at for e in events}) < 29  # coalesced: fewer transactions (database clock reads) than calls
