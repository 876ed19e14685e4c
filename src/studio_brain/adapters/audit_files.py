"""Audit files outside the database: the append-only checkpoint file, and JSONL exports with a manifest.

Checkpoint file: one JSON checkpoint per line, appended under an exclusive ``flock`` and fsynced, so a
truncation of the database's newest rows (and of its checkpoint table) is still detectable.

Export: ``FILE`` holds one event per line (the canonical hash payload plus ``hash``); the manifest is
``FILE.manifest.json``. Both are written to temporary names and renamed into place when complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
from collections.abc import AsyncIterator
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

MANIFEST_SUFFIX = ".manifest.json"


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
        with open(self.path, "ab") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # concurrent writers never interleave lines
            handle.write(_line(checkpoint_to_json(checkpoint)))
            handle.flush()
            os.fsync(handle.fileno())

    def _read(self) -> list[AuditCheckpoint]:
        if not self.path.exists():
            return []
        kept: list[AuditCheckpoint] = []
        with open(self.path, "rb") as handle:
            for number, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    kept.append(checkpoint_from_json(json.loads(text)))
                except (ValueError, InputInvalid) as err:
                    raise DataCorrupted(
                        f"checkpoint file {self.path} line {number} is not a checkpoint; "
                        "the file outside the database has been damaged"
                    ) from err
        return kept

    async def save(self, checkpoint: AuditCheckpoint) -> None:
        try:
            if checkpoint not in await asyncio.to_thread(self._read):
                await asyncio.to_thread(self._append, checkpoint)
        except OSError as err:
            raise StorageError(f"cannot append to the checkpoint file {self.path}: {err.strerror}") from err

    async def checkpoints(self, tenant_id: str | None = None) -> list[AuditCheckpoint]:
        try:
            kept = await asyncio.to_thread(self._read)
        except OSError as err:
            raise StorageError(f"cannot read the checkpoint file {self.path}: {err.strerror}") from err
        kept = [c for c in kept if tenant_id is None or c.tenant_id == tenant_id]
        return sorted(kept, key=lambda c: (c.tenant_id, c.seq))


class JsonlExportWriter:
    """Writes an export to ``path`` (+ manifest); nothing appears at ``path`` until :meth:`finish`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._partial = path.with_name(f".{path.name}.partial")
        self._handle: IO[bytes] | None = None
        self.rows = 0

    def _open(self) -> IO[bytes]:
        if self._handle is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._handle = open(self._partial, "wb")  # noqa: SIM115 - closed in finish/abort
            except OSError as err:
                raise InputInvalid(f"cannot write the export to {self.path}: {err.strerror}") from err
        return self._handle

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
        if self._handle is not None:
            self._handle.close()
        for leftover in (self._partial, manifest_path(self._partial)):
            with contextlib.suppress(OSError):
                leftover.unlink()


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
