"""Concurrency on both stores (in memory and real PostgreSQL): one side effect for 50 simultaneous
executes, exact rate limits under 200 simultaneous calls, one in-flight execution per exclusive target;
and PostgreSQL's row-level security."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from studio_brain.adapters.postgres.database import Database
from studio_brain.domain.errors import PolicyRefused
from studio_brain.domain.proposals import Status
from tests.integration.conftest import MakeKit
from tests.integration.gateway_kit import ALICE, BOB, NOTE, WHY, Kit, build_kit, staff
from tests.unit.test_capabilities_registry import registry_with


async def outcomes(calls: list[asyncio.Future[object]] | list[object]) -> list[str]:
    results = await asyncio.gather(*calls, return_exceptions=True)  # type: ignore[arg-type]
    found: list[str] = []
    for result in results:
        if isinstance(result, PolicyRefused):
            found.append(result.reason_code)
        elif isinstance(result, BaseException):
            raise result
        else:
            found.append("OK")
    return found


async def test_fifty_simultaneous_executes_of_one_approved_proposal_cause_exactly_one_side_effect(
    kit: Kit,
) -> None:
    created = await kit.service.create_proposal(ALICE, "studio.note.append", NOTE, WHY)
    await kit.service.approve(BOB, created.proposal.id, "approved for the race")
    results = await outcomes([kit.service.execute(BOB, created.proposal.id) for _ in range(50)])
    assert results.count("OK") == 1
    assert set(results) == {"OK", "ALREADY_EXECUTED"}
    assert await kit.notes() == 1
    assert (await kit.service.get(BOB, created.proposal.id)).status is Status.EXECUTED
    actions = [e.action for e in await kit.audit()]
    assert actions.count("capability.proposal.executed") == 1
    # every refusal is counted; one caller's 49 come as the window's first row and one counted row
    assert await kit.refused() == {"ALREADY_EXECUTED": 49}
    assert await kit.chain_intact()


async def test_two_hundred_simultaneous_executes_against_a_limit_of_ten_an_hour_allow_exactly_ten(
    make_kit: MakeKit,
) -> None:
    kit = make_kit(
        registry=registry_with(
            rateLimit={"perHour": 10, "burst": 10}, exclusive=False, exemptionPolicy={"maxLifetimeHours": 1}
        ),
    )
    # an exemption instead of 200 approvals keeps the set-up short; the limiter is the same either way
    await kit.service.create_exemption(
        ALICE,
        capability_id="studio.test.write",
        justification="load test of the limiter",
        lifetime=timedelta(hours=1),
    )
    ids = []
    for i in range(200):
        created = await kit.service.create_proposal(ALICE, "studio.test.write", {"text": f"n{i}"}, WHY)
        ids.append(created.proposal.id)
    results = await outcomes([kit.service.execute(BOB, proposal_id) for proposal_id in ids])
    assert results.count("OK") == 10
    assert results.count("RATE_LIMITED") == 190
    assert await kit.notes() == 10
    buckets = {b.bucket: b.count for b in await kit.service.rate_buckets(ALICE)}
    assert buckets["studio.test.write:hour"] == 10


async def test_an_exclusive_target_runs_one_execution_at_a_time(kit: Kit) -> None:
    kit.roborock.delay = 0.5
    first = await kit.service.create_proposal(ALICE, "roborock.clean.start", {}, WHY)
    await kit.service.approve(BOB, first.proposal.id, "clean the studio floor")
    from dataclasses import replace

    from studio_brain.domain.capabilities import RateLimit

    cap = kit.service.registry.capabilities["roborock.clean.start"]
    kit.service.registry.capabilities["roborock.clean.start"] = replace(
        cap, cooldown_seconds=0, rate_limit=RateLimit(per_hour=10, burst=10)
    )  # type: ignore[index]
    second = await kit.service.create_proposal(ALICE, "roborock.clean.start", {"segments": [1]}, WHY)
    await kit.service.approve(BOB, second.proposal.id, "clean the kitchen too")
    running = asyncio.ensure_future(kit.service.execute(BOB, first.proposal.id))
    await asyncio.sleep(0.2)
    with pytest.raises(PolicyRefused) as caught:
        await kit.service.execute(BOB, second.proposal.id)
    assert caught.value.reason_code == "TARGET_BUSY"
    assert (await running).proposal.status is Status.EXECUTED
    assert (await kit.service.execute(BOB, second.proposal.id)).proposal.status is Status.EXECUTED


@pytest.mark.postgres
async def test_row_level_security_hides_one_tenants_proposals_from_another(
    database: Database, database_url: str
) -> None:
    kit = build_kit(database)
    await kit.service.create_proposal(ALICE, "studio.note.append", NOTE, WHY)
    await kit.service.create_proposal(staff("zed", tenant="studio-b"), "studio.note.append", NOTE, WHY)
    role = f"sb_app_{uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as admin:
        await admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS").format(sql.Identifier(role))
        )
        await admin.execute(
            sql.SQL("GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO {}").format(
                sql.Identifier(role)
            )
        )
    try:
        app_url = make_conninfo(database_url, user=role)
        async with await psycopg.AsyncConnection.connect(app_url) as conn:

            async def visible(tenant: str | None) -> set[str]:
                if tenant is not None:
                    await conn.execute("SELECT set_config('studio_brain.tenant_id', %s, true)", (tenant,))
                cursor = await conn.execute("SELECT tenant_id FROM gateway_proposals")
                rows = {r[0] for r in await cursor.fetchall()}
                await conn.rollback()
                return rows

            assert await visible("studio-a") == {"studio-a"}
            assert await visible("studio-b") == {"studio-b"}
            assert await visible(None) == set()
            await conn.execute("SELECT set_config('studio_brain.tenant_id', 'studio-b', true)")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                await conn.execute(
                    "INSERT INTO staff_notes (id, tenant_id, text, idempotency_key, created_at)"
                    " VALUES ('x', 'studio-a', 'planted', 'k', now())"
                )
            await conn.rollback()
    finally:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as admin:
            await admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            await admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
