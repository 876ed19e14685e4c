"""The gateway end to end on both stores (in memory and real PostgreSQL): propose → approve → execute, with
audit rows for every decision, connector failures, idempotency, the kill switch, exemptions, tenants and
the Portal's failures. Tests that tamper with PostgreSQL itself take ``pg_kit``."""

from __future__ import annotations

from datetime import timedelta

import pytest

from studio_brain.domain.audit import ApprovalState
from studio_brain.domain.errors import NotFound, PolicyRefused
from studio_brain.domain.proposals import Event, Status
from tests.integration.conftest import MakeKit
from tests.integration.gateway_kit import ALICE, BOB, CAROL, NOTE, TENANT, WHY, Kit, agent, staff


async def approved_note(kit: Kit) -> str:
    created = await kit.service.create_proposal(ALICE, "studio.note.append", NOTE, WHY)
    await kit.service.approve(BOB, created.proposal.id, "looks right to me")
    return created.proposal.id


async def refusal(coro: object) -> str:
    with pytest.raises(PolicyRefused) as caught:
        await coro  # type: ignore[misc]
    return caught.value.reason_code


async def test_a_note_goes_from_proposal_to_executed_with_an_audit_row_for_every_step(kit: Kit) -> None:
    created = await kit.service.create_proposal(
        ALICE, "studio.note.append", NOTE, WHY, correlation_id="corr-1"
    )
    proposal = created.proposal
    assert proposal.status is Status.PENDING_APPROVAL
    assert proposal.predicted_effects == ["append one staff note (31 characters) under topic 'kilns'"]
    assert proposal.registry_version == kit.service.registry.version

    approved = await kit.service.approve(BOB, proposal.id, "looks right to me")
    assert approved.status is Status.APPROVED
    result = await kit.service.execute(BOB, proposal.id)

    assert result.proposal.status is Status.EXECUTED
    assert result.proposal.output_hash is not None
    assert await kit.notes() == 1
    actions = [e.action for e in await kit.audit()]
    assert actions == [
        "capability.proposal.created",
        "capability.proposal.approved",
        "capability.proposal.executing",
        "capability.proposal.executed",
    ]
    for event in await kit.audit():
        assert event.tenant_id == TENANT
        assert event.capability_id == "studio.note.append"
        assert event.input_hash == proposal.input_hash
        assert event.correlation_id == "corr-1"
        assert event.metadata["decision"]["reasonCode"] == "ALLOWED"
    assert (await kit.audit())[-1].output_hash == result.proposal.output_hash
    assert await kit.chain_intact()


async def test_an_execution_reads_its_proposal_once_and_writes_the_outcome_over_exactly_its_claim(
    pg_kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    # issue 18: the outcome went in a transaction that locked and re-read (and re-checked) the proposal the
    # claim had just written; it now writes only over exactly that row (tests/contract: update_and_audit)
    from studio_brain.adapters.postgres.gateway_store import PostgresGatewayTransaction

    kit = pg_kit
    proposal_id = await approved_note(kit)
    reads = 0
    original = PostgresGatewayTransaction.get_proposal

    async def counted(self: PostgresGatewayTransaction, *args: object, **kwargs: object) -> object:
        nonlocal reads
        reads += 1
        return await original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(PostgresGatewayTransaction, "get_proposal", counted)
    done = await kit.service.execute(BOB, proposal_id)
    assert done.proposal.status is Status.EXECUTED
    assert reads == 1  # the claim's locked read; on main two
    assert [e.action for e in await kit.audit()][-2:] == [
        "capability.proposal.executing",
        "capability.proposal.executed",
    ]
    assert await kit.chain_intact()


async def test_execute_refuses_a_proposal_that_was_never_approved_and_audits_the_refusal(kit: Kit) -> None:
    created = await kit.service.create_proposal(ALICE, "studio.note.append", NOTE, WHY)
    assert await refusal(kit.service.execute(BOB, created.proposal.id)) == "APPROVAL_REQUIRED"
    assert await kit.notes() == 0
    last = (await kit.audit())[-1]
    assert last.action == "capability.decision.refused"
    assert last.metadata["decision"]["reasonCode"] == "APPROVAL_REQUIRED"
    assert last.actor_id == "bob"
    assert (await kit.service.get(ALICE, created.proposal.id)).status is Status.PENDING_APPROVAL


async def test_a_requester_cannot_approve_their_own_proposal(kit: Kit) -> None:
    created = await kit.service.create_proposal(ALICE, "studio.note.append", NOTE, WHY)
    assert (
        await refusal(kit.service.approve(ALICE, created.proposal.id, "I trust myself"))
        == "SELF_APPROVAL_FORBIDDEN"
    )
    assert (await kit.audit())[-1].metadata["decision"]["reasonCode"] == "SELF_APPROVAL_FORBIDDEN"


async def test_an_agent_may_propose_with_its_scope_but_never_approve_or_execute_a_write(kit: Kit) -> None:
    bot = agent("ops-bot", "capability:studio.note.append:propose")
    created = await kit.service.create_proposal(bot, "studio.note.append", NOTE, WHY)
    assert (
        await refusal(
            kit.service.approve(
                agent("other-bot", "capability:studio.note.append:propose"),
                created.proposal.id,
                "approve by bot",
            )
        )
        == "APPROVER_NOT_ELIGIBLE"
    )
    await kit.service.approve(BOB, created.proposal.id, "fine by a human")
    assert await refusal(kit.service.execute(bot, created.proposal.id)) == "ACTOR_NOT_ELIGIBLE"
    unscoped = agent("rogue", "capability:hubitat.devices.read:propose")
    assert (
        await refusal(kit.service.create_proposal(unscoped, "studio.note.append", NOTE, WHY))
        == "DELEGATION_SCOPE_MISSING"
    )


async def test_critical_capabilities_need_two_distinct_approvers(make_kit: MakeKit) -> None:
    from tests.unit.test_capabilities_registry import registry_with

    kit = make_kit(registry=registry_with(risk="critical", riskClass="money", approvalsRequired=2))
    created = await kit.service.create_proposal(ALICE, "studio.test.write", {"text": "x"}, WHY)
    first = await kit.service.approve(BOB, created.proposal.id, "first approval")
    assert first.status is Status.PENDING_APPROVAL
    assert (
        await refusal(kit.service.approve(BOB, created.proposal.id, "again, still me"))
        == "APPROVER_NOT_ELIGIBLE"
    )
    assert await refusal(kit.service.execute(BOB, created.proposal.id)) == "APPROVAL_REQUIRED"
    second = await kit.service.approve(CAROL, created.proposal.id, "second approval")
    assert second.status is Status.APPROVED
    assert {a.approver_id for a in second.approvals} == {"bob", "carol"}


async def test_an_expired_approval_refuses_execution_and_expires_the_proposal(kit: Kit) -> None:
    proposal_id = await approved_note(kit)
    kit.clock.advance(24 * 3600 + 1)
    assert await refusal(kit.service.execute(BOB, proposal_id)) == "APPROVAL_EXPIRED"
    assert (await kit.service.get(BOB, proposal_id)).status is Status.EXPIRED
    assert await kit.notes() == 0


async def test_a_changed_registry_invalidates_an_approval(kit: Kit) -> None:
    proposal_id = await approved_note(kit)
    from studio_brain.adapters.capability_registry import registry_text
    from studio_brain.domain.capabilities import parse_registry_toml

    _, text = registry_text(None)
    edited = parse_registry_toml(text.replace("perHour = 600", "perHour = 601"))
    assert edited.version != kit.service.registry.version
    other = kit.service_with(edited)
    assert await refusal(other.execute(BOB, proposal_id)) == "APPROVAL_PAYLOAD_MISMATCH"
    assert await kit.notes() == 0


async def test_a_tampered_stored_input_fails_the_binding_check(pg_kit: Kit) -> None:
    kit = pg_kit
    proposal_id = await approved_note(kit)
    async with kit.pg.connection() as conn:
        await conn.execute(
            "UPDATE gateway_proposals SET record = jsonb_set(record, '{input,text}', '\"turn everything off\"') WHERE id = %s",
            (proposal_id,),
        )
    assert await refusal(kit.service.execute(BOB, proposal_id)) == "APPROVAL_PAYLOAD_MISMATCH"
    assert await kit.notes() == 0


async def test_an_executed_proposal_never_runs_again_but_its_key_replays_the_result(kit: Kit) -> None:
    proposal_id = await approved_note(kit)
    first = await kit.service.execute(BOB, proposal_id, idempotency_key="key-1")
    again = await kit.service.execute(BOB, proposal_id, idempotency_key="key-1")
    assert again.replayed
    assert again.proposal.output_hash == first.proposal.output_hash
    assert await refusal(kit.service.execute(BOB, proposal_id)) == "ALREADY_EXECUTED"
    other = await approved_note(kit)
    assert await refusal(kit.service.execute(BOB, other, idempotency_key="key-1")) == "IDEMPOTENCY_KEY_REUSED"
    assert await kit.notes() == 1


async def test_creating_twice_with_one_key_returns_the_first_and_a_different_payload_is_refused(
    kit: Kit,
) -> None:
    first = await kit.service.create_proposal(ALICE, "studio.note.append", NOTE, WHY, idempotency_key="c-1")
    again = await kit.service.create_proposal(ALICE, "studio.note.append", NOTE, WHY, idempotency_key="c-1")
    assert again.replayed
    assert again.proposal.id == first.proposal.id
    changed = {"text": "something else entirely"}
    assert (
        await refusal(
            kit.service.create_proposal(ALICE, "studio.note.append", changed, WHY, idempotency_key="c-1")
        )
        == "IDEMPOTENCY_KEY_REUSED"
    )


@pytest.mark.parametrize(
    ("behaviour", "status"),
    [
        ("fail", Status.FAILED),
        ("connector_timeout", Status.OUTCOME_UNKNOWN),
        ("timeout", Status.OUTCOME_UNKNOWN),
        ("crash", Status.OUTCOME_UNKNOWN),
    ],
)
async def test_a_connector_that_fails_or_times_out_never_leaves_executed(
    kit: Kit, behaviour: str, status: Status
) -> None:
    from dataclasses import replace

    cap = kit.service.registry.capabilities["hubitat.switch.set"]
    kit.service.registry.capabilities["hubitat.switch.set"] = replace(cap, timeout_budget_seconds=0.3)  # type: ignore[index]
    kit.hubitat.behaviour = behaviour
    created = await kit.service.create_proposal(
        ALICE, "hubitat.switch.set", {"deviceId": "12", "state": "off"}, WHY
    )
    await kit.service.approve(BOB, created.proposal.id, "power off the glaze fan")
    result = await kit.service.execute(BOB, created.proposal.id)
    assert result.proposal.status is status
    assert result.proposal.error
    assert result.proposal.output_hash is None
    assert len(kit.hubitat.calls) == 1
    actions = [e.action for e in await kit.audit()]
    assert actions[-2:] == ["capability.proposal.executing", f"capability.proposal.{status.value}"]
    assert await refusal(kit.service.execute(BOB, created.proposal.id)) == "ALREADY_EXECUTED"
    assert len(kit.hubitat.calls) == 1


async def test_a_capability_without_an_adapter_is_refused_with_adapter_missing(kit: Kit) -> None:
    created = await kit.service.create_proposal(
        ALICE, "firestore.ops_note.append", {"batchId": "b-1", "ownerUid": "m-1", "note": "cloud note"}, WHY
    )
    assert created.proposal.extra == {"dryRun": "unavailable"}
    await kit.service.approve(BOB, created.proposal.id, "ok for the cloud")
    assert await refusal(kit.service.execute(BOB, created.proposal.id)) == "ADAPTER_MISSING"
    assert (await kit.audit())[-1].metadata["decision"]["reasonCode"] == "ADAPTER_MISSING"


async def test_a_read_only_connector_refuses_writes_before_any_call(kit: Kit) -> None:
    from studio_brain.domain.connectors import ConnectorMode

    kit.hubitat.mode = ConnectorMode.READ_ONLY
    created = await kit.service.create_proposal(
        ALICE, "hubitat.switch.set", {"deviceId": "3", "state": "on"}, WHY
    )
    await kit.service.approve(BOB, created.proposal.id, "turn on the fan")
    assert await refusal(kit.service.execute(BOB, created.proposal.id)) == "CONNECTOR_READ_ONLY"
    assert kit.hubitat.calls == []


async def test_the_kill_switch_blocks_create_approve_and_execute_of_writes_but_not_reads(kit: Kit) -> None:
    pending = await kit.service.create_proposal(ALICE, "studio.note.append", NOTE, WHY)
    approved = await approved_note(kit)
    await kit.service.set_kill_switch(ALICE, enabled=True, rationale="storm coming, stop everything")
    assert (
        await refusal(kit.service.create_proposal(ALICE, "studio.note.append", NOTE, WHY))
        == "KILL_SWITCH_ACTIVE"
    )
    assert (
        await refusal(kit.service.approve(BOB, pending.proposal.id, "approve anyway")) == "KILL_SWITCH_ACTIVE"
    )
    assert await refusal(kit.service.execute(BOB, approved)) == "KILL_SWITCH_ACTIVE"
    read = await kit.service.create_proposal(ALICE, "hubitat.devices.read", {}, "check the devices")
    assert (await kit.service.execute(ALICE, read.proposal.id)).proposal.status is Status.EXECUTED
    await kit.service.set_kill_switch(ALICE, enabled=False, rationale="storm passed, resume")
    assert (await kit.service.execute(BOB, approved)).proposal.status is Status.EXECUTED


async def test_a_per_capability_kill_switch_blocks_only_that_capability(kit: Kit) -> None:
    await kit.service.set_kill_switch(
        ALICE, enabled=True, rationale="fan misbehaving today", capability_id="hubitat.switch.set"
    )
    assert (
        await refusal(
            kit.service.create_proposal(ALICE, "hubitat.switch.set", {"deviceId": "1", "state": "on"}, WHY)
        )
        == "KILL_SWITCH_ACTIVE"
    )
    await kit.service.create_proposal(ALICE, "studio.note.append", NOTE, WHY)


async def test_an_unreadable_kill_switch_counts_as_on(pg_kit: Kit) -> None:
    kit = pg_kit
    proposal_id = await approved_note(kit)
    async with kit.pg.connection() as conn:
        await conn.execute("ALTER TABLE gateway_kill_switch RENAME TO gateway_kill_switch_gone")
    assert await refusal(kit.service.execute(BOB, proposal_id)) == "KILL_SWITCH_ACTIVE"
    assert await kit.notes() == 0


async def test_an_exemption_lets_a_low_risk_write_run_without_approval_until_revoked(kit: Kit) -> None:
    exemption = await kit.service.create_exemption(
        ALICE,
        capability_id="studio.note.append",
        justification="nightly log notes from the scheduler",
        lifetime=timedelta(hours=24),
    )
    first = await kit.service.create_proposal(CAROL, "studio.note.append", NOTE, WHY)
    result = await kit.service.execute(BOB, first.proposal.id)
    assert result.proposal.status is Status.EXECUTED
    assert result.proposal.approval_state is ApprovalState.EXEMPT
    assert result.proposal.exemption_id == exemption.id
    await kit.service.revoke_exemption(ALICE, exemption.id, "no longer needed now")
    second = await kit.service.create_proposal(CAROL, "studio.note.append", NOTE, WHY)
    assert await refusal(kit.service.execute(BOB, second.proposal.id)) == "APPROVAL_REQUIRED"


async def test_exemptions_are_forbidden_for_high_risk_classes_and_capped_in_lifetime(kit: Kit) -> None:
    for capability in ("hubitat.switch.set", "roborock.clean.start"):
        assert (
            await refusal(
                kit.service.create_exemption(
                    ALICE,
                    capability_id=capability,
                    justification="automate it please",
                    lifetime=timedelta(hours=1),
                )
            )
            == "EXEMPTION_FORBIDDEN"
        )
    assert (
        await refusal(
            kit.service.create_exemption(
                ALICE,
                capability_id="studio.note.append",
                justification="for a whole year",
                lifetime=timedelta(days=365),
            )
        )
        == "INPUT_INVALID"
    )
    assert await kit.refused() == {"EXEMPTION_FORBIDDEN": 2, "INPUT_INVALID": 1}


async def test_a_cross_tenant_execute_is_refused_and_audited_in_both_tenants(kit: Kit) -> None:
    proposal_id = await approved_note(kit)
    intruder = staff("mallory", tenant="studio-b")
    assert await refusal(kit.service.execute(intruder, proposal_id)) == "TENANT_MISMATCH"
    assert await kit.notes() == 0
    for tenant in (TENANT, "studio-b"):
        last = (await kit.audit(tenant))[-1]
        assert last.metadata["decision"]["reasonCode"] == "TENANT_MISMATCH"
        assert last.actor_id == "mallory"
    with pytest.raises(NotFound):
        await kit.service.execute(BOB, "no-such-proposal")


async def test_an_intruder_probing_another_tenants_proposal_twenty_times_writes_it_two_rows(kit: Kit) -> None:
    # issue 12 item 8: the owning tenant's copy of a cross-tenant attempt goes through refusal windows too
    proposal_id = await approved_note(kit)
    intruder = staff("mallory", tenant="studio-b")
    for _ in range(20):
        assert await refusal(kit.service.execute(intruder, proposal_id)) == "TENANT_MISMATCH"
    await kit.service.flush_refusals()
    owners = [e for e in await kit.audit(TENANT) if e.action == "capability.decision.refused"]
    assert [e.metadata["count"] for e in owners] == [1, 19]
    assert {e.metadata["actorTenantId"] for e in owners} == {"studio-b"}
    assert await kit.refused("studio-b") == {"TENANT_MISMATCH": 20}


async def test_a_target_cooling_down_refuses_with_cooldown_active(kit: Kit) -> None:
    async def approved_switch() -> str:
        created = await kit.service.create_proposal(
            ALICE, "hubitat.switch.set", {"deviceId": "9", "state": "on"}, WHY
        )
        await kit.service.approve(BOB, created.proposal.id, "switch it on please")
        return created.proposal.id

    await kit.service.execute(BOB, await approved_switch())
    second = await approved_switch()
    assert await refusal(kit.service.execute(BOB, second)) == "COOLDOWN_ACTIVE"
    kit.clock.advance(31)
    assert (await kit.service.execute(BOB, second)).proposal.status is Status.EXECUTED


async def test_the_rate_limit_refuses_with_rate_limited_and_a_reset_frees_the_bucket(
    make_kit: MakeKit,
) -> None:
    from tests.unit.test_capabilities_registry import registry_with

    kit = make_kit(registry=registry_with(rateLimit={"perHour": 3, "burst": 3}))

    async def run_one() -> None:
        created = await kit.service.create_proposal(ALICE, "studio.test.write", {"text": "x"}, WHY)
        await kit.service.approve(BOB, created.proposal.id, "fine, go ahead")
        await kit.service.execute(BOB, created.proposal.id)

    for _ in range(3):
        await run_one()
    assert await refusal(run_one()) == "RATE_LIMITED"
    buckets = {b.bucket: b.count for b in await kit.service.rate_buckets(ALICE)}
    assert buckets == {"studio.test.write:hour": 3, "studio.test.write:minute": 3}
    await kit.service.reset_rate_bucket(ALICE, "studio.test.write:hour", "false alarm, reset it")
    await kit.service.reset_rate_bucket(ALICE, "studio.test.write:minute", "false alarm, reset it")
    await run_one()


async def test_rejected_and_cancelled_proposals_cannot_run(kit: Kit) -> None:
    a = await kit.service.create_proposal(ALICE, "studio.note.append", NOTE, WHY)
    b = await kit.service.create_proposal(ALICE, "studio.note.append", NOTE, WHY)
    await kit.service.reject(BOB, a.proposal.id, "not needed today")
    await kit.service.cancel(ALICE, b.proposal.id, "changed my mind")
    for proposal_id in (a.proposal.id, b.proposal.id):
        assert await refusal(kit.service.execute(BOB, proposal_id)) == "INVALID_TRANSITION"


async def test_a_draft_must_be_submitted_before_it_can_be_approved(kit: Kit) -> None:
    draft = await kit.service.create_proposal(ALICE, "studio.note.append", NOTE, WHY, as_draft=True)
    assert draft.proposal.status is Status.DRAFT
    assert (
        await refusal(kit.service.approve(BOB, draft.proposal.id, "approving a draft"))
        == "INVALID_TRANSITION"
    )
    submitted = await kit.service.submit(ALICE, draft.proposal.id)
    assert submitted.status is Status.PENDING_APPROVAL


async def test_bad_input_is_refused_with_input_invalid_and_rationale_is_required(kit: Kit) -> None:
    assert (
        await refusal(kit.service.create_proposal(ALICE, "studio.note.append", {"text": ""}, WHY))
        == "INPUT_INVALID"
    )
    assert (
        await refusal(
            kit.service.create_proposal(ALICE, "studio.note.append", {"text": "x", "extra": 1}, WHY)
        )
        == "INPUT_INVALID"
    )
    assert (
        await refusal(kit.service.create_proposal(ALICE, "studio.note.append", NOTE, "short"))
        == "RATIONALE_REQUIRED"
    )
    assert (
        await refusal(kit.service.create_proposal(ALICE, "no.such.thing", NOTE, WHY)) == "CAPABILITY_UNKNOWN"
    )
    assert (
        await refusal(kit.service.create_proposal(ALICE, "studio.note.append", {"text": 2**60}, WHY))
        == "INPUT_INVALID"
    )
    # each reason's first refusal is written at once, in order; the window counts the repeats
    written_at_once = [e.metadata["decision"]["reasonCode"] for e in await kit.audit()]
    assert written_at_once == ["INPUT_INVALID", "RATIONALE_REQUIRED", "CAPABILITY_UNKNOWN"]
    assert await kit.refused() == {"INPUT_INVALID": 3, "RATIONALE_REQUIRED": 1, "CAPABILITY_UNKNOWN": 1}


async def test_agent_tokens_are_hashed_scoped_expiring_and_revocable(kit: Kit) -> None:
    issued = await kit.service.issue_agent_token(
        ALICE,
        agent_id="ops-bot",
        scopes=["capability:studio.note.append:propose"],
        lifetime=timedelta(days=1),
        reason="ops swarm drafts notes",
    )
    assert issued.raw not in repr(issued)
    async with kit.store.transaction(TENANT) as tx:
        stored = [t.token_hash for t in await tx.agent_tokens()]
    assert len(stored) == 1
    assert issued.raw.split("_", 2)[2] not in str(stored)
    principal = await kit.service.verify_agent_token(issued.raw)
    assert principal is not None
    assert principal.actor_id == "ops-bot"
    assert principal.tenant_id == TENANT
    assert await kit.service.verify_agent_token(issued.raw[:-2] + "xx") is None
    assert await kit.service.verify_agent_token("sbat_nothing") is None
    kit.clock.advance(86401)
    assert await kit.service.verify_agent_token(issued.raw) is None
    kit.clock.advance(-86401)
    await kit.service.revoke_agent_token(ALICE, issued.token.id, "bot retired today")
    assert await kit.service.verify_agent_token(issued.raw) is None
    assert (
        await refusal(
            kit.service.issue_agent_token(
                ALICE,
                agent_id="x",
                scopes=["capability:studio.note.append:approve"],
                lifetime=timedelta(days=1),
                reason="an approving agent",
            )
        )
        == "INPUT_INVALID"
    )
    bot = agent("ops-bot", "capability:studio.note.append:propose")
    assert (
        await refusal(
            kit.service.issue_agent_token(
                bot,
                agent_id="y",
                scopes=["state:read"],
                lifetime=timedelta(days=1),
                reason="bots minting bots",
            )
        )
        == "ACTOR_NOT_ELIGIBLE"
    )


async def test_the_proposals_table_rebuilds_from_the_audit_log_alone(kit: Kit) -> None:
    executed = await approved_note(kit)
    await kit.service.execute(BOB, executed)
    await kit.service.create_proposal(ALICE, "studio.note.append", NOTE, WHY)
    rejected = await kit.service.create_proposal(
        ALICE, "hubitat.switch.set", {"deviceId": "1", "state": "on"}, WHY
    )
    await kit.service.reject(BOB, rejected.proposal.id, "not during firing")
    from studio_brain.ports.gateway import ProposalFilter

    before = await kit.service.list_proposals(ALICE, ProposalFilter(limit=100))
    async with kit.store.transaction(TENANT) as tx:
        await tx.replace_proposals([])  # the table is lost; the audit log is all that is left
    assert await kit.service.list_proposals(ALICE) == []
    assert await kit.service.rebuild_proposals(ALICE, "disaster drill rebuild") == 3
    after = await kit.service.list_proposals(ALICE, ProposalFilter(limit=100))
    assert after == before


async def test_listing_pages_by_keyset_without_hidden_caps(kit: Kit) -> None:
    from studio_brain.ports.gateway import ProposalFilter

    for i in range(7):
        kit.clock.advance(1)
        await kit.service.create_proposal(ALICE, "studio.note.append", {"text": f"note {i}"}, WHY)
    seen: list[str] = []
    cursor = None
    while True:
        page = await kit.service.list_proposals(ALICE, ProposalFilter(limit=3, before=cursor))
        seen.extend(p.id for p in page)
        if len(page) < 3:
            break
        cursor = (page[-1].created_at, page[-1].id)
    assert len(seen) == len(set(seen)) == 7


async def test_a_proposal_that_needs_no_approval_still_runs_only_once(kit: Kit) -> None:
    read = await kit.service.create_proposal(ALICE, "hubitat.devices.read", {}, "check the devices now")
    assert read.proposal.status is Status.APPROVED
    assert read.proposal.tenant_id == ALICE.tenant_id
    assert (await kit.service.execute(ALICE, read.proposal.id)).proposal.status is Status.EXECUTED
    assert await refusal(kit.service.execute(ALICE, read.proposal.id)) == "ALREADY_EXECUTED"


async def test_a_dry_run_predicts_without_acting_and_reports_the_decision(kit: Kit) -> None:
    created = await kit.service.create_proposal(
        ALICE, "hubitat.switch.set", {"deviceId": "5", "state": "off"}, WHY
    )
    report = await kit.service.dry_run(BOB, created.proposal.id)
    assert report["decision"]["reasonCode"] == "APPROVAL_REQUIRED"
    assert report["predictedEffects"] == ["switch.set 5 off"]
    assert kit.hubitat.calls == []
    assert (await kit.audit())[-1].action == "capability.proposal.dry_run"


async def test_text_the_database_cannot_store_is_refused_as_bad_input_and_nothing_is_stored(kit: Kit) -> None:
    assert (
        await refusal(kit.service.create_proposal(ALICE, "studio.note.append", {"text": "a\x00b"}, WHY))
        == "INPUT_INVALID"
    )
    assert (
        await refusal(
            kit.service.create_proposal(ALICE, "studio.note.append", NOTE, "a reason with \x00 in it")
        )
        == "RATIONALE_REQUIRED"
    )
    assert await kit.service.list_proposals(ALICE) == []
    assert [e.action for e in await kit.audit()] == ["capability.decision.refused"] * 2


async def test_an_execution_whose_process_died_stops_blocking_its_target_and_is_recovered_as_unknown(
    kit: Kit,
) -> None:
    created = await kit.service.create_proposal(ALICE, "roborock.clean.start", {}, WHY)
    await kit.service.approve(BOB, created.proposal.id, "clean the floor now")
    # the process died right after committing `executing` (what _claim commits), before the connector answered
    async with kit.store.transaction(TENANT) as tx:
        stuck = await tx.get_proposal(created.proposal.id, lock=True)
        assert stuck is not None
        await tx.update_proposal(
            stuck.transition(
                Event.START, at=kit.clock.now(), execution_key="k-dead", execution_started_at=kit.clock.now()
            )
        )
    second = await kit.service.create_proposal(ALICE, "roborock.clean.start", {"segments": [2]}, WHY)
    await kit.service.approve(BOB, second.proposal.id, "clean the kitchen too")
    assert await refusal(kit.service.execute(BOB, second.proposal.id)) == "TARGET_BUSY"
    assert await kit.service.recover_stale_executions(ALICE, "morning check of stuck runs") == []
    kit.clock.advance(15 + 61)
    recovered = await kit.service.recover_stale_executions(ALICE, "morning check of stuck runs")
    assert [p.id for p in recovered] == [created.proposal.id]
    assert recovered[0].status is Status.OUTCOME_UNKNOWN
    assert (await kit.audit())[-1].action == "capability.proposal.outcome_unknown"
    assert await refusal(kit.service.execute(BOB, created.proposal.id)) == "ALREADY_EXECUTED"


async def test_a_submitted_draft_of_a_read_needs_no_approval_and_a_scoped_agent_may_run_reads(
    kit: Kit,
) -> None:
    reader = agent(
        "ops-bot", "capability:hubitat.devices.read:propose", "capability:hubitat.devices.read:read"
    )
    draft = await kit.service.create_proposal(
        reader, "hubitat.devices.read", {}, "look at the devices", as_draft=True
    )
    submitted = await kit.service.submit(reader, draft.proposal.id)
    assert submitted.status is Status.APPROVED
    result = await kit.service.execute(reader, draft.proposal.id)
    assert result.proposal.status is Status.EXECUTED
    assert result.proposal.result == {"devices": [{"id": "1", "switch": "off"}]}
    proposer_only = agent("other-bot", "capability:hubitat.devices.read:propose")
    again = await kit.service.create_proposal(
        proposer_only, "hubitat.devices.read", {}, "look at the devices"
    )
    assert await refusal(kit.service.execute(proposer_only, again.proposal.id)) == "DELEGATION_SCOPE_MISSING"
    assert (
        await refusal(kit.service.reject(reader, again.proposal.id, "bots cannot reject"))
        == "APPROVER_NOT_ELIGIBLE"
    )


async def test_listing_refuses_a_page_size_outside_its_bounds(kit: Kit) -> None:
    from studio_brain.domain.errors import InputInvalid
    from studio_brain.ports.gateway import ProposalFilter

    with pytest.raises(InputInvalid):
        await kit.service.list_proposals(ALICE, ProposalFilter(limit=0))
    with pytest.raises(InputInvalid):
        await kit.service.list_proposals(ALICE, ProposalFilter(limit=501))
