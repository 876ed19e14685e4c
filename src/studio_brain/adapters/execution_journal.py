"""The execution journal as files under STUDIO_BRAIN_HOME (implements ExecutionJournal; issue 13).

One JSON file per pending outcome (``<proposal id>.json``), written to a temporary name, fsynced and
renamed into place with the directory fsynced, so after a crash a file is either whole or absent. It is
removed once the database holds the outcome. Small and rare (one per device write), so no index.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from pathlib import Path

from studio_brain.adapters.durable_files import write_synced
from studio_brain.domain.errors import StorageError
from studio_brain.domain.outcomes import RecordedOutcome
from studio_brain.logging import get_logger

log = get_logger(__name__)

_SAFE = re.compile(r"[A-Za-z0-9._-]{1,200}")


class FileExecutionJournal:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, proposal_id: str) -> Path:
        if not _SAFE.fullmatch(proposal_id):
            raise StorageError(f"proposal id {proposal_id!r} is not a safe journal file name")
        return self.directory / f"{proposal_id}.json"

    def _write(self, outcome: RecordedOutcome) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        final = self._path(outcome.proposal_id)
        temporary = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        data = json.dumps(outcome.to_json(), sort_keys=True).encode()
        write_synced(temporary, data, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.replace(temporary, final)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    async def record(self, outcome: RecordedOutcome) -> None:
        try:
            await asyncio.to_thread(self._write, outcome)
        except OSError as err:
            # the database write is still attempted; only crash recovery is lost for this one
            log.warning("execution.journal.unwritable", proposal_id=outcome.proposal_id, error=err.strerror)

    async def forget(self, proposal_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self._path(proposal_id).unlink)

    def _read_all(self) -> list[RecordedOutcome]:
        if not self.directory.exists():
            return []
        found: list[RecordedOutcome] = []
        for path in self.directory.glob("*.json"):
            try:
                found.append(RecordedOutcome.from_json(json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, ValueError, KeyError, TypeError):
                log.warning("execution.journal.unreadable", file=str(path))
        return sorted(found, key=lambda o: o.recorded_at)

    async def pending(self) -> list[RecordedOutcome]:
        return await asyncio.to_thread(self._read_all)


class MemoryExecutionJournal:
    """The same port in memory (in-memory gateways and tests): survives nothing, which is its contract."""

    def __init__(self) -> None:
        self._kept: dict[str, RecordedOutcome] = {}

    async def record(self, outcome: RecordedOutcome) -> None:
        self._kept[outcome.proposal_id] = outcome

    async def forget(self, proposal_id: str) -> None:
        self._kept.pop(proposal_id, None)

    async def pending(self) -> list[RecordedOutcome]:
        return sorted(self._kept.values(), key=lambda o: o.recorded_at)
