"""CacheStore: optional transient cache (seed §6). Losing it must never lose data."""

from __future__ import annotations

from typing import Any, Protocol


class CacheStore(Protocol):
    async def get(self, key: str) -> Any | None:
        """The live value under ``key``, or None when absent or expired."""
        ...

    async def set(self, key: str, value: Any, *, ttl_seconds: float) -> None:
        """Store ``value`` for ``ttl_seconds`` (> 0); may evict the least recently used entry."""
        ...

    async def delete(self, key: str) -> bool:
        """Remove ``key``; True when something was removed."""
        ...

    async def clear(self) -> None: ...

    async def size(self) -> int:
        """Number of live entries."""
        ...
