"""Database.tenant_connection: the tenant scope statement is also the liveness check (issue 18), so a
connection that died in the pool is still never handed to a transaction."""

from __future__ import annotations

import psycopg
import pytest

from studio_brain.adapters.postgres.database import Database, libpq_url


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
    with psycopg.connect(libpq_url(database_url), autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert killed is not None
    assert killed[0] >= 1
    for _ in range(3):  # every pooled connection is dead now; each transaction still gets a live one
        async with database.tenant_connection("studio-b") as conn:
            row = await (
                await conn.execute("SELECT current_setting('studio_brain.tenant_id') AS t")
            ).fetchone()
            assert row == {"t": "studio-b"}
