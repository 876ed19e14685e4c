"""Durable writes to local files: every byte written and fsynced before the caller goes on."""

from __future__ import annotations

import os
from pathlib import Path


def write_synced(path: Path, data: bytes, flags: int) -> None:
    """Open ``path`` with ``flags`` (mode 0600 when created), write all of ``data``, fsync, close."""
    fd = os.open(path, flags, 0o600)
    try:
        view = memoryview(data)
        while view:  # os.write may write less than asked
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
