"""Swarm drafts on real PostgreSQL: dedupe and cooldown enforced in SQL, the Portal's row shapes, agents'
drafts, staff review of marketing copy, refusals audited, and the swarms run end to end over stored history.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from studio_brain.adapters.postgres.database import Database
from studio_brain.adapters.postgres.drafts_store import PostgresDraftStore
from studio_brain.adapters.postgres.event_store import PostgresEventStore
from studio_brain.adapters.postgres.state_store import PostgresStateStore
from studio_brain.domain.audit import ActorType, AuditQuery
from studio_brain.domain.drafts import DraftKind, DraftOutcome, Evidence, Finding, Severity
from studio_brain.domain.errors import Conflict, InputInvalid, NotFound, PolicyRefused
from studio_brain.domain.identity import AuthMethod, Principal
from studio_brain.domain.rules import SNAPSHOT_FIELDS
from studio_brain.services.swarms.drafts import DraftService
from studio_brain.services.swarms.finance import FinanceSwarm
from studio_brain.services.swarms.marketing import MarketingSwarm
from studio_brain.services.swarms.ops import OpsSwarm
from studio_brain.services.swarms.runner import SwarmService
from tests.fakes import FakeClock, SequentialIds
from tests.unit.test_swarm_rules import NOW, PHOENIX, calm_history, replace_today, snapshot_run

pytestmark = pytest.mark.postgres

TENANT = "monsoonfire-main"
STAFF = Principal(
    tenant_id=TENANT,
    actor_type=ActorType.STAFF,
    actor_id="staff-1",
    via=AuthMethod.FIREBASE,
    roles=frozenset({"staff"}),
)
AGENT = Principal(
    tenant_id=TENANT,
    actor_type=ActorType.AGENT,
    actor_id="agent-7",
    via=AuthMethod.AGENT_TOKEN,
    scopes=frozenset({"drafts:write", "drafts:read"}),
)
READ_ONLY_AGENT = Principal(
    tenant_id=TENANT, actor_type=ActorType.AGENT, actor_id="agent-8", via=AuthMethod.AGENT_TOKEN
)


@dataclass
class World:
    clock: FakeClock
    store: PostgresDraftStore
    state: PostgresStateStore
    events: PostgresEventStore
    drafts: DraftService
    database: Database


@pytest.fixture
def world(database: Database) -> World:
    clock = FakeClock(NOW)
    ids = SequentialIds("d")
    events = PostgresEventStore(database, SequentialIds("ev"))
    state = PostgresStateStore(database)
    store = PostgresDraftStore(database, zone=PHOENIX)
    drafts = DraftService(
        tenant_id=TENANT, store=store, clock=clock, ids=ids, events=events, state_store=state
    )
    return World(clock=clock, store=store, state=state, events=events, drafts=drafts, database=database)


def finding(*, cooldown_hours: float = 20.0, subject: str = "ops.agentRequestsPending:up") -> Finding:
    return Finding(
        kind=DraftKind.OPS,
        rule_id="ops.anomaly.robust_z",
        subject=subject,
        severity=Severity.MEDIUM,
        title="agent requests unusually high",
        rationale="30 vs about 4 expected",
        recommendation="Triage the queue.",
        snapshot_date=NOW.date(),
        evidence=Evidence(
            snapshot_ids=("run-1",), metrics={"ops.agentRequestsPending": 30}, rule_ids=("ops.x",)
        ),
        confidence=0.8,
        cooldown_hours=cooldown_hours,
    )


async def actions(world: World) -> list[str]:
    page = await world.events.query(TENANT, AuditQuery(limit=500))
    return [e.action for e in page.events]


async def test_the_same_finding_on_the_same_day_is_one_draft(world: World) -> None:
    sink = world.drafts.sink("ops")
    assert await sink.add(finding(cooldown_hours=0)) is DraftOutcome.CREATED
    world.clock.advance(3600)
    assert await sink.add(finding(cooldown_hours=0)) is DraftOutcome.DUPLICATE
    assert len(await world.drafts.list_ops(STAFF)) == 1


async def test_a_finding_in_its_cooldown_is_not_drafted_again_until_it_expires(world: World) -> None:
    sink = world.drafts.sink("ops")
    assert await sink.add(finding(cooldown_hours=72)) is DraftOutcome.CREATED
    world.clock.advance(25 * 3600)  # another day, still cooling down
    assert await sink.add(finding(cooldown_hours=72)) is DraftOutcome.COOLING_DOWN
    world.clock.advance(48 * 3600)
    assert await sink.add(finding(cooldown_hours=72)) is DraftOutcome.CREATED
    assert len(await world.drafts.list_ops(STAFF)) == 2


async def test_the_cooldown_holds_for_a_writer_that_bypasses_the_service(world: World) -> None:
    await world.drafts.sink("ops").add(finding(cooldown_hours=72))
    async with world.database.connection() as conn:
        cursor = await conn.execute(
            "INSERT INTO swarm_drafts SELECT 'sneaky', tenant_id, kind, rule_id, subject, repeat('a', 64),"
            " cooldown_key, cooldown_seconds, draft_day + 1, status, severity, title, rationale, recommendation,"
            " snapshot_date, evidence, confidence, body, actor_type, actor_id, created_at + interval '1 day',"
            " updated_at FROM swarm_drafts RETURNING id"
        )
        assert await cursor.fetchall() == []


async def test_concurrent_adds_of_one_finding_create_exactly_one_draft(world: World) -> None:
    sink = world.drafts.sink("ops")
    outcomes = await asyncio.gather(*(sink.add(finding(cooldown_hours=72)) for _ in range(8)))
    assert outcomes.count(DraftOutcome.CREATED) == 1
    assert len(await world.drafts.list_ops(STAFF)) == 1


async def test_a_swarm_sink_can_add_and_nothing_else(world: World) -> None:
    sink = world.drafts.sink("ops")
    assert [name for name in dir(sink) if not name.startswith("_")] == ["add"]


async def test_rows_come_in_the_portals_shapes(world: World) -> None:
    await world.drafts.sink("ops").add(finding())
    ops = (await world.drafts.list_ops(STAFF))[0]
    assert {"id", "at", "rationale", "ruleId", "severity", "title", "recommendation", "snapshotDate"} <= set(
        ops
    )
    assert ops["at"].endswith("Z")
    assert ops["snapshotDate"] == NOW.date().isoformat()
    result = await world.drafts.add_agent_draft(
        AGENT,
        kind="finance",
        rule_id="agent.reconcile",
        title="Reconcile November",
        rationale="Two payments look stuck.",
        recommendation="Compare with Stripe.",
        evidence={"metrics": {"finance.unsettledPayments": 12}, "snapshotIds": ["run-1"]},
        confidence=0.5,
    )
    assert result["outcome"] == "created"
    fin = (await world.drafts.list_finance(STAFF))[0]
    expected = {"id", "at", "ruleId", "severity", "title", "rationale", "recommendation", "snapshotDate"}
    assert expected | {"evidenceRefs", "confidence"} <= set(fin)
    assert fin["evidenceRefs"] == ["snapshot:run-1", "metric:finance.unsettledPayments=12"]
    assert fin["source"] == "agent:agent-7"


async def test_staff_move_marketing_copy_through_review_and_it_is_audited(world: World) -> None:
    created = await world.drafts.add_agent_draft(
        AGENT,
        kind="marketing",
        rule_id="agent.kiln_space",
        title="Kiln space",
        rationale="Few firings scheduled",
        recommendation="Post it",
        evidence={"ruleIds": ["agent.kiln_space"]},
        confidence=0.6,
        copy="Room in the kiln this week. Book a spot.",
    )
    draft_id = created["draftId"]
    row = (await world.drafts.list_marketing(STAFF))[0]
    expected = {"id", "at", "draftId", "status", "channel", "title", "copy", "sourceSnapshotDate"}
    assert expected | {"sourceRefs", "confidenceNotes", "templateVersion"} <= set(row)
    assert row["status"] == "draft"
    step = await world.drafts.review_marketing(STAFF, draft_id, "needs_review", "looks fine")
    assert step == {"draftId": draft_id, "fromStatus": "draft", "toStatus": "needs_review"}
    await world.drafts.review_marketing(STAFF, draft_id, "approved_for_publish", "approved")
    assert (await world.drafts.list_marketing(STAFF))[0]["status"] == "approved_for_publish"
    assert (await actions(world)).count("marketing.draft.reviewed") == 2


async def test_the_review_machine_refuses_a_skipped_step(world: World) -> None:
    created = await world.drafts.add_agent_draft(
        STAFF,
        kind="marketing",
        rule_id="agent.copy",
        title="Hello",
        rationale="r",
        recommendation="post",
        evidence={"ruleIds": ["agent.copy"]},
        confidence=0.5,
        copy="Hello potters",
    )
    with pytest.raises(Conflict, match="draft to approved_for_publish"):
        await world.drafts.review_marketing(STAFF, created["draftId"], "approved_for_publish", "skip")
    with pytest.raises(InputInvalid, match="toStatus"):
        await world.drafts.review_marketing(STAFF, created["draftId"], "published", "publish it")
    with pytest.raises(NotFound):
        await world.drafts.review_marketing(STAFF, "no-such-draft", "needs_review", "x")


async def test_an_agent_can_never_review_marketing_copy_and_the_refusal_is_audited(world: World) -> None:
    await world.drafts.sink("marketing").add(
        Finding(
            kind=DraftKind.MARKETING,
            rule_id="marketing.kiln_space",
            subject="marketing.kiln_space",
            severity=Severity.INFO,
            title="Kiln space",
            rationale="r",
            recommendation="review",
            snapshot_date=NOW.date(),
            evidence=Evidence(rule_ids=("marketing.kiln_space",)),
            confidence=0.6,
            body={"copy": "Room in the kiln", "channel": "newsletter", "templateVersion": "t"},
        )
    )
    draft_id = (await world.drafts.list_marketing(STAFF))[0]["draftId"]
    with pytest.raises(PolicyRefused) as refused:
        await world.drafts.review_marketing(AGENT, draft_id, "needs_review", "let me")
    assert refused.value.reason_code == "STAFF_REQUIRED"
    assert "marketing.draft.review.refused" in await actions(world)
    assert (await world.drafts.list_marketing(STAFF))[0]["status"] == "draft"


async def test_an_agent_without_the_write_scope_is_refused_and_audited(world: World) -> None:
    with pytest.raises(PolicyRefused) as refused:
        await world.drafts.add_agent_draft(
            READ_ONLY_AGENT,
            kind="ops",
            rule_id="agent.x",
            title="t",
            rationale="r",
            recommendation="x",
            evidence={"ruleIds": ["agent.x"]},
            confidence=0.5,
        )
    assert refused.value.reason_code == "SCOPE_MISSING"
    assert "drafts.add.refused" in await actions(world)
    with pytest.raises(PolicyRefused):
        await world.drafts.list_ops(READ_ONLY_AGENT)


async def test_agent_marketing_copy_holding_an_internal_figure_is_refused(world: World) -> None:
    values = {
        **dict.fromkeys(("counts.batchesActive", "counts.batchesClosed"), 1),
        "finance.unsettledPayments": 4321,
    }
    await world.state.save_run(snapshot_run(NOW.date(), values))
    with pytest.raises(PolicyRefused) as refused:
        await world.drafts.add_agent_draft(
            AGENT,
            kind="marketing",
            rule_id="agent.copy",
            title="Big month",
            rationale="r",
            recommendation="post",
            evidence={"ruleIds": ["agent.copy"]},
            confidence=0.5,
            copy="We processed 4321 things this month!",
        )
    assert refused.value.reason_code == "COPY_NOT_PUBLIC"
    assert await world.drafts.list_marketing(STAFF) == []


async def test_bad_agent_input_is_a_clear_error_and_stores_nothing(world: World) -> None:
    with pytest.raises(InputInvalid, match="evidence"):
        await world.drafts.add_agent_draft(
            AGENT,
            kind="ops",
            rule_id="agent.x",
            title="t",
            rationale="r",
            recommendation="x",
            evidence={},
            confidence=0.5,
        )
    with pytest.raises(InputInvalid, match="confidence"):
        await world.drafts.add_agent_draft(
            AGENT,
            kind="ops",
            rule_id="agent.x",
            title="t",
            rationale="r",
            recommendation="x",
            evidence={"ruleIds": ["agent.x"]},
            confidence=7,
        )
    with pytest.raises(InputInvalid, match="kind"):
        await world.drafts.add_agent_draft(
            AGENT,
            kind="sales",
            rule_id="agent.x",
            title="t",
            rationale="r",
            recommendation="x",
            evidence={},
            confidence=1,
        )
    assert await world.drafts.list_ops(STAFF) == []


async def test_the_swarms_draft_from_stored_history_once_per_day(world: World) -> None:
    history = replace_today(
        calm_history(40, end=NOW.astimezone(PHOENIX).date()),
        ops__agentRequestsPending=30,
        ops__highSeverityReports=1,
    )
    today = history[-1]
    values = {t: today.document[t.split(".")[0]][t.split(".")[1]] for t in SNAPSHOT_FIELDS}
    # today's finance figures were last read 40 hours ago
    stale_finance = snapshot_run(today.snapshot_date, values, stripe_read_at=NOW - timedelta(hours=40))
    for run in [*history[:-1], stale_finance]:
        await world.state.save_run(run)
    service = SwarmService(
        tenant_id=TENANT,
        state_store=world.state,
        drafts=world.drafts,
        clock=world.clock,
        zone=PHOENIX,
        swarms=(OpsSwarm(), FinanceSwarm(), MarketingSwarm()),
    )
    first = await service.run()
    assert first["historyDays"] == 40
    assert first["ops"]["created"] >= 2
    assert first["finance"]["created"] >= 1
    assert first["marketing"]["created"] >= 1
    for kind in DraftKind:
        assert await world.drafts.list_rows(STAFF, kind), kind
    finance_rules = {row["ruleId"] for row in await world.drafts.list_finance(STAFF)}
    assert "finance.read_stale" in finance_rules
    second = await service.run()
    assert all(second[s]["created"] == 0 for s in ("ops", "finance", "marketing"))
    assert second["ops"]["duplicates"] + second["ops"]["coolingDown"] == first["ops"]["created"]
    assert "draft.ops.created" in await actions(world)


async def test_a_finance_draft_also_drafts_a_review_proposal_a_human_must_submit(
    database_url: str, tmp_path: Path
) -> None:
    from studio_brain.bootstrap import open_brain
    from studio_brain.domain.proposals import Status
    from studio_brain.ports.gateway import ProposalFilter
    from studio_brain.settings import load_settings

    settings = load_settings(database_url=database_url, home=tmp_path, state_source="demo")
    async with open_brain(settings) as brain:
        today = brain.clock.now().astimezone(settings.zone).date()
        history = calm_history(30, end=today)
        last = history[-1]
        values = {t: last.document[t.split(".")[0]][t.split(".")[1]] for t in SNAPSHOT_FIELDS}
        stale = snapshot_run(today, values, stripe_read_at=brain.clock.now() - timedelta(days=3))
        for run in [*history[:-1], stale]:
            await brain.state_store.save_run(run)
        summary = await brain.swarms.run()
        assert summary["finance"]["created"] >= 1
        proposals = await brain.gateway.list_proposals(
            STAFF, ProposalFilter(capability_id="studio.note.append")
        )
        assert proposals
        assert {p.status for p in proposals} == {Status.DRAFT}
        assert all(p.requested_by == "swarm:finance" for p in proposals)
        assert "Reconciliation review" in proposals[0].input["text"]


async def test_the_demo_shows_drafts_from_all_three_swarms_with_evidence(
    database_url: str, tmp_path: Path
) -> None:
    from studio_brain.bootstrap import open_brain
    from studio_brain.cli.jobs import prepare_demo_swarms
    from studio_brain.cli.state import prepare_demo_state
    from studio_brain.settings import load_settings

    settings = load_settings(database_url=database_url, home=tmp_path, state_source="demo")
    async with open_brain(settings) as brain:
        await prepare_demo_state(brain)
        summary = await prepare_demo_swarms(brain)
        assert summary["trigger"] == "demo"
        ops = await brain.drafts.list_ops(STAFF, limit=100)
        finance = await brain.drafts.list_finance(STAFF, limit=100)
        marketing = await brain.drafts.list_marketing(STAFF, limit=100)
        assert ops
        assert finance
        assert marketing
        assert all(row["evidence"]["snapshotIds"] for row in ops)
        assert all(row["evidenceRefs"] for row in finance)
        assert all(row["sourceRefs"] and row["copy"] for row in marketing)
        # running the demo again (a restart) adds nothing: same day, same findings
        again = await prepare_demo_swarms(brain)
        assert again["replayed"]["ops"]["created"] == 0
        assert len(await brain.drafts.list_ops(STAFF, limit=100)) == len(ops)
