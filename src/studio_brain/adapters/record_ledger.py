"""The record ledger as a file beside the keys: ``STUDIO_BRAIN_HOME/keys/record-ledger.jsonl`` (0600).

One JSON line per mark, appended (O_APPEND) and fsynced before :meth:`FileRecordLedger.mark` returns, so
every process of the brain (``serve``, the CLI) sees the others' marks: :meth:`~FileRecordLedger.view`
stats the file on each call and reads only what was appended since. Kept under ``keys/`` because it is
the keys' partner — like them it is outside the database writer's reach, and ``studio-brain backup``
carries it. A torn last line (a crash mid-append) is skipped and logged; marks are never forgotten in
memory, even if the file shrinks.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from studio_brain.adapters.durable_files import write_synced
from studio_brain.domain.errors import StorageError
from studio_brain.domain.record_ledger import LedgerMark, LedgerView
from studio_brain.logging import get_logger

log = get_logger(__name__)

RECORD_LEDGER_FILE = "record-ledger.jsonl"


def _line(mark: LedgerMark) -> bytes:
    entry: dict[str, Any] = {"t": mark.tenant_id, "k": mark.kind, "id": mark.record_id}
    if mark.version is not None:
        entry["v"] = mark.version
    if mark.ended:
        entry["e"] = True
    return json.dumps(entry, separators=(",", ":"), sort_keys=True).encode("utf-8") + b"\n"


def _mark_of(line: bytes) -> LedgerMark | None:
    try:
        entry = json.loads(line)
        version = entry.get("v")
        if version is not None and (type(version) is not int or version < 1):
            return None
        return LedgerMark(
            tenant_id=str(entry["t"]),
            kind=str(entry["k"]),
            record_id=str(entry["id"]),
            version=version,
            ended=entry.get("e") is True,
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


class FileRecordLedger:
    """Implements RecordLedger over one append-only file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._view = LedgerView()
        #: (inode, bytes read) of the file as last read
        self._seen: tuple[int, int] = (0, 0)

    def __repr__(self) -> str:
        return f"FileRecordLedger(path={str(self.path)!r})"

    def view(self) -> LedgerView:
        try:
            status = os.stat(self.path)
        except FileNotFoundError:
            return self._view  # nothing marked yet (or moved away: what was read stays)
        except OSError as err:
            raise StorageError(f"the record ledger {self.path} cannot be read: {err.strerror}") from err
        inode, size = status.st_ino, status.st_size
        if (inode, size) == self._seen:
            return self._view
        with self._lock:
            start = self._seen[1] if inode == self._seen[0] and size >= self._seen[1] else 0
            self._read_from(start, inode)
            return self._view

    def _read_from(self, start: int, inode: int) -> None:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(start)
                data = handle.read()
        except OSError as err:
            raise StorageError(f"the record ledger {self.path} cannot be read: {err.strerror}") from err
        # only whole lines: a line still being appended is read on the next call
        whole = data[: data.rfind(b"\n") + 1]
        marks = []
        for line in whole.splitlines():
            mark = _mark_of(line)
            if mark is None:
                if line.strip():
                    log.warning("record_ledger.line_skipped", path=str(self.path), bytes=len(line))
                continue
            marks.append(mark)
        self._view = self._view.with_marks(marks)
        self._seen = (inode, start + len(whole))

    def _append(self, marks: Sequence[LedgerMark]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = b"".join(_line(m) for m in marks)
        write_synced(self.path, data, os.O_WRONLY | os.O_CREAT | os.O_APPEND)

    async def mark(self, marks: Sequence[LedgerMark]) -> None:
        if not marks:
            return
        try:
            await asyncio.to_thread(self._append, marks)
        except OSError as err:
            raise StorageError(f"the record ledger {self.path} cannot be written: {err.strerror}") from err
        with self._lock:
            self._view = self._view.with_marks(marks)


class MemoryRecordLedger:
    """Implements RecordLedger in memory (one process; tests and the in-memory brain)."""

    def __init__(self) -> None:
        self._view = LedgerView()

    def view(self) -> LedgerView:
        return self._view

    async def mark(self, marks: Sequence[LedgerMark]) -> None:
        self._view = self._view.with_marks(marks)
