"""PostgreSQL advisory locks: the scheduler's leader lock (session-level, on a dedicated connection) and
per-job run locks (transaction-level, held by a pooled connection for the length of one run).

A session-level advisory lock lives exactly as long as the connection that took it: if the process dies
or its connection drops, the server frees the lock and another brain can take over (ADR 0009).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg

from studio_brain.adapters.postgres.database import CONNECT_KWARGS, Database, libpq_url, translate
from studio_brain.domain.hashing import sha256_hex
from studio_brain.logging import get_logger

log = get_logger(__name__)


def advisory_key(purpose: str, tenant_id: str, name: str = "") -> int:
    """A stable signed 64-bit lock key for (purpose, tenant, name): the first 8 bytes of a SHA-256."""
    digest = sha256_hex({"lock": purpose, "tenant": tenant_id, "name": name})
    return int.from_bytes(bytes.fromhex(digest[:16]), "big", signed=True)


class PostgresLeaderLock:
    """``pg_try_advisory_lock`` on a connection of its own, never on a pooled one (the pool would hand
    the session, and with it the lock, to someone else)."""

    def __init__(self, url: str, *, tenant_id: str, connect_timeout: float = 5.0) -> None:
        self._url = libpq_url(url)
        self._key = advisory_key("scheduler-leader", tenant_id)
        self._connect_timeout = connect_timeout
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._held = False

    @property
    def key(self) -> int:
        return self._key

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(
                self._url,
                autocommit=True,
                # keepalives (issue 13): a cut network is noticed, so the lock is re-checked, not trusted
                **{**CONNECT_KWARGS, "connect_timeout": int(self._connect_timeout)},
                application_name="studio-brain-leader",
            )
        return self._conn

    async def try_acquire(self) -> bool:
        if self._held and await self.still_held():
            return True
        try:
            conn = await self._connection()
            cursor = await conn.execute("SELECT pg_try_advisory_lock(%s)", (self._key,))
            row = await cursor.fetchone()
        except psycopg.Error as err:
            await self._drop()
            raise translate(err, "trying to become the scheduler leader") from err
        self._held = bool(row and row[0])
        return self._held

    async def still_held(self) -> bool:
        if not self._held or self._conn is None or self._conn.closed:
            self._held = False
            return False
        try:
            cursor = await self._conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND pid = pg_backend_pid() AND objid = (%s::bigint & 4294967295)::oid"
                " AND classid = ((%s::bigint >> 32) & 4294967295)::oid",
                (self._key, self._key),
            )
            row = await cursor.fetchone()
        except psycopg.Error:
            log.warning("scheduler.leader.connection_lost")
            await self._drop()
            return False
        self._held = bool(row and row[0])
        return self._held

    async def release(self) -> None:
        if self._conn is not None and not self._conn.closed and self._held:
            try:
                await self._conn.execute("SELECT pg_advisory_unlock(%s)", (self._key,))
            except psycopg.Error:
                log.warning("scheduler.leader.unlock_failed")
        await self._drop()

    async def _drop(self) -> None:
        self._held = False
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(psycopg.Error):
                await conn.close()


class PostgresJobLocks:
    """Per-job run locks: ``pg_try_advisory_xact_lock`` inside a transaction held open for the run, so a
    crashed run frees its lock with its connection and nothing stale is left to clean up."""

    def __init__(self, database: Database) -> None:
        self._db = database

    @asynccontextmanager
    async def hold(self, tenant_id: str, job: str) -> AsyncIterator[bool]:
        key = advisory_key("job-run", tenant_id, job)
        async with self._db.connection() as conn:
            try:
                cursor = await conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (key,))
                row = await cursor.fetchone()
            except psycopg.Error as err:
                raise translate(err, f"locking job {job}") from err
            got = bool(row and next(iter(row.values())))
            yield got
