"""The ``local`` connector (staff notes) keeps the connector contract that applies to it: read-only by
default and refusing before any I/O, an allowlist of actions, exactly-once writes per idempotency key,
dry runs that write nothing, and responses with the request id and real digests. Run against the
PostgreSQL connector and its in-memory twin (the in-memory brain's and the gateway tests' ``local``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from bench.wire_trips import counting_wire_trips

from studio_brain.adapters.clock import UUID7Factory
from studio_brain.adapters.local_connector import LocalNotesConnector, NotesReader
from studio_brain.adapters.memory.notes import InMemoryNotesConnector, NotesTable
from studio_brain.adapters.postgres.database import Database
from studio_brain.domain.connectors import ConnectorCommand, ConnectorContext, ConnectorMode, HealthStatus
from studio_brain.domain.errors import ConnectorError
from studio_brain.domain.hashing import is_sha256_hex, sha256_hex
from studio_brain.ports import Connector
from tests.fakes import FakeClock

APPEND = ConnectorCommand(action="note.append", args={"text": "bisque load 3 unloaded", "topic": "kilns"})


def ctx(key: str | None = "k-1", *, dry_run: bool = False) -> ConnectorContext:
    return ConnectorContext(request_id="req-1", timeout_seconds=5, idempotency_key=key, dry_run=dry_run)


@dataclass
class Notes:
    """One implementation of the notes connector, and how to read what it stored for tenant t1."""

    database: Database | None
    table: NotesTable

    def connector(self, mode: ConnectorMode | None = None) -> Connector:
        """With ``mode`` None, the connector's own default (read-only is what the tests check)."""
        extra = {} if mode is None else {"mode": mode}
        if self.database is None:
            return InMemoryNotesConnector(
                self.table, tenant_id="t1", clock=FakeClock(), ids=UUID7Factory(), **extra
            )
        return LocalNotesConnector(
            self.database, tenant_id="t1", clock=FakeClock(), ids=UUID7Factory(), **extra
        )

    async def read(self) -> list[dict[str, Any]]:
        if self.database is None:
            return self.table.notes("t1")
        return await NotesReader(self.database).notes("t1")


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.postgres)])
def notes(request: pytest.FixtureRequest) -> Notes:
    database = request.getfixturevalue("database") if request.param == "postgres" else None
    return Notes(database=database, table=NotesTable())


async def test_it_is_read_only_unless_configured_and_refuses_a_write_before_writing(
    notes: Notes,
) -> None:
    plain = notes.connector()
    assert plain.mode is ConnectorMode.READ_ONLY
    with pytest.raises(ConnectorError) as caught:
        await plain.execute(ctx(), APPEND)
    assert caught.value.kind == "READ_ONLY_VIOLATION"
    assert await notes.read() == []


async def test_a_write_happens_exactly_once_per_idempotency_key(notes: Notes) -> None:
    writer = notes.connector(ConnectorMode.READ_WRITE)
    first = await writer.execute(ctx(), APPEND)
    again = await writer.execute(ctx(), APPEND)
    assert first.output_hash == again.output_hash
    assert first.request_id == "req-1"
    assert is_sha256_hex(first.input_hash)
    assert first.output_hash == sha256_hex(first.data)
    notes = await notes.read()
    assert [n["text"] for n in notes] == ["bisque load 3 unloaded"]


async def test_unknown_actions_missing_keys_and_empty_text_are_not_allowed(notes: Notes) -> None:
    writer = notes.connector(ConnectorMode.READ_WRITE)
    for command, context in (
        (ConnectorCommand(action="note.delete", args={"text": "x"}), ctx()),
        (APPEND, ctx(None)),
        (ConnectorCommand(action="note.append", args={"text": "  "}), ctx()),
    ):
        with pytest.raises(ConnectorError) as caught:
            await writer.execute(context, command)
        assert caught.value.kind == "NOT_ALLOWED"
    assert await notes.read() == []


async def test_a_dry_run_describes_the_effect_and_writes_nothing(notes: Notes) -> None:
    response = await notes.connector().execute(ctx(dry_run=True), APPEND)
    assert response.dry_run
    assert response.data == {"effects": ["append one staff note (22 characters) under topic 'kilns'"]}
    assert await notes.read() == []


async def test_reads_and_health_answer_with_the_request_id(notes: Notes) -> None:
    local = notes.connector(ConnectorMode.READ_WRITE)
    await local.execute(ctx(), APPEND)
    status = await local.read_status(ctx(), {})
    assert status.data["notes"] == 1
    assert status.request_id == "req-1"
    health = await local.health(ctx())
    assert health.status is HealthStatus.HEALTHY
    assert health.request_id == "req-1"


@pytest.mark.postgres
async def test_a_failing_insert_commits_nothing_and_is_unavailable(database: Database) -> None:
    # the scope and the insert are one implicit transaction (issue 18): a refused insert commits nothing
    async with database.connection() as conn:
        await conn.execute("ALTER TABLE staff_notes ADD CONSTRAINT tc_no_boom CHECK (text <> 'boom')")
    writer = LocalNotesConnector(
        database, tenant_id="t1", clock=FakeClock(), ids=UUID7Factory(), mode=ConnectorMode.READ_WRITE
    )
    with pytest.raises(ConnectorError) as caught:
        await writer.execute(ctx("k-boom"), ConnectorCommand(action="note.append", args={"text": "boom"}))
    assert caught.value.kind == "UNAVAILABLE"
    assert await NotesReader(database).notes("t1") == []
    assert (await writer.execute(ctx("k-2"), APPEND)).data["noteId"]  # the connection is usable again


async def test_a_note_is_appended_in_one_query_message_and_its_replay_in_two(database: Database) -> None:
    writer = LocalNotesConnector(
        database, tenant_id="t1", clock=FakeClock(), ids=UUID7Factory(), mode=ConnectorMode.READ_WRITE
    )
    await writer.execute(ctx("k-warm"), APPEND)  # the pool's first connection opened
    with counting_wire_trips() as first:
        written = await writer.execute(ctx("k-once"), APPEND)
    with counting_wire_trips() as replay:
        replayed = await writer.execute(ctx("k-once"), APPEND)
    # issue 18, sixth pass: it was four queries (BEGIN, the scope, the INSERT, COMMIT) in one round trip
    assert (first.count, first.queries) == (1, 1)
    assert (replay.count, replay.queries) == (2, 2)  # the insert that found the key, then the read of it
    assert replayed.data == written.data
    assert [n["idempotency_key"] for n in await NotesReader(database).notes("t1")] == ["k-once", "k-warm"]
