"""The record ledger: floors only rise, and every implementation keeps the same contract (issue 12).

The file ledger is also read by a second instance on the same file, as a second process of the brain
(the CLI beside ``serve``) would read it; a torn last line (a crash mid-append) is skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from studio_brain.adapters.record_ledger import FileRecordLedger, MemoryRecordLedger
from studio_brain.domain.record_ledger import KILL_SWITCH, SESSION, LedgerMark, LedgerView
from studio_brain.ports.record_ledger import RecordLedger

ENDED = LedgerMark(tenant_id="t", kind=SESSION, record_id="s1", ended=True)


def switch(version: int, tenant: str = "t") -> LedgerMark:
    return LedgerMark(tenant_id=tenant, kind=KILL_SWITCH, record_id="*", version=version)


def test_a_record_the_ledger_does_not_know_is_never_stale() -> None:
    assert LedgerView().stale("t", SESSION, "s1", ended=False) is None


def test_an_ended_credential_must_read_as_ended() -> None:
    view = LedgerView([ENDED])
    assert view.stale("t", SESSION, "s1", ended=True) is None
    assert "ended" in (view.stale("t", SESSION, "s1", ended=False) or "")


def test_a_version_floor_only_rises_and_refuses_lower_versions() -> None:
    view = LedgerView([switch(3), switch(2)])
    assert view.versions("t", KILL_SWITCH) == {"*": 3}
    assert view.stale("t", KILL_SWITCH, "*", ended=False, version=3) is None
    assert "version 2" in (view.stale("t", KILL_SWITCH, "*", ended=False, version=2) or "")


def test_floors_are_kept_per_tenant() -> None:
    view = LedgerView([switch(4, tenant="a")])
    assert view.versions("b", KILL_SWITCH) == {}
    assert view.stale("b", KILL_SWITCH, "*", ended=False, version=1) is None


def test_adding_marks_leaves_the_earlier_view_unchanged() -> None:
    before = LedgerView([switch(1)])
    after = before.with_marks([switch(2), ENDED])
    assert before.versions("t", KILL_SWITCH) == {"*": 1}
    assert after.versions("t", KILL_SWITCH) == {"*": 2}
    assert len(after) == 2


LEDGERS: dict[str, Callable[[Path], RecordLedger]] = {
    "file": lambda home: FileRecordLedger(home / "keys" / "record-ledger.jsonl"),
    "memory": lambda _home: MemoryRecordLedger(),
}


@pytest.mark.parametrize("make", LEDGERS.values(), ids=LEDGERS.keys())
async def test_every_ledger_keeps_what_it_was_told(
    make: Callable[[Path], RecordLedger], tmp_path: Path
) -> None:
    ledger = make(tmp_path)
    assert len(ledger.view()) == 0
    await ledger.mark([ENDED, switch(2)])
    await ledger.mark([switch(1)])
    view = ledger.view()
    assert view.stale("t", SESSION, "s1", ended=False) is not None
    assert view.versions("t", KILL_SWITCH) == {"*": 2}
    await ledger.mark([])


async def test_the_file_ledger_is_private_and_read_by_another_process_of_the_brain(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "record-ledger.jsonl"
    serve, cli = FileRecordLedger(path), FileRecordLedger(path)
    assert len(serve.view()) == 0
    await cli.mark([switch(5)])
    assert serve.view().versions("t", KILL_SWITCH) == {"*": 5}
    assert path.stat().st_mode & 0o077 == 0
    assert path.parent.stat().st_mode & 0o077 == 0


async def test_a_torn_last_line_is_skipped_and_read_once_it_is_whole(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "record-ledger.jsonl"
    ledger = FileRecordLedger(path)
    await ledger.mark([switch(1)])
    with path.open("ab") as handle:
        handle.write(b'{"k":"gateway.kill_switch","id":"*","t":"t","v":')
    reader = FileRecordLedger(path)
    assert reader.view().versions("t", KILL_SWITCH) == {"*": 1}
    with path.open("ab") as handle:
        handle.write(b"7}\n")
    assert reader.view().versions("t", KILL_SWITCH) == {"*": 7}


async def test_garbage_lines_are_skipped_not_trusted(tmp_path: Path) -> None:
    path = tmp_path / "record-ledger.jsonl"
    path.write_bytes(b'not json\n{"t":"t","k":"gateway.kill_switch","id":"*","v":-3}\n')
    assert FileRecordLedger(path).view().versions("t", KILL_SWITCH) == {}
