"""Database.tenant_connection (issue 18): the tenant scope rides the transaction's first statement, no
statement runs unscoped, a connection that died in the pool is never handed to a transaction, and one
that dies in the first exchange commits nothing and is reported as DatabaseUnavailable."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from bench.wire_trips import counting_wire_trips

from studio_brain.adapters.postgres.database import Database, commit_in_pipeline, libpq_url
from studio_brain.domain.errors import DatabaseUnavailable


def terminate_pooled_backends(database_url: str) -> int:
    """pg_terminate_backend every other backend of the test database and wait until they have exited
    (the call only signals them: until a backend exits, its connection is not dead yet)."""
    with psycopg.connect(libpq_url(database_url), autocommit=True) as admin:
        others = (
            "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend'"
        )
        row = admin.execute(f"SELECT count(pg_terminate_backend(pid)) {others}").fetchone()
        assert row is not None
        for _ in range(200):
            left = admin.execute(f"SELECT count(*) {others}").fetchone()
            if left is not None and left[0] == 0:
                break
            admin.execute("SELECT pg_sleep(0.01)")
        return int(row[0])


async def scope_of(conn: Any) -> Any:
    row = await (await conn.execute("SELECT current_setting('studio_brain.tenant_id', true) AS t")).fetchone()
    return row["t"]


async def test_the_transaction_is_scoped_to_the_tenant_and_committed(
    database: Database, database_url: str
) -> None:
    async with database.connection() as conn:
        await conn.execute("CREATE TABLE tc_probe (n int)")
    async with database.tenant_connection("studio-a") as conn:
        row = await (await conn.execute("SELECT current_setting('studio_brain.tenant_id') AS t")).fetchone()
        assert row == {"t": "studio-a"}
        await conn.execute("INSERT INTO tc_probe VALUES (1)")

    async def failing_use_case() -> None:
        async with database.tenant_connection("studio-a") as conn:
            await conn.execute("INSERT INTO tc_probe VALUES (2)")
            raise RuntimeError("the use case failed")

    with pytest.raises(RuntimeError):
        await failing_use_case()
    with psycopg.connect(libpq_url(database_url)) as other:
        assert other.execute("SELECT n FROM tc_probe ORDER BY n").fetchall() == [(1,)]


async def test_a_connection_that_died_in_the_pool_is_replaced_before_the_transaction_starts(
    database: Database, database_url: str
) -> None:
    async with database.tenant_connection("studio-a") as conn:
        await conn.execute("SELECT 1")  # the pool now holds a connection that was used
    assert terminate_pooled_backends(database_url) >= 1
    for _ in range(3):  # every pooled connection is dead now; each transaction still gets a live one
        async with database.tenant_connection("studio-b") as conn:
            assert await scope_of(conn) == "studio-b"


async def test_every_connection_of_a_full_pool_dying_together_costs_no_transaction(
    database: Database, database_url: str
) -> None:
    async def hold(release: asyncio.Event) -> None:
        async with database.tenant_connection("studio-a") as conn:
            await conn.execute("SELECT 1")
            await release.wait()

    release = asyncio.Event()
    holders = [asyncio.create_task(hold(release)) for _ in range(10)]
    await asyncio.sleep(0.5)
    release.set()
    await asyncio.gather(*holders)  # ten used connections back in the pool (its maximum)
    assert terminate_pooled_backends(database_url) >= 10
    async with database.tenant_connection("studio-b") as conn:
        assert await scope_of(conn) == "studio-b"


async def test_the_scope_goes_out_with_the_first_statement_in_one_round_trip(database: Database) -> None:
    async with database.tenant_connection("studio-a") as conn:
        await conn.execute("SELECT 1")  # warm: the pool has a checked connection
    async with database.tenant_connection("studio-a") as conn:
        before = conn.pgconn.transaction_status
        assert before == psycopg.pq.TransactionStatus.IDLE  # nothing was sent on checkout
        assert await scope_of(conn) == "studio-a"


async def test_the_scope_is_set_again_after_a_commit_and_after_a_rollback_in_the_block(
    database: Database,
) -> None:
    async with database.tenant_connection("studio-a") as conn:
        await conn.execute("SELECT 1")
        await conn.commit()
        assert await scope_of(conn) == "studio-a"
        await conn.rollback()
        assert await scope_of(conn) == "studio-a"
    async with database.connection() as plain:  # a plain connection of the same pool carries no scope
        assert await scope_of(plain) in (None, "")


async def test_a_named_server_cursor_opened_first_in_the_block_runs_scoped(database: Database) -> None:
    async with (
        database.tenant_connection("studio-a") as conn,
        conn.cursor("first_of_the_block") as cursor,
    ):
        await cursor.execute("SELECT current_setting('studio_brain.tenant_id', true) AS t")
        row = await cursor.fetchone()
    assert row is not None
    assert row["t"] == "studio-a"


async def test_the_scope_rides_a_pipeline_the_caller_opened(database: Database) -> None:
    async with database.tenant_connection("studio-a") as conn:
        async with conn.pipeline():
            cursor = await conn.execute("SELECT current_setting('studio_brain.tenant_id', true) AS t")
            await commit_in_pipeline(conn)
        assert await cursor.fetchone() == {"t": "studio-a"}


async def test_the_first_statement_of_a_block_is_one_round_trip_and_opens_the_transaction(
    database: Database,
) -> None:
    async with database.tenant_connection("studio-a") as conn:
        await conn.execute("SELECT 1")  # warm: the pool has a checked connection
    async with database.tenant_connection("studio-a") as conn:
        with counting_wire_trips() as trips:
            assert await scope_of(conn) == "studio-a"
        # BEGIN, the scope and the statement share one Sync (psycopg's own BEGIN would wait for one first)
        assert trips.count == 1
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS


async def test_the_statements_of_a_block_run_in_one_transaction(database: Database) -> None:
    async with database.tenant_connection("studio-a") as conn:
        first = await (await conn.execute("SELECT txid_current() AS x")).fetchone()
        second = await (await conn.execute("SELECT txid_current() AS x")).fetchone()
        assert first == second
        await conn.commit()
        third = await (await conn.execute("SELECT txid_current() AS x")).fetchone()
    assert first is not None
    assert third is not None
    assert third["x"] != first["x"]  # a COMMIT ends it; the next statement begins another


async def test_a_commit_inside_a_pipeline_of_a_tenant_block_is_refused_with_the_way_to_do_it(
    database: Database,
) -> None:
    async def commit_inside_the_pipeline() -> None:
        async with database.tenant_connection("studio-a") as conn, conn.pipeline():
            await conn.execute("SELECT 1")
            await conn.commit()

    with pytest.raises(psycopg.ProgrammingError, match="commit_in_pipeline"):
        await commit_inside_the_pipeline()


async def test_a_tenant_blocks_connection_goes_back_to_the_pool_in_transaction_mode(
    database: Database,
) -> None:
    async with database.tenant_connection("studio-a") as conn:
        assert conn.autocommit  # the block's BEGIN is its own (ADR 0017)
        await conn.execute("SELECT 1")
    assert not conn.autocommit

    used: list[Any] = []

    async def failing() -> None:
        async with database.tenant_connection("studio-a") as conn:
            used.append(conn)
            await conn.execute("SELECT 1/0")

    with pytest.raises(psycopg.errors.DivisionByZero):
        await failing()
    assert not used[0].autocommit
    async with database.connection() as plain:  # what the pool hands out: a transaction, not autocommit
        assert not plain.autocommit
        await plain.execute("SELECT 1")
        assert plain.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS


async def test_a_failing_first_statement_raises_its_own_error_and_commits_nothing(
    database: Database, database_url: str
) -> None:
    async with database.connection() as conn:
        await conn.execute("CREATE TABLE tc_unique (n int PRIMARY KEY)")
        await conn.execute("INSERT INTO tc_unique VALUES (1)")
    with pytest.raises(psycopg.errors.UniqueViolation):
        async with database.tenant_connection("studio-a") as conn:
            await conn.execute("INSERT INTO tc_unique VALUES (1)")
    with psycopg.connect(libpq_url(database_url)) as other:
        assert other.execute("SELECT count(*) FROM tc_unique").fetchone() == (1,)
    async with database.tenant_connection("studio-a") as conn:  # the connection is usable again
        assert await scope_of(conn) == "studio-a"


async def test_a_connection_dying_in_the_first_exchange_commits_nothing_and_is_unavailable(
    database: Database, database_url: str
) -> None:
    async with database.connection() as conn:
        await conn.execute("CREATE TABLE tc_lost (n int)")
    with pytest.raises(DatabaseUnavailable) as raised:
        async with database.tenant_connection("studio-a") as conn:
            await conn.execute("INSERT INTO tc_lost SELECT 1 FROM pg_terminate_backend(pg_backend_pid())")
    assert isinstance(raised.value.__cause__, psycopg.OperationalError)
    with psycopg.connect(libpq_url(database_url)) as other:
        assert other.execute("SELECT count(*) FROM tc_lost").fetchone() == (0,)
    async with database.tenant_connection("studio-b") as conn:  # the dead one was discarded
        assert await scope_of(conn) == "studio-b"


async def test_a_commit_queued_in_a_pipeline_commits_with_the_blocks_own_sync_and_rescopes_the_next_transaction(
    database: Database, database_url: str
) -> None:
    async with database.connection() as conn:
        await conn.execute("CREATE TABLE tc_queued (n int)")
    async with database.tenant_connection("studio-a") as conn:
        await conn.execute("INSERT INTO tc_queued VALUES (1)")
        with counting_wire_trips() as trips:
            async with conn.pipeline():
                await conn.execute("INSERT INTO tc_queued VALUES (2)")
                await commit_in_pipeline(conn)
        assert trips.count == 1  # conn.commit() there waits for a Sync of its own: two
        with psycopg.connect(libpq_url(database_url)) as other:
            assert other.execute("SELECT n FROM tc_queued ORDER BY n").fetchall() == [(1,), (2,)]
        assert await scope_of(conn) == "studio-a"  # the next transaction is scoped again


async def test_a_commit_queued_after_a_failing_statement_commits_nothing_and_raises_its_error(
    database: Database, database_url: str
) -> None:
    async with database.connection() as conn:
        await conn.execute("CREATE TABLE tc_queued2 (n int CHECK (n < 5))")

    async def insert_both_and_commit() -> None:
        async with database.tenant_connection("studio-a") as conn, conn.pipeline():
            await conn.execute("INSERT INTO tc_queued2 VALUES (1)")
            await conn.execute("INSERT INTO tc_queued2 VALUES (9)")
            await commit_in_pipeline(conn)

    with pytest.raises(psycopg.errors.CheckViolation):
        await insert_both_and_commit()
    with psycopg.connect(libpq_url(database_url)) as other:
        assert other.execute("SELECT count(*) FROM tc_queued2").fetchone() == (0,)


async def test_a_commit_cannot_be_queued_outside_a_pipeline(database: Database) -> None:
    async with database.tenant_connection("studio-a") as conn:
        with pytest.raises(RuntimeError, match="open pipeline"):
            await commit_in_pipeline(conn)
