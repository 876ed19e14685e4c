"""Audit files outside the database: the append-only checkpoint file, and JSONL exports with a manifest.

Checkpoint file: one JSON checkpoint per line, appended under an exclusive ``flock`` and fsynced, so a
truncation of the database's newest rows (and of its checkpoint table) is still detectable.

Full disks and crashes (issue 13): an append that fails (ENOSPC, EFBIG, EIO) is truncated back to the
file's previous length, so it never leaves half a line. A last line without its newline can still be
left by a crash or power cut mid-write: it is a *torn tail*, recognised as such (it carries no complete
signature, so nothing is lost with it), reported in a warning, ignored by readers, and removed by the next
append or by ``audit checkpoint --repair``. Damage anywhere else (a complete line that is not a
checkpoint) is still reported as damage.

Export: ``FILE`` holds one event per line (the canonical hash payload plus ``hash``); the manifest is
``FILE.manifest.json``. Both are written to temporary names and renamed into place when complete. A
writer holds a ``flock`` on its partial file, so partial files of a killed export (the lock died with
its process) are removed by the next export into the same directory. Creating a partial file and locking
it are two steps; both, and the sweep for stale partials, run under a ``flock`` on the directory itself,
so a sweep never meets a live export's file in between (and takes it for a killed one's).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from studio_brain.domain.audit import (
    AuditCheckpoint,
    AuditEvent,
    checkpoint_from_json,
    checkpoint_to_json,
    event_from_json,
    event_to_json,
)
from studio_brain.domain.errors import DataCorrupted, InputInvalid, StorageError
from studio_brain.logging import get_logger

log = get_logger(__name__)

MANIFEST_SUFFIX = ".manifest.json"
PARTIAL_SUFFIX = ".partial"


@dataclass(frozen=True, kw_only=True, slots=True)
class TornTail:
    """The incomplete last line an interrupted append left (no newline): not a checkpoint, not tampering."""

    path: Path
    line: int
    #: where the complete lines end (the file is truncated back to this length on repair)
    offset: int
    size: int

    def describe(self) -> str:
        return (
            f"checkpoint file {self.path} ends with an incomplete line {self.line} ({self.size} bytes): "
            "an interrupted append (full disk or crash), not tampering; "
            "`studio-brain audit checkpoint --repair` removes it"
        )


def manifest_path(export: Path) -> Path:
    return export.with_name(export.name + MANIFEST_SUFFIX)


def _line(value: dict[str, Any]) -> bytes:
    return (json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n").encode()


class CheckpointFile:
    """Checkpoints appended to a JSONL file (implements the CheckpointStore port)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)

    def _append(self, checkpoint: AuditCheckpoint) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = _line(checkpoint_to_json(checkpoint))
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # concurrent writers never interleave lines
            torn = self._torn_tail(fd)
            if torn is not None:
                # the tail is provably incomplete (no newline): appending after it would glue two lines
                os.ftruncate(fd, torn.offset)
                log.warning("audit.checkpoint_file.torn_tail_removed", path=str(self.path), bytes=torn.size)
            before = os.fstat(fd).st_size
            try:
                _write_all(fd, line)
                os.fsync(fd)
            except OSError:
                # a full disk wrote part of the line: take it back, the file stays whole
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, before)
                    os.fsync(fd)
                raise
        finally:
            os.close(fd)

    def _torn_tail(self, fd: int) -> TornTail | None:
        """The incomplete last line of the open file ``fd``, if its last byte is not a newline."""
        size = os.fstat(fd).st_size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return None
        data = os.pread(fd, size, 0)
        offset = data.rfind(b"\n") + 1
        return TornTail(path=self.path, line=data.count(b"\n") + 1, offset=offset, size=size - offset)

    def _read(self) -> tuple[list[AuditCheckpoint], TornTail | None]:
        if not self.path.exists():
            return [], None
        kept: list[AuditCheckpoint] = []
        data = self.path.read_bytes()
        body, torn = data, None
        if data and not data.endswith(b"\n"):
            offset = data.rfind(b"\n") + 1
            body = data[:offset]
            torn = TornTail(
                path=self.path, line=data.count(b"\n") + 1, offset=offset, size=len(data) - offset
            )
        for number, text in enumerate(body.splitlines(), start=1):
            if not text.strip():
                continue
            try:
                kept.append(checkpoint_from_json(json.loads(text)))
            except (ValueError, InputInvalid) as err:
                raise DataCorrupted(
                    f"checkpoint file {self.path} line {number} is not a checkpoint; "
                    "the file outside the database has been damaged"
                ) from err
        if torn is not None:
            log.warning(
                "audit.checkpoint_file.torn_tail", path=str(self.path), line=torn.line, bytes=torn.size
            )
        return kept, torn

    def inspect(self) -> TornTail | None:
        """The torn tail of the file, if any (raises DataCorrupted for damage elsewhere, OSError)."""
        return self._read()[1]

    def repair(self) -> TornTail | None:
        """Remove a torn tail (under the writers' lock); returns what was removed, None when whole."""
        if not self.path.exists():
            return None
        fd = os.open(self.path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            torn = self._torn_tail(fd)
            if torn is not None:
                os.ftruncate(fd, torn.offset)
                os.fsync(fd)
                log.info(
                    "audit.checkpoint_file.repaired", path=str(self.path), line=torn.line, bytes=torn.size
                )
            return torn
        finally:
            os.close(fd)

    async def save(self, checkpoint: AuditCheckpoint) -> None:
        try:
            kept, _torn = await asyncio.to_thread(self._read)
            if checkpoint not in kept:
                await asyncio.to_thread(self._append, checkpoint)
        except OSError as err:
            raise StorageError(f"cannot append to the checkpoint file {self.path}: {err.strerror}") from err

    async def checkpoints(self, tenant_id: str | None = None) -> list[AuditCheckpoint]:
        try:
            kept, _torn = await asyncio.to_thread(self._read)
        except OSError as err:
            raise StorageError(f"cannot read the checkpoint file {self.path}: {err.strerror}") from err
        kept = [c for c in kept if tenant_id is None or c.tenant_id == tenant_id]
        return sorted(kept, key=lambda c: (c.tenant_id, c.seq))


class JsonlExportWriter:
    """Writes an export to ``path`` (+ manifest); nothing appears at ``path`` until :meth:`finish`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._partial = path.with_name(f".{path.name}{PARTIAL_SUFFIX}")
        self._handle: IO[bytes] | None = None
        self.rows = 0

    def _open(self) -> IO[bytes]:
        if self._handle is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with _directory_locked(self.path.parent):
                    remove_stale_partials(self.path.parent)
                    self._handle = self._create_locked_partial()
            except OSError as err:
                raise InputInvalid(f"cannot write the export to {self.path}: {err.strerror}") from err
        return self._handle

    def _create_locked_partial(self) -> IO[bytes]:
        handle = open(self._partial, "wb")  # noqa: SIM115 - closed in finish/abort
        try:
            # held while writing: a partial file nobody holds belongs to a killed export
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            handle.close()
            raise InputInvalid(f"another export to {self.path} is running") from err
        return handle

    async def write_event(self, event: AuditEvent) -> None:
        self._open().write(_line(event_to_json(event)))
        self.rows += 1

    async def finish(self, manifest: dict[str, Any]) -> None:
        handle = self._open()
        try:
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            manifest_partial = manifest_path(self._partial)
            manifest_partial.write_text(
                json.dumps(manifest, ensure_ascii=False, sort_keys=True, indent=2) + "\n", encoding="utf-8"
            )
            os.replace(self._partial, self.path)
            os.replace(manifest_partial, manifest_path(self.path))
        except OSError as err:
            raise StorageError(f"cannot finish the export {self.path}: {err.strerror}") from err

    def abort(self) -> None:
        """Remove the partial files after a failure."""
        for leftover in (self._partial, manifest_path(self._partial)):
            with contextlib.suppress(OSError):
                leftover.unlink()
        if self._handle is not None:
            self._handle.close()


@contextlib.contextmanager
def _directory_locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``directory`` (released with the process if it dies)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held for a sweep and one file's creation: milliseconds
        yield
    finally:
        os.close(fd)


def remove_stale_partials(directory: Path) -> list[Path]:
    """Delete the partial files of exports killed in ``directory`` (their writer's lock is gone).

    Call it holding :func:`_directory_locked` on ``directory``: a live export creates its partial file and
    locks it under that lock, so no unlocked partial file seen here belongs to a running export."""
    removed: list[Path] = []
    for partial in directory.glob(f".*{PARTIAL_SUFFIX}"):
        try:
            with open(partial, "rb") as handle:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                partial.unlink()
                # its manifest, written only just before the rename, goes with it
                with contextlib.suppress(OSError):
                    manifest_path(partial).unlink()
                removed.append(partial)
        except OSError:
            continue  # a live export holds it (or it vanished meanwhile)
    if removed:
        log.info("audit.export.partials_removed", files=[str(p) for p in removed])
    return removed


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class JsonlExportReader:
    """Reads an export written by :class:`JsonlExportWriter` (implements the ExportReader port)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def manifest(self) -> dict[str, Any]:
        where = manifest_path(self.path)
        try:
            data = json.loads(where.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputInvalid(f"no manifest next to the export: expected {where}") from None
        except (OSError, ValueError) as err:
            raise InputInvalid(f"the export manifest {where} is unreadable") from err
        if not isinstance(data, dict):
            raise InputInvalid(f"the export manifest {where} is not a JSON object")
        return data

    async def events(self) -> AsyncIterator[AuditEvent]:
        try:
            handle = open(self.path, "rb")  # noqa: SIM115, ASYNC230 - streamed line by line, closed below
        except OSError as err:
            raise InputInvalid(f"cannot read the export {self.path}: {err.strerror}") from err
        with handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    event = event_from_json(json.loads(raw))
                except ValueError as err:  # includes a UnicodeDecodeError
                    raise DataCorrupted(f"export line {number} is not a JSON event") from err
                except InputInvalid as err:
                    raise DataCorrupted(f"export line {number}: {err.message}") from err
                yield event
