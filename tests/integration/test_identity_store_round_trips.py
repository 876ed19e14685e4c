"""The identity store's one-statement transactions (scope, statement and COMMIT pipelined in one round trip,
issue 18) commit what succeeded and nothing of what failed."""

from __future__ import annotations

import psycopg
import pytest

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
