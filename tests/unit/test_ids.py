"""Ids are UUIDv7: unique, time-ordered, never time alone."""

import uuid

from studio_brain.adapters.clock import UUID7Factory


def test_ids_are_version_7_and_unique_and_increasing() -> None:
    factory = UUID7Factory()
    ids = [factory.new_id() for _ in range(5000)]
    assert len(set(ids)) == 5000
    assert ids == sorted(ids)
    assert all(uuid.UUID(i).version == 7 for i in ids)


def test_two_factories_in_the_same_millisecond_do_not_collide() -> None:
    a, b = UUID7Factory(), UUID7Factory()
    assert {a.new_id() for _ in range(200)}.isdisjoint({b.new_id() for _ in range(200)})
