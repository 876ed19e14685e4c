"""The identity store's one-statement transactions (the scope and the statement as one query message, one
implicit transaction: one round trip, issue 18, ADR 0018) commit what succeeded and nothing of what failed,
bind their values as values, and leave the pooled connection as they found it."""

from __future__ import annotations

import psycopg
import pytest
from bench.wire_trips import counting_wire_trips

from studio_brain.adapters.postgres.database import Database, libpq_url
from studio_brain.adapters.postgres.identity_store import PostgresIdentityStore
from studio_brain.domain.errors import StudioBrainError


async def test_a_statement_through_one_round_trip_is_committed(database: Database, database_url: str) -> None:
    store = PostgresIdentityStore(database)
    async with database.connection() as conn:
        await conn.execute("CREATE TABLE rt_probe (tenant_id text, n int)")
        await conn.execute("INSERT INTO rt_probe VALUES ('studio-a', 1)")
    row = await store._one(
        "studio-a",
        "probing",
        "UPDATE rt_probe SET n = n + 1 WHERE tenant_id = current_setting('studio_brain.tenant_id') RETURNING n",
        (),
    )
    assert row == {"n": 2}
    with psycopg.connect(libpq_url(database_url)) as other:
        assert other.execute("SELECT n FROM rt_probe").fetchone() == (2,)


async def test_a_failing_statement_commits_nothing_and_is_translated(
    database: Database, database_url: str
) -> None:
    store = PostgresIdentityStore(database)
    async with database.connection() as conn:
        await conn.execute("CREATE TABLE rt_probe2 (n int CHECK (n < 5))")
        await conn.execute("INSERT INTO rt_probe2 VALUES (4)")
    with pytest.raises(StudioBrainError):
        await store._one("studio-a", "probing", "UPDATE rt_probe2 SET n = n + 10 RETURNING n", ())
    with psycopg.connect(libpq_url(database_url)) as other:
        assert other.execute("SELECT n FROM rt_probe2").fetchone() == (4,)
    # the pooled connection is usable again afterwards
    assert await store._one("studio-a", "probing", "SELECT 1 AS one", ()) == {"one": 1}


async def test_a_firebase_callers_person_is_looked_up_in_one_round_trip(database: Database) -> None:
    store = PostgresIdentityStore(database)
    await store.person_by_firebase_uid("studio-a", "uid-warm")  # the pool's first connection opened
    with counting_wire_trips() as trips:
        assert await store.person_by_firebase_uid("studio-a", "uid-nobody") is None
    # it was three: psycopg's BEGIN and COMMIT inside the pipeline each waited for a Sync of their own
    assert trips.count == 1


async def test_a_connection_goes_back_to_the_pool_in_transactions_after_a_one_round_trip_statement(
    database_url: str,
) -> None:
    async with Database(database_url, max_size=1) as one:
        async with one.connection() as conn:
            await conn.execute("CREATE TABLE rt_probe3 (n int CHECK (n < 5))")
        store = PostgresIdentityStore(one)
        assert await store._one("studio-a", "probing", "SELECT 1 AS one", ()) == {"one": 1}
        with pytest.raises(StudioBrainError):
            await store._one("studio-a", "probing", "INSERT INTO rt_probe3 VALUES (9) RETURNING n", ())

        async def failing_block() -> None:
            async with one.connection() as conn:
                assert not conn.autocommit
                await conn.execute("INSERT INTO rt_probe3 VALUES (1)")
                raise RuntimeError("the block fails")

        # the same (only) connection: a block that fails rolls back everything it did
        with pytest.raises(RuntimeError):
            await failing_block()
        async with one.connection() as conn:
            assert await (await conn.execute("SELECT count(*) AS n FROM rt_probe3")).fetchone() == {"n": 0}


async def test_a_firebase_callers_person_is_looked_up_in_one_query_message(database: Database) -> None:
    store = PostgresIdentityStore(database)
    await store.person_by_firebase_uid("studio-a", "uid-warm")
    with counting_wire_trips() as trips:
        assert await store.person_by_firebase_uid("studio-a", "uid-nobody") is None
    # issue 18, sixth pass: it was four (BEGIN, the scope, the SELECT, COMMIT), each paid for in client CPU
    assert (trips.count, trips.queries) == (1, 1)


async def test_a_value_that_looks_like_sql_is_bound_as_a_value_not_run(database: Database) -> None:
    store = PostgresIdentityStore(database)
    hostile = "x'; DROP TABLE staff_persons; --"
    assert await store.person_by_firebase_uid("studio-a", hostile) is None
    assert await store._one("studio-a", "probing", "SELECT %s::text AS echoed", (hostile,)) == {
        "echoed": hostile
    }
    async with database.connection() as conn:
        assert await (
            await conn.execute("SELECT to_regclass('staff_persons') IS NOT NULL AS kept")
        ).fetchone() == {"kept": True}


async def test_a_one_statement_transaction_refuses_a_query_of_two_statements(database: Database) -> None:
    with pytest.raises(ValueError, match="exactly one statement"):
        await database.tenant_statement("studio-a", "SELECT 1; SELECT 2")


async def test_the_scope_of_a_one_statement_transaction_ends_with_it(database_url: str) -> None:
    async with Database(database_url, max_size=1) as one:
        rows = await one.tenant_statement("studio-a", "SELECT current_setting('studio_brain.tenant_id') AS t")
        assert rows == [{"t": "studio-a"}]
        async with one.connection() as conn:  # the same (only) connection, handed out unscoped
            unscoped = await (
                await conn.execute("SELECT current_setting('studio_brain.tenant_id', true) AS t")
            ).fetchone()
            assert unscoped is not None
            assert unscoped["t"] in ("", None)
            assert not conn.autocommit
