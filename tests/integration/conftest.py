"""Fixtures of the gateway tests: ``kit``/``make_kit`` run a test on the in-memory stores (milliseconds, no
database) and on PostgreSQL (the same contract, the real thing); ``pg_kit`` only on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pytest

from studio_brain.adapters.postgres.database import Database
from tests.integration.gateway_kit import Kit, build_kit

MakeKit = Callable[..., Kit]


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.postgres)])
def make_kit(request: pytest.FixtureRequest) -> MakeKit:
    """``make_kit(registry=…, clock=…)`` on each store in turn."""
    database: Database | None = request.getfixturevalue("database") if request.param == "postgres" else None
    return partial(build_kit, database)


@pytest.fixture
def kit(make_kit: MakeKit) -> Kit:
    return make_kit()


@pytest.fixture
def pg_kit(database: Database) -> Kit:
    return build_kit(database)
