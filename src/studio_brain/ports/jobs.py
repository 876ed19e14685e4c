"""Locks the scheduler relies on: a per-job run lock (no overlapping runs) and the leader lock (one brain runs jobs)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol


class JobLocks(Protocol):
    def hold(self, tenant_id: str, job: str) -> AbstractAsyncContextManager[bool]:
        """Try to hold the run lock of ``job`` for the ``async with`` block; yields False when another run
        (in any process on the same database) holds it. Never waits."""
        ...


class LeaderLock(Protocol):
    """Leader election: at most one holder per tenant across every brain sharing the database."""

    async def try_acquire(self) -> bool:
        """Become leader if nobody is; True when this process holds the lock (idempotent)."""
        ...

    async def still_held(self) -> bool:
        """Verify the lock is still ours (its connection alive, the lock listed); False means step down."""
        ...

    async def release(self) -> None:
        """Give the lock up and close its connection (safe to call when not held)."""
        ...
