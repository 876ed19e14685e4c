"""The async connection pool to PostgreSQL and the translation of driver errors into ours.

Connections heal (issue 13): every connection is checked with an empty round trip when it leaves the
pool, so after a database restart or a network cut the dead ones are discarded and replaced instead of
being handed to a request (each would fail once). A tenant-scoped connection (``tenant_connection``,
the gateway's and the identity store's transactions) is checked without a round trip instead — a
backend that died leaves its socket readable — and its BEGIN and tenant scope ride its first statement
(issue 18, ADR 0017). A connection that fails in use is closed by the driver and discarded by the pool
on return; TCP keepalives and a connect timeout stop a blackholed connection from hanging for ever.
Idempotent calls (``ping``) are retried once.
"""

from __future__ import annotations

import asyncio
import json
import re
import select
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

import orjson
import psycopg
from psycopg import pq
from psycopg.rows import Row, RowFactory, dict_row
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from studio_brain.domain.errors import DatabaseUnavailable, StorageError
from studio_brain.settings import redact_url


def libpq_url(url: str) -> str:
    """A URL psycopg accepts: SQLAlchemy's ``postgresql+psycopg://`` and ``postgres://`` normalised."""
    parts = urlsplit(url)
    if parts.scheme in {"postgresql+psycopg", "postgres"}:
        parts = parts._replace(scheme="postgresql")
    return urlunsplit(parts)


def sqlalchemy_url(url: str) -> str:
    """The same server as a SQLAlchemy URL using the psycopg 3 driver (for Alembic)."""
    parts = urlsplit(libpq_url(url))
    return urlunsplit(parts._replace(scheme="postgresql+psycopg"))


def with_database(url: str, database: str) -> str:
    """``url`` pointing at another database on the same server (query string kept: it may hold host=)."""
    parts = urlsplit(libpq_url(url))
    return urlunsplit(parts._replace(path="/" + database))


#: libpq options of every connection: give up connecting after 5 s; notice a dead peer within ~1 min
CONNECT_KWARGS: dict[str, Any] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


#: a run of 19+ digits may be an integer beyond 64 bits, which orjson would turn into a (rounded) float
_LONG_DIGITS = re.compile(rb"[0-9]{19,}")


def json_loads(data: bytes | bytearray | memoryview | str) -> Any:
    """json/jsonb columns decoded by orjson (issue 18: audit pages decode a metadata document per row; orjson
    is several times faster than the stdlib), except a document holding a run of 19 or more digits (an
    integer beyond 64 bits, which orjson would round to a float) or one orjson refuses: those go to the
    stdlib decoder, so every stored document reads back exactly as before."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    if _LONG_DIGITS.search(raw) is None:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(raw)


# process-wide: every connection of every pool (psycopg's global adapters map)
set_json_loads(json_loads)


#: row-level security: every statement of the transaction sees only this tenant's rows
TENANT_SCOPE = "SELECT set_config('studio_brain.tenant_id', %s, true)"
#: set while tenant_connection takes a connection: its first exchange is the check instead
_FIRST_STATEMENT_CHECKS: ContextVar[bool] = ContextVar("studio_brain_first_statement_checks", default=False)


class PooledConnection(psycopg.AsyncConnection[dict[str, Any]]):
    """A pooled connection that may carry a tenant scope still to be sent (issue 18).

    :meth:`Database.tenant_connection` arms it; the first statement of the transaction (and the first after
    a COMMIT or ROLLBACK, which end the scope: ``set_config(..., true)`` is transaction-local) sends
    the scope statement ahead of itself in the same round trip (:class:`TenantScopedCursor`)."""

    #: the tenant of the tenant_connection block holding this connection, if any
    _scope: str | None = None
    #: that tenant while the open transaction has not been scoped yet
    _pending_scope: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # psycopg sets this per connection, and has no connect() argument for it
        self.server_cursor_factory = TenantScopedServerCursor

    def arm_scope(self, tenant_id: str | None) -> None:
        self._scope = self._pending_scope = tenant_id

    def take_pending_scope(self) -> str | None:
        scope, self._pending_scope = self._pending_scope, None
        return scope

    def scope_next_transaction(self) -> None:
        self._pending_scope = self._scope  # set_config(..., true) ended with the transaction

    async def commit(self) -> None:
        if self._scope is not None and _in_pipeline(self):
            # in autocommit (a tenant block) psycopg's COMMIT in a pipeline would wait for a Sync of its own
            # and the block's pending scope would not be re-armed for what follows in the same pipeline
            raise psycopg.ProgrammingError(
                "commit() inside a pipeline of a tenant connection: use commit_in_pipeline(conn)"
            )
        try:
            await super().commit()
        finally:
            self.scope_next_transaction()

    async def rollback(self) -> None:
        try:
            await super().rollback()
        finally:
            self.scope_next_transaction()


def _take_pending_scope(cursor: psycopg.AsyncCursor[Any] | psycopg.AsyncServerCursor[Any]) -> str | None:
    conn = cursor.connection
    return conn.take_pending_scope() if isinstance(conn, PooledConnection) else None


def _in_pipeline(conn: psycopg.AsyncConnection[Any]) -> bool:
    return conn.pgconn.pipeline_status != pq.PipelineStatus.OFF


async def _send_scope(conn: psycopg.AsyncConnection[Any], scope: str) -> None:
    """Queue the transaction's start and its tenant scope (plain cursors: neither has a scope to send).

    A tenant block runs in autocommit mode, so psycopg sends no BEGIN of its own — inside a pipeline it
    would follow one with a Sync it waits for, a round trip before anything else is read (ADR 0017). The
    BEGIN is queued here instead, with the scope, ahead of the transaction's first statement; it is left
    out only when a transaction is already open (someone else began it)."""
    if conn.autocommit and conn.info.transaction_status != pq.TransactionStatus.INTRANS:
        await psycopg.AsyncCursor(conn).execute("BEGIN")
    await psycopg.AsyncCursor(conn).execute(TENANT_SCOPE, (scope,))


async def _scope_round_trip(conn: psycopg.AsyncConnection[Any], scope: str | None) -> None:
    """Send a pending BEGIN and scope in a round trip of their own: for what cannot share a pipeline (a
    server cursor's DECLARE, a stream, COPY), which then runs inside the scoped transaction."""
    if scope is None:
        return
    if _in_pipeline(conn):
        await _send_scope(conn, scope)
        return
    async with conn.pipeline():
        await _send_scope(conn, scope)


class TenantScopedCursor(psycopg.AsyncCursor[Any]):
    """Every statement of a tenant_connection's transaction runs after its tenant scope: the first one
    sends the scope statement ahead of itself in one round trip — queued first in the caller's pipeline
    if one is open, else in a pipeline of the two. The server still runs them in order, in one
    transaction, and a failing statement raises the same error as without the scope."""

    async def execute(  # the overloads of the base, one implementation
        self,
        query: Any,
        params: Any = None,
        *,
        prepare: bool | None = None,
        binary: bool | None = None,
    ) -> Self:
        scope = _take_pending_scope(self)
        if scope is None or _in_pipeline(self.connection):
            if scope is not None:
                await _send_scope(self.connection, scope)
            return await super().execute(query, params, prepare=prepare, binary=binary)
        async with self.connection.pipeline():
            await _send_scope(self.connection, scope)
            await super().execute(query, params, prepare=prepare, binary=binary)
        return self

    async def executemany(self, query: Any, params_seq: Any, *, returning: bool = False) -> None:
        scope = _take_pending_scope(self)
        if scope is None or _in_pipeline(self.connection):
            if scope is not None:
                await _send_scope(self.connection, scope)
            await super().executemany(query, params_seq, returning=returning)
            return
        async with self.connection.pipeline():
            await _send_scope(self.connection, scope)
            await super().executemany(query, params_seq, returning=returning)

    async def stream(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        # a stream cannot share a pipeline: the scope goes in a round trip of its own first
        await self._scope_alone()
        async for row in super().stream(*args, **kwargs):
            yield row

    @asynccontextmanager
    async def copy(self, *args: Any, **kwargs: Any) -> AsyncIterator[psycopg.AsyncCopy]:
        await self._scope_alone()
        async with super().copy(*args, **kwargs) as copy:
            yield copy

    async def _scope_alone(self) -> None:
        await _scope_round_trip(self.connection, _take_pending_scope(self))


class TenantScopedServerCursor(psycopg.AsyncServerCursor[Any]):
    """A named (server-side) cursor of a pooled connection: a server cursor's DECLARE cannot share a
    pipeline, so a scope still to be sent goes in a round trip of its own first. Without it, a named
    cursor opened first in a tenant_connection block would run unscoped (and row-level security would
    show it nothing)."""

    async def execute(
        self,
        query: Any,
        params: Any = None,
        *,
        binary: bool | None = None,
        **kwargs: Any,
    ) -> Self:
        await _scope_round_trip(self.connection, _take_pending_scope(self))
        return await super().execute(query, params, binary=binary, **kwargs)


async def commit_in_pipeline(conn: psycopg.AsyncConnection[Any]) -> None:
    """COMMIT the open transaction inside the caller's open pipeline block, ended by the block's own Sync.

    ``conn.commit()`` there costs a round trip more: psycopg follows its COMMIT with a Sync it waits for,
    then the block ends with another. Queued as a statement, the COMMIT and the block's Sync are one round
    trip; a failure of anything before it (or of the COMMIT itself) raises when the block ends, with the
    transaction rolled back, as a failing ``commit()`` would. A pooled connection's next transaction is
    scoped again, as after :meth:`PooledConnection.commit`."""
    if not _in_pipeline(conn):
        raise RuntimeError("commit_in_pipeline needs an open pipeline block")
    await psycopg.AsyncCursor(conn).execute("COMMIT")
    if isinstance(conn, PooledConnection):
        conn.scope_next_transaction()


async def _back_to_transactions(conn: psycopg.AsyncConnection[Any]) -> None:
    """Leave a tenant block's connection as the pool hands them out (not in autocommit), or close it.

    Idle after its last COMMIT or ROLLBACK, it switches back without a round trip. Anything else (broken,
    cancelled mid-exchange, a COMMIT that never answered) cannot switch and is closed, which makes the
    pool discard it instead of handing out a connection whose state is unknown."""
    if conn.closed:
        return
    if conn.info.transaction_status == pq.TransactionStatus.IDLE:
        try:
            await conn.set_autocommit(False)
            return
        except psycopg.Error:
            pass
    await conn.close()


def _one_statement(query: str) -> None:
    if ";" in query:
        raise ValueError("a one-statement exchange runs exactly one statement")


async def _rows_of_last(
    cursor: psycopg.AsyncClientCursor[Row], query: str, params: Sequence[Any], *, results: int
) -> list[Row]:
    """Send ``query`` (``results`` statements) as one simple-protocol message; the last one's rows."""
    await cursor.execute(query, params)
    for _ in range(results - 1):
        if not cursor.nextset():
            raise psycopg.ProgrammingError(f"expected {results} results from one query message")
    # the result's status, not ``cursor.description``: that builds a Column object per column on every
    # access (issue 18: 6 % of a latest-state request's Python calls went there)
    result = cursor.pgresult
    return await cursor.fetchall() if result is not None and result.status == pq.ExecStatus.TUPLES_OK else []


def found_dead(conn: psycopg.AsyncConnection[Any]) -> bool:
    """True when an idle pooled connection is known dead without a round trip.

    A backend that was terminated (``pg_terminate_backend``, a server restart or crash) sends its FATAL
    error and closes the socket, so the idle connection's socket turns readable; a healthy idle
    connection has nothing to say (no LISTEN on pooled connections), so anything readable discards it.
    A silent network cut is not seen here: the first exchange fails later (TCP keepalives bound it)."""
    if conn.closed or conn.broken:
        return True
    try:
        readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    except (OSError, ValueError, psycopg.OperationalError):
        return True
    return bool(readable) or conn.pgconn.status != pq.ConnStatus.OK


class Database:
    """A pool of async connections; rows come back as dicts."""

    def __init__(
        self,
        url: str,
        *,
        max_size: int = 10,
        min_size: int = 1,
        timeout: float = 10.0,
        check_timeout: float = 5.0,
        options: str | None = None,
        reconnect_seconds: float = 3.0,
    ) -> None:
        self.url = libpq_url(url)
        #: libpq ``options`` of every connection (worker processes open theirs with the same ones)
        self.options = options
        self._check_timeout = check_timeout
        self._max_size = max_size
        self._pool: AsyncConnectionPool[PooledConnection] = AsyncConnectionPool(
            self.url,
            connection_class=PooledConnection,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            open=False,
            # options: libpq ``-c name=value`` session defaults (the app role's tenant: adapters/postgres/roles.py)
            kwargs={
                "row_factory": dict_row,
                "autocommit": False,
                "cursor_factory": TenantScopedCursor,
                **CONNECT_KWARGS,
                **({"options": options} if options else {}),
            },
            check=self._check,
            # give a failing reconnection up after a few seconds instead of five minutes: its back-off
            # (1 s, 2 s, 4 s, ...) would keep every caller waiting long after the database is back, while
            # the next request after a give-up starts a fresh attempt at once
            reconnect_timeout=reconnect_seconds,
            name="studio-brain",
        )

    async def _check(self, conn: PooledConnection) -> None:
        """Raise when ``conn`` is dead (the pool then discards it and hands out another)."""
        if _FIRST_STATEMENT_CHECKS.get():
            return  # tenant_connection checks without a round trip (found_dead) and retries itself
        # asyncio.timeout, not wait_for: no extra task per checkout (issue 18), the same bound
        async with asyncio.timeout(self._check_timeout):
            await AsyncConnectionPool.check_connection(conn)

    @property
    def redacted_url(self) -> str:
        return redact_url(self.url)

    async def open(self, *, wait_seconds: float = 10.0) -> None:
        try:
            await self._pool.open(wait=True, timeout=wait_seconds)
        except (PoolTimeout, psycopg.OperationalError) as err:
            await self._pool.close()
            raise DatabaseUnavailable(f"cannot reach PostgreSQL at {self.redacted_url}") from err

    async def close(self) -> None:
        await self._pool.close()

    async def __aenter__(self) -> Database:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[dict[str, Any]]]:
        """A pooled connection; the block runs in one transaction, committed on success."""
        try:
            async with self._pool.connection() as conn:
                yield conn
        except PoolTimeout as err:
            raise DatabaseUnavailable(f"no database connection available ({self.redacted_url})") from err
        except psycopg.OperationalError as err:
            raise DatabaseUnavailable(f"lost the connection to PostgreSQL at {self.redacted_url}") from err

    @asynccontextmanager
    async def tenant_connection(self, tenant_id: str) -> AsyncIterator[PooledConnection]:
        """A pooled connection whose transaction is scoped to ``tenant_id`` (row-level security), committed
        on success.

        Issue 18, no round trip of its own: the connection is in autocommit mode for the block, and the
        transaction's BEGIN and scope statement are pipelined ahead of its first statement (and of the
        first after each COMMIT or ROLLBACK), so no statement ever runs unscoped and the first one costs
        one round trip, not two (ADR 0017). The block's statements still form one transaction, committed
        when the block ends (or earlier with ``commit()`` / :func:`commit_in_pipeline`). The connection
        goes back to the pool in transaction mode, as :meth:`connection` hands them out. A connection
        that died in the pool is found without a round trip (:func:`found_dead`) and discarded before
        anything of the transaction is sent, and another is taken — so, as with :meth:`connection`, a
        request is never handed a connection known dead."""
        async with self._autocommit_connection(tenant_id) as conn:
            yield conn

    @asynccontextmanager
    async def _autocommit_connection(self, scope: str | None) -> AsyncIterator[PooledConnection]:
        """A live pooled connection in autocommit mode for the block, armed with ``scope`` (None: the
        caller sends its own, or none), back to the pool in transaction mode (or closed) afterwards."""
        conn = await self._live_connection()
        conn.arm_scope(scope)
        try:
            # idle (found live, nothing sent): switching costs no round trip
            await conn.set_autocommit(True)
            async with conn:
                yield conn
        except psycopg.OperationalError as err:
            raise DatabaseUnavailable(f"lost the connection to PostgreSQL at {self.redacted_url}") from err
        finally:
            conn.arm_scope(None)
            await _back_to_transactions(conn)
            await self._pool.putconn(conn)

    async def tenant_statement(
        self, tenant_id: str, query: str, params: Sequence[Any] = ()
    ) -> list[dict[str, Any]]:
        """One statement in a transaction of its own, scoped to ``tenant_id``, in **one round trip and one
        query message**: the scope and the statement go as one simple-protocol query string, which the
        server runs as one implicit transaction (committed when both succeed, rolled back when either
        fails; ``set_config(..., true)`` ends with it). Every request's credential lookup and the hot reads
        land here (issue 18), so it is the cheapest path psycopg has: no pipeline to enter and leave, no
        BEGIN and COMMIT of its own — about half the client CPU of the same exchange pipelined (ADR 0018).
        The connection is checked without a round trip, as :meth:`tenant_connection`'s is.

        ``query`` is one statement with ``%s`` placeholders; ``params`` are bound client-side by psycopg's
        own quoting (``AsyncClientCursor``), never by string formatting here. Rows as dicts (none for a
        statement that returns none). A failing statement raises its own error and commits nothing."""
        _one_statement(query)
        async with self._autocommit_connection(None) as conn:  # the scope travels in the query string
            return await _rows_of_last(
                psycopg.AsyncClientCursor(conn), f"{TENANT_SCOPE}; {query}", (tenant_id, *params), results=2
            )

    async def statement(
        self, query: str, params: Sequence[Any] = (), *, row_factory: RowFactory[Row]
    ) -> list[Row]:
        """One unscoped statement (no tenant scope: for tables read by their ``tenant_id`` column, such as
        the audit log's pages) in a transaction of its own, as :meth:`tenant_statement` sends it: one
        query message, one round trip, on a connection checked without one. Rows by ``row_factory``."""
        _one_statement(query)
        async with self._autocommit_connection(None) as conn:
            return await _rows_of_last(
                psycopg.AsyncClientCursor(conn, row_factory=row_factory), query, params, results=1
            )

    async def _live_connection(self) -> PooledConnection:
        # every pooled connection may have died together (a restart): each found dead is closed, which
        # makes the pool discard it, and the next one is taken; nothing has been sent on any of them
        for _ in range(self._max_size + 1):
            skip = _FIRST_STATEMENT_CHECKS.set(True)
            try:
                conn = await self._pool.getconn()
            except PoolTimeout as err:
                raise DatabaseUnavailable(f"no database connection available ({self.redacted_url})") from err
            finally:
                _FIRST_STATEMENT_CHECKS.reset(skip)
            if not found_dead(conn):
                return conn
            await conn.close()
            await self._pool.putconn(conn)
        raise DatabaseUnavailable(f"lost the connection to PostgreSQL at {self.redacted_url}")

    async def ping(self, *, attempt_seconds: float = 1.0) -> float:
        """Round-trip latency in milliseconds; raises DatabaseUnavailable (after one retry: it is safe).

        Each attempt is bounded by ``attempt_seconds``, so ``/readyz`` answers quickly while the database is away
        instead of waiting for the pool's own timeout."""
        for attempt in (1, 2):
            started = time.perf_counter()
            try:
                async with asyncio.timeout(attempt_seconds), self.connection() as conn:
                    await conn.execute("SELECT 1")
            except (DatabaseUnavailable, TimeoutError) as err:
                if attempt == 2:
                    if isinstance(err, DatabaseUnavailable):
                        raise
                    raise DatabaseUnavailable(
                        f"PostgreSQL at {self.redacted_url} did not answer in time"
                    ) from err
            else:
                break
        return (time.perf_counter() - started) * 1000.0


def translate(err: psycopg.Error, doing: str) -> StorageError:
    """A driver error as a StorageError (use as ``raise translate(err, '...') from err``)."""
    if isinstance(err, psycopg.OperationalError):
        return DatabaseUnavailable(f"database unavailable while {doing}")
    return StorageError(f"database error while {doing}: {type(err).__name__}")
