"""Cloud writes end to end: the gateway on PostgreSQL, the real Functions connector over HTTP, the fake
Functions server writing into the Firestore emulator, read back with the official client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import studio_brain
from studio_brain.adapters.attestation_keys import verify_token
from studio_brain.adapters.connectors.functions.fake import FakeFunctions
from studio_brain.adapters.connectors.functions.store import EmulatorPilotStore
from studio_brain.adapters.postgres.database import Database
from studio_brain.domain.capabilities import parse_registry_toml
from studio_brain.domain.connectors import ConnectorCommand, ConnectorContext
from studio_brain.domain.errors import PolicyRefused
from studio_brain.domain.proposals import Status
from studio_brain.services.gateway.effects import approval_claims
from tests.fixtures.firestore import TEST_PROJECT, wipe_firestore
from tests.integration.cloud_kit import (
    NOTE_INPUT,
    REFRESH,
    CloudKit,
    build_cloud_kit,
    functions_connector,
)
from tests.integration.gateway_kit import ALICE, BOB, CAROL, agent, staff

pytestmark = [pytest.mark.postgres, pytest.mark.firestore]
WHY = "member asked us to record the damage"
OK = "checked the batch with the member"


@pytest.fixture
def cloud(
    database: Database, firestore_emulator_host: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[CloudKit]:
    """A gateway, a connector and a fake Function over an empty emulator (FIRESTORE_EMULATOR_HOST set)."""
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator_host)
    wipe_firestore(firestore_emulator_host)
    kit = build_cloud_kit(database, tmp_path)
    try:
        yield kit
    finally:
        kit.fake.stop()
        wipe_firestore(firestore_emulator_host)


async def approved_note(cloud: CloudKit, input: dict[str, Any] | None = None) -> str:
    created = await cloud.kit.service.create_proposal(
        ALICE, "firestore.ops_note.append", input or NOTE_INPUT, WHY
    )
    await cloud.kit.service.approve(BOB, created.proposal.id, OK)
    return created.proposal.id


async def test_an_ops_note_proposed_by_one_person_and_approved_by_another_is_written_once_with_a_verifiable_attestation(
    cloud: CloudKit,
) -> None:
    proposal_id = await approved_note(cloud)
    assert cloud.fake.request_count == 0  # proposing and approving send nothing
    result = await cloud.kit.service.execute(BOB, proposal_id)
    proposal = result.proposal
    assert proposal.status is Status.EXECUTED
    assert proposal.result is not None
    assert proposal.result["replayed"] is False
    pointer = proposal.result["resourcePointer"]
    assert pointer["collection"] == "studioBrainPilotOpsNotes"
    assert proposal.output_hash is not None
    assert len(proposal.output_hash) == 64

    notes = cloud.notes()
    assert len(notes) == 1
    note = cloud.client.collection("studioBrainPilotOpsNotes").document(pointer["docId"]).get().to_dict()
    assert note["note"] == NOTE_INPUT["note"]
    assert note["resourceId"] == "batch-7"
    assert note["proposalId"] == proposal_id
    assert note["idempotencyKey"] == proposal.execution_key
    assert note["createdByUid"] == cloud.fake.uid  # the brain's own Firebase user, from its ID token
    assert note["rolledBackAt"] is None

    # the studio checks the pilot action with nothing but the published JWKS
    action = (
        cloud.client.collection("studioBrainPilotActions")
        .document(f"{proposal_id}__{proposal.execution_key}")
        .get()
    )
    stored = json.loads(action.to_dict()["approvedBy"])
    assert stored["approvers"] == ["bob"]
    checked = verify_token(stored["attestation"], cloud.signer.jwks())
    assert checked.valid, checked.reason
    assert checked.claims is not None
    assert checked.claims.proposal_id == proposal_id
    assert checked.claims.input_hash == proposal.input_hash
    assert checked.claims.capability_id == "firestore.ops_note.append"
    assert proposal.result["attestation"] == stored["attestation"]
    # and the HTTP request carried it too
    assert cloud.fake.writes[-1].authorised

    audit = [e.action for e in await cloud.kit.audit()]
    assert audit[-2:] == ["capability.proposal.executing", "capability.proposal.executed"]


async def test_the_dry_run_reads_the_batch_and_predicts_the_two_documents_without_calling_the_function(
    cloud: CloudKit,
) -> None:
    created = await cloud.kit.service.create_proposal(ALICE, "firestore.ops_note.append", NOTE_INPUT, WHY)
    effects = created.proposal.predicted_effects
    writes = [e for e in effects if e["kind"] == "write"]
    assert [(w["op"], w["collection"]) for w in writes] == [
        ("create", "studioBrainPilotOpsNotes"),
        ("create", "studioBrainPilotActions"),
    ]
    check = next(e for e in effects if e["kind"] == "check")
    assert (check["exists"], check["ownerMatches"], check["closed"]) == (True, True, False)

    cloud.seed_batch("batch-8", ownerUid="someone-else", isClosed=True, state="CLOSED_PICKED_UP")
    other = await cloud.kit.service.create_proposal(
        ALICE, "firestore.ops_note.append", {**NOTE_INPUT, "batchId": "batch-8"}, WHY
    )
    check = next(e for e in other.proposal.predicted_effects if e["kind"] == "check")
    assert (check["exists"], check["ownerMatches"], check["closed"]) == (True, False, True)
    missing = await cloud.kit.service.create_proposal(
        ALICE, "firestore.ops_note.append", {**NOTE_INPUT, "batchId": "no-such"}, WHY
    )
    assert next(e for e in missing.proposal.predicted_effects if e["kind"] == "check")["exists"] is False
    dry = await cloud.kit.service.dry_run(BOB, created.proposal.id)
    assert dry["supported"] is True
    assert cloud.fake.request_count == 0
    assert cloud.notes() == []


async def test_a_note_for_a_batch_of_another_member_fails_before_anything_is_sent(cloud: CloudKit) -> None:
    cloud.seed_batch("batch-9", ownerUid="someone-else")
    proposal_id = await approved_note(cloud, {**NOTE_INPUT, "batchId": "batch-9"})
    result = await cloud.kit.service.execute(BOB, proposal_id)
    assert result.proposal.status is Status.FAILED
    assert "another member" in (result.proposal.error or "")
    assert cloud.fake.request_count == 0
    assert cloud.notes() == []


async def test_twenty_concurrent_executes_of_one_approved_cloud_write_leave_exactly_one_note(
    cloud: CloudKit,
) -> None:
    proposal_id = await approved_note(cloud)
    outcomes = await asyncio.gather(
        *(cloud.kit.service.execute(BOB, proposal_id) for _ in range(20)), return_exceptions=True
    )
    executed = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, PolicyRefused)]
    assert len(executed) == 1
    assert executed[0].proposal.status is Status.EXECUTED
    assert len(refused) == 19
    assert {r.reason_code for r in refused} <= {"ALREADY_EXECUTED", "TARGET_BUSY"}
    assert len(cloud.notes()) == 1
    assert len(cloud.actions()) == 1
    assert len(cloud.fake.writes) == 1


async def test_twenty_concurrent_sends_of_one_key_to_two_function_instances_write_one_note(
    cloud: CloudKit,
) -> None:
    """Below the gateway: twenty brains (fresh connectors, no shared memory) send the same request with the
    same key at once to two instances of the Function over one Firestore; the transaction writes once."""
    second = FakeFunctions(
        store=EmulatorPilotStore(project_id=TEST_PROJECT), project_id=TEST_PROJECT, refresh_token=REFRESH
    ).start()
    proposal_id = await approved_note(cloud)
    proposal = await cloud.kit.service.get(BOB, proposal_id)
    command = ConnectorCommand(action="ops_note.append", args=NOTE_INPUT, approval=approval_claims(proposal))

    async def send(i: int) -> Any:
        instance = (cloud.fake, second)[i % 2]
        connector = functions_connector(
            base_url=instance.url,
            token_url=instance.token_url,
            clock=cloud.kit.clock,
            signer=cloud.signer,
            timeout=30,
        )
        ctx = ConnectorContext(request_id=f"r{i}", timeout_seconds=60, idempotency_key="prop-same-key-0001")
        return await connector.execute(ctx, command)

    try:
        responses = await asyncio.gather(*(send(i) for i in range(20)))
    finally:
        second.stop()
    assert [r.data["replayed"] for r in responses].count(False) == 1
    assert len({r.data["resourcePointer"]["docId"] for r in responses}) == 1
    assert len(cloud.fake.writes) + len(second.writes) == 20
    assert len(cloud.notes()) == 1


async def test_a_write_the_function_already_holds_is_recorded_as_replayed(cloud: CloudKit) -> None:
    proposal_id = await approved_note(cloud)
    proposal = await cloud.kit.service.get(BOB, proposal_id)
    from studio_brain.domain.proposals import execution_key_for

    key = execution_key_for(proposal.id, proposal.input_hash)
    # an earlier brain (say, before a restore from backup) already sent this exact request
    earlier = functions_connector(
        base_url=cloud.fake.functions_url,
        token_url=cloud.fake.token_url,
        clock=cloud.kit.clock,
        signer=cloud.signer,
    )
    await earlier.execute(
        ConnectorContext(request_id="earlier", timeout_seconds=10, idempotency_key=key),
        ConnectorCommand(action="ops_note.append", args=NOTE_INPUT, approval=approval_claims(proposal)),
    )
    result = await cloud.kit.service.execute(BOB, proposal_id)
    assert result.proposal.status is Status.EXECUTED
    assert result.proposal.result is not None
    assert result.proposal.result["replayed"] is True
    assert len(cloud.notes()) == 1


@pytest.mark.parametrize(
    ("fault", "message"),
    [("bad_request", "injected 400"), ("not_staff", "staff claim")],
)
async def test_a_refusal_by_the_function_is_failed_with_its_message(
    cloud: CloudKit, fault: str, message: str
) -> None:
    proposal_id = await approved_note(cloud)
    if fault == "bad_request":
        cloud.fake.fail_next(400)
    else:
        cloud.fake.set_staff(False)
    result = await cloud.kit.service.execute(BOB, proposal_id)
    assert result.proposal.status is Status.FAILED
    assert message in (result.proposal.error or "")
    assert cloud.notes() == []


async def test_a_timeout_after_sending_is_outcome_unknown_and_reconciliation_proves_it_executed_once(
    cloud: CloudKit,
) -> None:
    cloud.kit.connectors.add(
        functions_connector(
            base_url=cloud.fake.functions_url,
            token_url=cloud.fake.token_url,
            clock=cloud.kit.clock,
            signer=cloud.signer,
            timeout=1.0,
        )
    )
    proposal_id = await approved_note(cloud)
    cloud.fake.hold_after_commit(2.5)  # the note is written; the answer comes too late
    result = await cloud.kit.service.execute(BOB, proposal_id)
    assert result.proposal.status is Status.OUTCOME_UNKNOWN
    assert len(cloud.notes()) == 1
    cloud.fake.hold_after_commit(0)

    settled = await cloud.kit.service.reconcile(CAROL, proposal_id, "the member sees the note in the Portal")
    assert settled.proposal.status is Status.EXECUTED
    assert settled.proposal.result is not None
    assert settled.proposal.result["replayed"] is True
    assert settled.proposal.result["resourcePointer"]["docId"]
    assert len(cloud.notes()) == 1
    actions = [e.action for e in await cloud.kit.audit()]
    assert actions[-1] == "capability.proposal.reconciled"
    # settled once: it never runs again
    with pytest.raises(PolicyRefused) as again:
        await cloud.kit.service.reconcile(CAROL, proposal_id, "the member sees the note in the Portal")
    assert again.value.reason_code == "INVALID_TRANSITION"


async def test_reconciling_a_lost_request_sends_it_again_with_the_same_key(cloud: CloudKit) -> None:
    proposal_id = await approved_note(cloud)
    cloud.fake.drop_next(1)  # the connection dies before the Function sees anything
    result = await cloud.kit.service.execute(BOB, proposal_id)
    assert result.proposal.status is Status.OUTCOME_UNKNOWN
    assert cloud.notes() == []
    settled = await cloud.kit.service.reconcile(CAROL, proposal_id, "nothing in the Portal; complete it")
    assert settled.proposal.status is Status.EXECUTED
    assert len(cloud.notes()) == 1
    note = cloud.notes()[0]
    assert note["idempotencyKey"] == result.proposal.execution_key


async def test_rollback_marks_the_note_and_its_action_without_deleting_them(cloud: CloudKit) -> None:
    proposal_id = await approved_note(cloud)
    await cloud.kit.service.execute(BOB, proposal_id)
    back = await cloud.kit.service.create_proposal(
        BOB,
        "firestore.ops_note.rollback",
        {"proposalId": proposal_id, "reason": "Posted on the wrong batch."},
        WHY,
    )
    fields = {e["collection"]: e["fields"] for e in back.proposal.predicted_effects if e["kind"] == "write"}
    assert fields["studioBrainPilotActions"]["rollbackState"] == "rolled_back"
    await cloud.kit.service.approve(ALICE, back.proposal.id, OK)
    result = await cloud.kit.service.execute(ALICE, back.proposal.id)
    assert result.proposal.status is Status.EXECUTED
    notes = cloud.notes()
    assert len(notes) == 1
    assert notes[0]["rollbackReason"] == "Posted on the wrong batch."
    assert notes[0]["rolledBackAt"] is not None
    (action,) = cloud.actions()
    assert action["rollbackState"] == "rolled_back"


async def test_a_batch_close_approved_by_a_second_person_closes_the_batch_in_the_emulator(
    cloud: CloudKit,
) -> None:
    created = await cloud.kit.service.create_proposal(
        ALICE, "firestore.batch.close", {"batchId": "batch-7", "notes": "Picked up by the member"}, WHY
    )
    assert created.proposal.status is Status.PENDING_APPROVAL
    approved = await cloud.kit.service.approve(BOB, created.proposal.id, OK)
    assert approved.status is Status.APPROVED
    result = await cloud.kit.service.execute(BOB, created.proposal.id)
    assert result.proposal.status is Status.EXECUTED
    batch = cloud.client.collection("batches").document("batch-7").get().to_dict()
    assert batch["isClosed"] is True
    assert batch["state"] == "CLOSED_PICKED_UP"
    (event,) = [d.to_dict() for d in cloud.client.collection("batches/batch-7/timeline").stream()]
    assert event["type"] == "PICKED_UP_AND_CLOSE"
    assert event["notes"].startswith("Picked up by the member")
    token = event["notes"].split("studio-brain-approval: ")[1]
    assert verify_token(token, cloud.signer.jwks()).valid

    # an already-closed batch is never closed twice: refused before anything is sent
    again = await cloud.kit.service.create_proposal(
        ALICE, "firestore.batch.close", {"batchId": "batch-7"}, WHY
    )
    await cloud.kit.service.approve(BOB, again.proposal.id, OK)
    before = cloud.fake.request_count
    failed = await cloud.kit.service.execute(BOB, again.proposal.id)
    assert failed.proposal.status is Status.FAILED
    assert "already closed" in (failed.proposal.error or "")
    assert cloud.fake.request_count == before


# --- every check before any byte leaves ------------------------------------------------------------------


def registry_with(**capability_overrides: str) -> Any:
    """The shipped registry with TOML lines replaced (``key = value`` lines of ops_note.append)."""
    text = (Path(studio_brain.__file__).parent / "capabilities.toml").read_text(encoding="utf-8")
    for old, new in capability_overrides.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    registry = parse_registry_toml(text)
    assert registry.valid, registry.violations
    return registry


async def _refused(call: Any) -> str:
    with pytest.raises(PolicyRefused) as caught:
        await call
    return str(caught.value.reason_code)


async def test_every_refusal_sends_nothing_to_the_function(cloud: CloudKit) -> None:
    service = cloud.kit.service
    other_tenant = staff("bob", tenant="studio-b")
    sent = cloud.fake.request_count

    def nothing_sent() -> None:
        assert cloud.fake.request_count == sent
        assert cloud.fake.exchanges == 0  # not even a token exchange
        assert cloud.notes() == []

    # approval: never approved
    pending = await service.create_proposal(ALICE, "firestore.ops_note.append", NOTE_INPUT, WHY)
    assert await _refused(service.execute(BOB, pending.proposal.id)) == "APPROVAL_REQUIRED"
    nothing_sent()
    # tenant: another studio's staff
    proposal_id = await approved_note(cloud)
    assert await _refused(service.execute(other_tenant, proposal_id)) == "TENANT_MISMATCH"
    nothing_sent()
    # kill switch
    await service.set_kill_switch(CAROL, enabled=True, rationale="cloud incident under way")
    assert await _refused(service.execute(BOB, proposal_id)) == "KILL_SWITCH_ACTIVE"
    await service.set_kill_switch(CAROL, enabled=False, rationale="cloud incident is over")
    nothing_sent()
    # write window (policy as data): outside allowedHours
    closed = cloud.kit.service_with(
        registry_with(**{'allowedHours = ["06:00-22:00"]': 'allowedHours = ["01:00-02:00"]'})
    )
    late = await closed.create_proposal(ALICE, "firestore.ops_note.append", NOTE_INPUT, WHY)
    await closed.approve(BOB, late.proposal.id, OK)
    assert await _refused(closed.execute(BOB, late.proposal.id)) == "WRITE_WINDOW_CLOSED"
    nothing_sent()
    # two-person rule: an agent's high-risk draft approved by one person is not enough
    drafter = agent("ops-bot", "capability:firestore.batch.close:propose")
    drafted = await service.create_proposal(drafter, "firestore.batch.close", {"batchId": "batch-7"}, WHY)
    still = await service.approve(BOB, drafted.proposal.id, OK)
    assert still.status is Status.PENDING_APPROVAL
    assert await _refused(service.execute(BOB, drafted.proposal.id)) == "APPROVAL_REQUIRED"
    nothing_sent()


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        (
            {"[writePolicy]\ndailyCloudWriteBudget = 50": "[writePolicy]\ndailyCloudWriteBudget = 1"},
            "WRITE_BUDGET_EXHAUSTED",
        ),
        (
            {"rateLimit = { perHour = 30, burst = 5 }": "rateLimit = { perHour = 1, burst = 1 }"},
            "RATE_LIMITED",
        ),
        (
            {
                "rateLimit = { perHour = 30, burst = 5 }": "rateLimit = { perHour = 30, burst = 5 }\ncooldownSeconds = 600"
            },
            "COOLDOWN_ACTIVE",
        ),
    ],
)
async def test_a_second_cloud_write_past_a_counter_sends_nothing(
    cloud: CloudKit, overrides: dict[str, str], code: str
) -> None:
    service = cloud.kit.service_with(registry_with(**overrides))
    first = await service.create_proposal(ALICE, "firestore.ops_note.append", NOTE_INPUT, WHY)
    await service.approve(BOB, first.proposal.id, OK)
    assert (await service.execute(BOB, first.proposal.id)).proposal.status is Status.EXECUTED
    second = await service.create_proposal(
        ALICE, "firestore.ops_note.append", {**NOTE_INPUT, "note": "A second, different note."}, WHY
    )
    await service.approve(BOB, second.proposal.id, OK)
    sent = cloud.fake.request_count
    assert await _refused(service.execute(BOB, second.proposal.id)) == code
    assert cloud.fake.request_count == sent
    assert len(cloud.notes()) == 1
    audit = await cloud.kit.audit()
    assert audit[-1].metadata["decision"]["reasonCode"] == code


async def test_a_read_only_functions_connector_refuses_before_any_request(cloud: CloudKit) -> None:
    from studio_brain.domain.connectors import ConnectorMode

    cloud.kit.connectors.add(
        functions_connector(
            base_url=cloud.fake.functions_url,
            token_url=cloud.fake.token_url,
            clock=cloud.kit.clock,
            signer=cloud.signer,
            mode=ConnectorMode.READ_ONLY,
        )
    )
    proposal_id = await approved_note(cloud)
    assert await _refused(cloud.kit.service.execute(BOB, proposal_id)) == "CONNECTOR_READ_ONLY"
    assert cloud.fake.request_count == 0


async def test_the_recovery_job_reads_an_unknown_cloud_write_back_without_sending_anything(
    cloud: CloudKit,
) -> None:
    cloud.kit.connectors.add(
        functions_connector(
            base_url=cloud.fake.functions_url,
            token_url=cloud.fake.token_url,
            clock=cloud.kit.clock,
            signer=cloud.signer,
            timeout=1.0,
        )
    )
    proposal_id = await approved_note(cloud)
    cloud.fake.hold_after_commit(2.5)
    assert (await cloud.kit.service.execute(BOB, proposal_id)).proposal.status is Status.OUTCOME_UNKNOWN
    cloud.fake.hold_after_commit(0)
    sent = cloud.fake.request_count
    report = await cloud.kit.service.recover_executions("studio-a")
    assert report.reconciled == {proposal_id: "executed"}
    assert cloud.fake.request_count == sent  # read-only: the action doc in Firestore is the proof
    settled = await cloud.kit.service.get(BOB, proposal_id)
    assert settled.status is Status.EXECUTED
    assert settled.result is not None
    assert settled.result["reconciledBy"] == "action doc"
    assert len(cloud.notes()) == 1


async def test_when_the_target_cannot_be_read_first_nothing_is_sent_and_the_write_failed(
    cloud: CloudKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from studio_brain.adapters.connectors.functions import FirestoreDocuments

    proposal_id = await approved_note(cloud)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", dead)  # the brain's reads now reach nothing
    cloud.connector._documents = FirestoreDocuments(project_id=TEST_PROJECT, deadline_seconds=1.0)
    result = await cloud.kit.service.execute(BOB, proposal_id)
    assert result.proposal.status is Status.FAILED  # provably not sent: not "unknown"
    assert "reading batches" in (result.proposal.error or "")
    assert cloud.fake.request_count == 0


async def test_the_daily_budget_is_per_tenant(cloud: CloudKit) -> None:
    service = cloud.kit.service_with(
        registry_with(
            **{"[writePolicy]\ndailyCloudWriteBudget = 50": "[writePolicy]\ndailyCloudWriteBudget = 1"}
        )
    )
    other_alice, other_bob = staff("alice", tenant="studio-b"), staff("bob", tenant="studio-b")

    async def write(requester: Any, approver: Any, note: str) -> Any:
        created = await service.create_proposal(
            requester, "firestore.ops_note.append", {**NOTE_INPUT, "note": note}, WHY
        )
        await service.approve(approver, created.proposal.id, OK)
        return created.proposal.id

    first = await write(ALICE, BOB, "First note of studio A.")
    assert (await service.execute(BOB, first)).proposal.status is Status.EXECUTED
    elsewhere = await write(other_alice, other_bob, "First note of studio B.")
    assert (await service.execute(other_bob, elsewhere)).proposal.status is Status.EXECUTED  # its own budget
    second = await write(ALICE, BOB, "Second note of studio A.")
    assert await _refused(service.execute(BOB, second)) == "WRITE_BUDGET_EXHAUSTED"
    assert len(cloud.notes()) == 2
