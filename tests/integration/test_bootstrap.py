"""The composition root: ``open_brain`` yields a total, frozen Brain, on PostgreSQL or — for the stores
with an in-memory twin — in memory."""

from __future__ import annotations

import dataclasses

import pytest

from studio_brain.adapters.memory import InMemoryEventStore, InMemoryStateStore
from studio_brain.adapters.postgres.database import Database
from studio_brain.bootstrap import Brain, BrainParts, DatabaseTarget, open_brain
from studio_brain.domain.audit import ActorType
from studio_brain.domain.errors import ConfigError
from studio_brain.domain.identity import AuthMethod, Principal
from studio_brain.settings import load_settings

pytestmark = pytest.mark.postgres


def staff(actor_id: str, tenant: str) -> Principal:
    return Principal(
        tenant_id=tenant,
        actor_type=ActorType.STAFF,
        actor_id=actor_id,
        via=AuthMethod.CLI,
        roles=frozenset({"staff"}),
    )


async def test_the_brain_is_total_and_frozen(api_brain: Brain) -> None:
    for field in dataclasses.fields(Brain):
        assert getattr(api_brain, field.name) is not None, field.name
    with pytest.raises(dataclasses.FrozenInstanceError):
        api_brain.gateway = api_brain.gateway  # type: ignore[misc]
    assert api_brain.adapters == "postgres"


async def test_a_brain_missing_a_service_is_refused_by_name(api_brain: Brain) -> None:
    parts = BrainParts(
        **{
            f.name: getattr(api_brain, f.name)
            for f in dataclasses.fields(Brain)
            if f.name not in ("gateway", "brief")
        }
    )
    with pytest.raises(ConfigError, match="gateway"):
        parts.freeze()


async def test_a_memory_brain_keeps_gateway_state_and_audit_out_of_postgresql(
    database_url: str, auth_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUDIO_BRAIN_DATABASE_URL", database_url)
    target = DatabaseTarget(url=database_url, embedded=None)
    async with open_brain(load_settings(), target=target, adapters="memory") as brain:
        assert brain.adapters == "memory"
        assert isinstance(brain.state_store, InMemoryStateStore)
        assert isinstance(brain.events, InMemoryEventStore)
        alice, bob = staff("alice", brain.tenant_id), staff("bob", brain.tenant_id)
        created = await brain.gateway.create_proposal(
            alice, "studio.note.append", {"text": "memory brain note"}, "a note for the memory brain"
        )
        await brain.gateway.approve(bob, created.proposal.id, "fine by me, go ahead")
        done = await brain.gateway.execute(bob, created.proposal.id)
        assert done.proposal.status.value == "executed"
        actions = [e.action async for e in brain.events.stream(brain.tenant_id)]
        assert actions[0] == "capability.proposal.created"
        assert actions[-1] == "capability.proposal.executed"
        [report] = await brain.audit.verify(brain.tenant_id)
        assert report.problem is None
        assert report.checked == len(actions)
    database = Database(database_url, max_size=1)
    await database.open()
    try:
        async with database.connection() as conn:
            for table in ("gateway_proposals", "audit_events", "staff_notes"):
                cursor = await conn.execute(f"SELECT count(*) AS n FROM {table}")  # fixed table names
                row = await cursor.fetchone()
                assert row is not None
                assert row["n"] == 0, table
    finally:
        await database.close()
