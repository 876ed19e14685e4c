"""In-memory CacheStore: TTL per entry, bounded size with least-recently-used eviction."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

from studio_brain.domain.errors import InputInvalid
from studio_brain.ports.clock import Clock


class MemoryCacheStore:
    def __init__(self, *, clock: Clock, max_entries: int = 1024) -> None:
        if max_entries < 1:
            raise InputInvalid("max_entries must be at least 1")
        self._clock = clock
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = asyncio.Lock()

    def _live(self, key: str) -> tuple[bool, Any]:
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        expires_at, value = entry
        if self._clock.monotonic() >= expires_at:
            del self._entries[key]
            return False, None
        return True, value

    async def get(self, key: str) -> Any | None:
        async with self._lock:
            found, value = self._live(key)
            if found:
                self._entries.move_to_end(key)
            return value

    async def set(self, key: str, value: Any, *, ttl_seconds: float) -> None:
        if ttl_seconds <= 0:
            raise InputInvalid("ttl_seconds must be positive")
        async with self._lock:
            self._entries[key] = (self._clock.monotonic() + ttl_seconds, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    async def delete(self, key: str) -> bool:
        async with self._lock:
            return self._entries.pop(key, None) is not None

    async def clear(self) -> None:
        async with self._lock:
            self._entries.clear()

    async def size(self) -> int:
        async with self._lock:
            now = self._clock.monotonic()
            for key in [k for k, (exp, _) in self._entries.items() if now >= exp]:
                del self._entries[key]
            return len(self._entries)
