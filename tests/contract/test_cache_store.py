"""The CacheStore contract; every implementation subclasses CacheStoreContract and provides ``cache``."""

from __future__ import annotations

import pytest

from studio_brain.adapters.cache import MemoryCacheStore
from studio_brain.domain.errors import InputInvalid
from studio_brain.ports import CacheStore
from tests.fakes import FakeClock


class CacheStoreContract:
    """Subclasses provide fixtures ``cache`` (max 3 entries) and ``clock`` (a FakeClock it uses)."""

    async def test_a_value_set_can_be_read_back(self, cache: CacheStore) -> None:
        await cache.set("k", {"n": 1}, ttl_seconds=10)
        assert await cache.get("k") == {"n": 1}

    async def test_a_missing_key_reads_as_none(self, cache: CacheStore) -> None:
        assert await cache.get("absent") is None

    async def test_a_value_expires_after_its_ttl(self, cache: CacheStore, clock: FakeClock) -> None:
        await cache.set("k", "v", ttl_seconds=5)
        clock.advance(4.9)
        assert await cache.get("k") == "v"
        clock.advance(0.2)
        assert await cache.get("k") is None
        assert await cache.size() == 0

    async def test_the_least_recently_used_entry_is_evicted_when_full(self, cache: CacheStore) -> None:
        for key in ("a", "b", "c"):
            await cache.set(key, key, ttl_seconds=60)
        await cache.get("a")  # a is now the most recently used
        await cache.set("d", "d", ttl_seconds=60)
        assert await cache.get("b") is None
        assert {await cache.get(k) for k in ("a", "c", "d")} == {"a", "c", "d"}
        assert await cache.size() == 3

    async def test_delete_and_clear_remove_entries(self, cache: CacheStore) -> None:
        await cache.set("a", 1, ttl_seconds=60)
        await cache.set("b", 2, ttl_seconds=60)
        assert await cache.delete("a") is True
        assert await cache.delete("a") is False
        await cache.clear()
        assert await cache.size() == 0

    async def test_a_non_positive_ttl_is_refused(self, cache: CacheStore) -> None:
        with pytest.raises(InputInvalid):
            await cache.set("k", "v", ttl_seconds=0)


class TestMemoryCacheStore(CacheStoreContract):
    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def cache(self, clock: FakeClock) -> MemoryCacheStore:
        return MemoryCacheStore(clock=clock, max_entries=3)

    def test_a_cache_needs_room_for_one_entry(self, clock: FakeClock) -> None:
        with pytest.raises(InputInvalid):
            MemoryCacheStore(clock=clock, max_entries=0)
