"""Counts database round trips where they happen: each time psycopg must wait for the server's answer.

Used by ``bench/round_trips.py`` and by the round-trip tests (``tests/integration/test_read_request_trips.py``).
Counting calls of ``execute``/``commit``/``pipeline`` (what ``bench/round_trips.py`` did before) misses one:
psycopg opens a transaction inside a pipeline with ``BEGIN`` followed by a **Sync it waits for**, so a pipeline
block that starts a transaction costs two round trips, not one. Here the count is taken at psycopg's
protocol generators (pinned psycopg 3.3; private names, so this lives in the benchmarks and tests, never in
``src/``):

- outside a pipeline, every command (``BEGIN``, ``COMMIT``, ``ROLLBACK``) and every statement is one;
- inside a pipeline, every Sync is one (psycopg's ``BEGIN``, a ``COMMIT``, the block's end), and so is every
  mid-pipeline fetch of results not yet synced (a flush request the client then waits on).

``queries`` counts what is handed to libpq to send: each statement of an extended-protocol exchange
(``BEGIN`` and ``COMMIT`` included) is one, and a simple-protocol query string is one whatever it holds.
The client pays its Python per query sent (issue 18, fifth pass), so this is the count that follows the
server's CPU where round trips do not.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg._connection_base as connection_base
import psycopg._cursor_base as cursor_base
import psycopg._pipeline_base as pipeline_base
import psycopg.client_cursor as client_cursor


@dataclass
class WireTrips:
    """Round trips counted since the last ``reset``."""

    count: int = 0
    #: queries handed to libpq (see the module's docstring)
    queries: int = 0
    _exiting: int = 0

    def reset(self) -> None:
        self.count = 0
        self.queries = 0


def _counting(
    trips: WireTrips, generator: Callable[..., Generator[Any, Any, Any]], counts: Callable[..., bool]
) -> Callable[..., Generator[Any, Any, Any]]:
    def counted(self: Any, *args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        if counts(self, *args, **kwargs):
            trips.count += 1
        return (yield from generator(self, *args, **kwargs))

    return counted


@contextmanager
def counting_wire_trips(trips: WireTrips | None = None) -> Iterator[WireTrips]:
    """Count round trips of every psycopg connection of this process while the block runs (into
    ``trips`` when given)."""
    trips = trips if trips is not None else WireTrips()
    pipeline = pipeline_base.BasePipeline
    connection = connection_base.BaseConnection
    cursor = cursor_base.BaseCursor
    client = client_cursor.ClientCursorMixin
    originals = {
        (pipeline, "_sync_gen"): pipeline._sync_gen,
        (pipeline, "_exit_gen"): pipeline._exit_gen,
        (pipeline, "_fetch_gen"): pipeline._fetch_gen,
        (connection, "_exec_command"): connection._exec_command,
        (cursor, "_execute_gen"): cursor._execute_gen,
        (cursor, "_stream_send_gen"): cursor._stream_send_gen,
        (cursor, "_execute_send"): cursor._execute_send,
        (cursor, "_send_query_prepared"): cursor._send_query_prepared,
        (client, "_execute_send"): client._execute_send,  # client-side binding sends its own way
    }

    def exit_gen(self: Any) -> Generator[Any, Any, Any]:
        trips.count += 1  # the block's Sync; its own closing fetch is part of it
        trips._exiting += 1
        try:
            return (yield from originals[(pipeline, "_exit_gen")](self))
        finally:
            trips._exiting -= 1

    def mid_pipeline_fetch(self: Any, *, flush: bool) -> bool:
        return flush and bool(self.result_queue) and not trips._exiting

    def sending(original: Callable[..., Any]) -> Callable[..., Any]:
        def sent(self: Any, *args: Any, **kwargs: Any) -> Any:
            trips.queries += 1
            return original(self, *args, **kwargs)

        return sent

    def exec_command(self: Any, *args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        trips.queries += 1
        if not self._pipeline:
            trips.count += 1
        return (yield from originals[(connection, "_exec_command")](self, *args, **kwargs))

    replacements = {
        (pipeline, "_sync_gen"): _counting(trips, originals[(pipeline, "_sync_gen")], lambda self: True),
        (pipeline, "_exit_gen"): exit_gen,
        (pipeline, "_fetch_gen"): _counting(trips, originals[(pipeline, "_fetch_gen")], mid_pipeline_fetch),
        (connection, "_exec_command"): exec_command,
        (cursor, "_execute_gen"): _counting(
            trips, originals[(cursor, "_execute_gen")], lambda self, *a, **k: not self._conn._pipeline
        ),
        (cursor, "_stream_send_gen"): _counting(
            trips, originals[(cursor, "_stream_send_gen")], lambda self, *a, **k: True
        ),
        (cursor, "_execute_send"): sending(originals[(cursor, "_execute_send")]),
        (cursor, "_send_query_prepared"): sending(originals[(cursor, "_send_query_prepared")]),
        (client, "_execute_send"): sending(originals[(client, "_execute_send")]),
    }
    for (owner, name), replacement in replacements.items():
        setattr(owner, name, replacement)
    try:
        yield trips
    finally:
        for (owner, name), original in originals.items():
            setattr(owner, name, original)
