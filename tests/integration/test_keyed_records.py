"""Security state a database write cannot fake (issue 12 item 2), against a real PostgreSQL.

The attacker writes the brain's tables directly (the app role: no file of STUDIO_BRAIN_HOME, so not the
MAC keyring) and recomputes everything the project computes without a key — input hashes, approval
bindings. Each attack of the issue is replayed; the brain refuses at use with RECORD_TAMPERED and audits
the refusal (``gateway.record.tampered``).
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from studio_brain.adapters.postgres.database import Database
from studio_brain.adapters.postgres.gateway_records import RecordTampered
from studio_brain.adapters.record_ledger import RECORD_LEDGER_FILE, FileRecordLedger
from studio_brain.domain.audit import AuditQuery
from studio_brain.domain.errors import PolicyRefused
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.proposals import Status, binding_hash, from_record
from studio_brain.domain.records import Keyring, MacKey
from tests.integration.gateway_kit import ALICE, BOB, NOTE, TENANT, WHY, Kit, build_kit

pytestmark = pytest.mark.postgres

KEYRING = Keyring(current=MacKey(key_id="mk-records", secret=bytes(range(32, 64))))


@pytest.fixture
def keyed_kit(database: Database, tmp_path: Path) -> Kit:
    # the record ledger as the brain keeps it: a file beside the keys, out of a database writer's reach
    return build_kit(
        database, keyring=KEYRING, ledger=FileRecordLedger(tmp_path / "keys" / RECORD_LEDGER_FILE)
    )


async def refusal(coro: Any) -> str:
    with pytest.raises(PolicyRefused) as caught:
        await coro
    return str(caught.value.reason_code)


async def record_of(kit: Kit, proposal_id: str) -> dict[str, Any]:
    async with kit.pg.connection() as conn:
        cursor = await conn.execute("SELECT record FROM gateway_proposals WHERE id = %s", (proposal_id,))
        row = await cursor.fetchone()
    assert row is not None
    return dict(row["record"])


async def write_record(kit: Kit, proposal_id: str, record: dict[str, Any]) -> None:
    async with kit.pg.connection() as conn:
        await conn.execute(
            "UPDATE gateway_proposals SET record = %s::jsonb, status = %s, version = %s WHERE id = %s",
            (json.dumps(record), record["status"], record["version"], proposal_id),
        )


async def tamper_audited(kit: Kit, record_id: str) -> bool:
    page = await kit.events.query(TENANT, AuditQuery(action_prefix="gateway.record.tampered", limit=100))
    return any(e.metadata.get("recordId") == record_id for e in page.events)


def rebind(record: dict[str, Any]) -> str:
    """The binding as the project computes it, from the (tampered) record's own fields."""
    proposal = from_record(record)
    return binding_hash(
        input_hash=proposal.input_hash,
        capability_id=proposal.capability_id,
        registry_version=proposal.registry_version,
        tenant_id=proposal.tenant_id,
        predicted_effects_hash=proposal.predicted_effects_hash,
    )


async def test_an_approval_written_into_the_proposal_row_does_not_let_the_requester_execute(
    keyed_kit: Kit,
) -> None:
    kit = keyed_kit
    # A genuinely approved proposal shows the attacker what an approval looks like.
    model = await kit.service.create_proposal(ALICE, "studio.note.append", {**NOTE, "text": "model"}, WHY)
    await kit.service.approve(BOB, model.proposal.id, "looks right to me")
    approved = await record_of(kit, model.proposal.id)

    target = await kit.service.create_proposal(ALICE, "studio.note.append", NOTE, WHY)
    record = await record_of(kit, target.proposal.id)
    forged_approval = {**approved["approvals"][0], "approverId": "staff-b", "binding": rebind(record)}
    record |= {
        "approvals": [forged_approval],
        "status": approved["status"],
        "approvalState": approved["approvalState"],
        "approvedAt": approved["approvedAt"],
        "approvalExpiresAt": approved["approvalExpiresAt"],
        "version": record["version"] + 1,
    }
    await write_record(kit, target.proposal.id, record)

    assert await refusal(kit.service.execute(ALICE, target.proposal.id)) == "RECORD_TAMPERED"
    assert await kit.notes() == 0
    assert await tamper_audited(kit, target.proposal.id)


async def test_an_input_swapped_after_approval_with_hash_and_binding_recomputed_is_refused(
    keyed_kit: Kit,
) -> None:
    kit = keyed_kit
    created = await kit.service.create_proposal(ALICE, "studio.note.append", NOTE, WHY)
    await kit.service.approve(BOB, created.proposal.id, "looks right to me")
    record = await record_of(kit, created.proposal.id)
    swapped = {"text": "turn everything off", "topic": "kilns"}
    record |= {"input": swapped, "inputHash": sha256_hex(swapped)}
    record["approvals"] = [{**a, "binding": rebind(record)} for a in record["approvals"]]
    await write_record(kit, created.proposal.id, record)

    assert await refusal(kit.service.execute(BOB, created.proposal.id)) == "RECORD_TAMPERED"
    assert await kit.notes() == 0
    assert await tamper_audited(kit, created.proposal.id)


async def test_an_untampered_keyed_proposal_still_goes_from_approval_to_execution(keyed_kit: Kit) -> None:
    kit = keyed_kit
    created = await kit.service.create_proposal(ALICE, "studio.note.append", NOTE, WHY)
    await kit.service.approve(BOB, created.proposal.id, "looks right to me")
    result = await kit.service.execute(BOB, created.proposal.id)
    assert result.proposal.status is Status.EXECUTED
    assert await kit.notes() == 1
    async with kit.pg.connection() as conn:
        cursor = await conn.execute(
            "SELECT record_key_id, length(record_mac) AS n FROM gateway_proposals WHERE id = %s",
            (created.proposal.id,),
        )
        row = await cursor.fetchone()
    assert row is not None
    assert (row["record_key_id"], row["n"]) == ("mk-records", 64)


async def test_a_revoked_token_revived_by_a_database_write_is_refused(keyed_kit: Kit) -> None:
    kit = keyed_kit
    issued = await kit.service.issue_agent_token(
        ALICE,
        agent_id="ops-swarm",
        scopes=["state:read"],
        lifetime=timedelta(days=7),
        reason="ops swarm reads state",
    )
    assert await kit.service.verify_agent_token(issued.raw) is not None
    await kit.service.revoke_agent_token(ALICE, issued.token.id, "rotated after a leak")
    assert await kit.service.verify_agent_token(issued.raw) is None

    async with kit.pg.connection() as conn:
        await conn.execute(
            "UPDATE agent_tokens SET revoked_at = null, revoked_by = null, scopes = %s::jsonb WHERE id = %s",
            (json.dumps(["proposals:create", "proposals:read", "state:read"]), issued.token.id),
        )
    assert await kit.service.verify_agent_token(issued.raw) is None
    assert await tamper_audited(kit, issued.token.id)


async def test_a_revoked_token_restored_from_its_older_row_is_refused(keyed_kit: Kit) -> None:
    kit = keyed_kit
    issued = await kit.service.issue_agent_token(
        ALICE,
        agent_id="ops-swarm",
        scopes=["state:read"],
        lifetime=timedelta(days=7),
        reason="ops swarm reads state",
    )
    async with kit.pg.connection() as conn:
        cursor = await conn.execute("SELECT * FROM agent_tokens WHERE id = %s", (issued.token.id,))
        before = await cursor.fetchone()
    assert before is not None
    await kit.service.revoke_agent_token(ALICE, issued.token.id, "rotated after a leak")
    # The whole pre-revocation row, MAC and version included, written back (a backup restored).
    async with kit.pg.connection() as conn:
        await conn.execute(
            "UPDATE agent_tokens SET revoked_at = %s, revoked_by = %s, record_version = %s,"
            " record_key_id = %s, record_mac = %s WHERE id = %s",
            (
                before["revoked_at"],
                before["revoked_by"],
                before["record_version"],
                before["record_key_id"],
                before["record_mac"],
                issued.token.id,
            ),
        )
    assert await kit.service.verify_agent_token(issued.raw) is None
    assert await tamper_audited(kit, issued.token.id)


async def test_a_token_with_widened_scopes_is_refused(keyed_kit: Kit) -> None:
    kit = keyed_kit
    issued = await kit.service.issue_agent_token(
        ALICE,
        agent_id="ops-swarm",
        scopes=["state:read"],
        lifetime=timedelta(days=7),
        reason="ops swarm reads state",
    )
    async with kit.pg.connection() as conn:
        await conn.execute(
            "UPDATE agent_tokens SET scopes = %s::jsonb WHERE id = %s",
            (json.dumps(["proposals:approve", "state:read"]), issued.token.id),
        )
    assert await kit.service.verify_agent_token(issued.raw) is None
    assert await tamper_audited(kit, issued.token.id)


async def test_approvals_bind_with_an_hmac_a_database_writer_cannot_recompute(keyed_kit: Kit) -> None:
    kit = keyed_kit
    created = await kit.service.create_proposal(ALICE, "studio.note.append", NOTE, WHY)
    approved = await kit.service.approve(BOB, created.proposal.id, "looks right to me")
    (approval,) = approved.approvals
    assert approval.binding == kit.service.binding(approved)
    assert approval.binding == approved.binding(KEYRING.current)
    assert approval.binding != approved.binding()  # not the plain SHA-256 anyone can compute


async def test_a_kill_switch_turned_off_by_a_database_write_refuses_every_action(keyed_kit: Kit) -> None:
    kit = keyed_kit
    created = await kit.service.create_proposal(ALICE, "studio.note.append", NOTE, WHY)
    await kit.service.approve(BOB, created.proposal.id, "looks right to me")
    await kit.service.set_kill_switch(ALICE, enabled=True, rationale="storm coming, stop everything")
    async with kit.pg.connection() as conn:
        await conn.execute("UPDATE gateway_kill_switch SET enabled = false")
    assert await refusal(kit.service.execute(BOB, created.proposal.id)) == "RECORD_TAMPERED"
    assert await kit.notes() == 0
    # staff setting the switch again re-seals it
    await kit.service.set_kill_switch(ALICE, enabled=False, rationale="storm passed, resume")
    result = await kit.service.execute(BOB, created.proposal.id)
    assert result.proposal.status is Status.EXECUTED


async def test_a_kill_switch_row_deleted_by_a_database_writer_refuses_every_action(keyed_kit: Kit) -> None:
    kit = keyed_kit
    created = await kit.service.create_proposal(ALICE, "studio.note.append", NOTE, WHY)
    await kit.service.approve(BOB, created.proposal.id, "looks right to me")
    await kit.service.set_kill_switch(ALICE, enabled=True, rationale="storm coming, stop everything")
    async with kit.pg.connection() as conn:
        await conn.execute("DELETE FROM gateway_kill_switch")  # no row reads as "off"
    assert await refusal(kit.service.execute(BOB, created.proposal.id)) == "RECORD_TAMPERED"
    assert await tamper_audited(kit, "*")
    assert await kit.notes() == 0
    # staff setting the switch again writes it above the ledger's floor: the gate works again
    await kit.service.set_kill_switch(ALICE, enabled=False, rationale="storm passed, resume")
    result = await kit.service.execute(BOB, created.proposal.id)
    assert result.proposal.status is Status.EXECUTED


async def test_a_kill_switch_written_back_from_its_older_off_row_refuses_every_action(keyed_kit: Kit) -> None:
    kit = keyed_kit
    created = await kit.service.create_proposal(ALICE, "studio.note.append", NOTE, WHY)
    await kit.service.approve(BOB, created.proposal.id, "looks right to me")
    await kit.service.set_kill_switch(ALICE, enabled=False, rationale="all clear for the weekend")
    async with kit.pg.connection() as conn:
        cursor = await conn.execute("SELECT * FROM gateway_kill_switch")
        off = await cursor.fetchone()
    assert off is not None
    await kit.service.set_kill_switch(ALICE, enabled=True, rationale="kiln alarm, stop everything")
    async with kit.pg.connection() as conn:  # the older row, MAC and all, written back
        await conn.execute(
            "UPDATE gateway_kill_switch SET enabled = %(enabled)s, rationale = %(rationale)s,"
            " updated_by = %(updated_by)s, updated_at = %(updated_at)s, record_version = %(record_version)s,"
            " record_key_id = %(record_key_id)s, record_mac = %(record_mac)s WHERE scope = %(scope)s",
            off,
        )
    assert await refusal(kit.service.execute(BOB, created.proposal.id)) == "RECORD_TAMPERED"
    assert await kit.notes() == 0


async def test_an_exemption_forged_in_the_database_does_not_skip_approval(keyed_kit: Kit) -> None:
    kit = keyed_kit
    genuine = await kit.service.create_exemption(
        ALICE,
        capability_id="studio.note.append",
        justification="nightly log notes",
        lifetime=timedelta(hours=1),
    )
    await kit.service.revoke_exemption(ALICE, genuine.id, "no longer needed now")
    created = await kit.service.create_proposal(ALICE, "studio.note.append", NOTE, WHY)
    # A copy of the revoked exemption, unrevoked, with a fresh id and a long life: no valid MAC.
    async with kit.pg.connection() as conn:
        await conn.execute(
            "INSERT INTO gateway_exemptions (id, tenant_id, capability_id, target, actor_id, justification,"
            " created_by, created_at, expires_at) SELECT 'forged', tenant_id, capability_id, target, actor_id,"
            " justification, created_by, created_at, created_at + interval '30 days' FROM gateway_exemptions"
            " WHERE id = %s",
            (genuine.id,),
        )
    assert await refusal(kit.service.execute(BOB, created.proposal.id)) == "RECORD_TAMPERED"
    assert await kit.notes() == 0
    assert await tamper_audited(kit, "forged")


async def test_a_revoked_exemption_restored_from_its_older_row_is_refused(keyed_kit: Kit) -> None:
    kit = keyed_kit
    genuine = await kit.service.create_exemption(
        ALICE,
        capability_id="studio.note.append",
        justification="nightly log notes",
        lifetime=timedelta(hours=1),
    )
    async with kit.pg.connection() as conn:
        cursor = await conn.execute("SELECT * FROM gateway_exemptions WHERE id = %s", (genuine.id,))
        before = await cursor.fetchone()
    assert before is not None
    await kit.service.revoke_exemption(ALICE, genuine.id, "no longer needed now")
    async with kit.pg.connection() as conn:
        await conn.execute(
            "UPDATE gateway_exemptions SET revoked_at = null, revoked_by = null, revoke_reason = null,"
            " record_version = %s, record_mac = %s WHERE id = %s",
            (before["record_version"], before["record_mac"], genuine.id),
        )
    created = await kit.service.create_proposal(ALICE, "studio.note.append", NOTE, WHY)
    assert await refusal(kit.service.execute(BOB, created.proposal.id)) == "RECORD_TAMPERED"
    assert await kit.notes() == 0


async def test_an_executed_proposal_restored_from_its_approved_row_does_not_run_again(keyed_kit: Kit) -> None:
    kit = keyed_kit
    created = await kit.service.create_proposal(ALICE, "studio.note.append", NOTE, WHY)
    await kit.service.approve(BOB, created.proposal.id, "looks right to me")
    async with kit.pg.connection() as conn:
        cursor = await conn.execute("SELECT * FROM gateway_proposals WHERE id = %s", (created.proposal.id,))
        approved_row = await cursor.fetchone()
    assert approved_row is not None
    await kit.service.execute(BOB, created.proposal.id)
    assert await kit.notes() == 1
    # The whole approved row (its MAC valid for its version) written back over the executed one.
    async with kit.pg.connection() as conn:
        await conn.execute(
            "UPDATE gateway_proposals SET status = %s, execution_key = %s, version = %s, record = %s::jsonb,"
            " record_key_id = %s, record_mac = %s WHERE id = %s",
            (
                approved_row["status"],
                approved_row["execution_key"],
                approved_row["version"],
                json.dumps(approved_row["record"]),
                approved_row["record_key_id"],
                approved_row["record_mac"],
                created.proposal.id,
            ),
        )
    assert await refusal(kit.service.execute(BOB, created.proposal.id)) == "RECORD_TAMPERED"
    assert await kit.notes() == 1
    assert await tamper_audited(kit, created.proposal.id)


async def test_thirty_refused_self_approvals_are_audited_as_one_row_and_one_counted_row(
    keyed_kit: Kit,
) -> None:
    # issue 12 item 8: a caller's repeated policy refusals do not write a row each (an audit flood)
    kit = keyed_kit
    created = await kit.service.create_proposal(ALICE, "studio.note.append", NOTE, WHY)
    for _ in range(30):
        assert await refusal(kit.service.approve(ALICE, created.proposal.id, "me again")) == (
            "SELF_APPROVAL_FORBIDDEN"
        )
    await kit.service.flush_refusals()
    refused = [e for e in await kit.audit() if e.action == "capability.decision.refused"]
    assert [e.metadata["count"] for e in refused] == [1, 29]
    assert refused[1].metadata["aggregated"] is True
    assert refused[1].metadata["decision"]["reasonCode"] == "SELF_APPROVAL_FORBIDDEN"


async def test_a_proposal_edited_while_its_device_call_runs_is_not_written_over_and_is_named(
    keyed_kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    # issue 18: the outcome no longer locks and re-reads the proposal first; it writes only over exactly the
    # row its claim wrote, so a row edited in between is still read, checked and named as tampered
    from studio_brain.adapters.local_connector import LocalNotesConnector

    kit = keyed_kit
    created = await kit.service.create_proposal(ALICE, "studio.note.append", NOTE, WHY)
    proposal_id = created.proposal.id
    await kit.service.approve(BOB, proposal_id, "looks right to me")
    original = LocalNotesConnector.execute

    async def edited_meanwhile(self: LocalNotesConnector, ctx: Any, command: Any) -> Any:
        record = await record_of(kit, proposal_id)
        assert record["status"] == "executing"
        await write_record(kit, proposal_id, {**record, "rationale": "rewritten during the call"})
        return await original(self, ctx, command)

    monkeypatch.setattr(LocalNotesConnector, "execute", edited_meanwhile)
    with pytest.raises(RecordTampered, match="does not match its MAC"):
        await kit.service.execute(BOB, proposal_id)
    stored = await record_of(kit, proposal_id)
    assert stored["rationale"] == "rewritten during the call"  # not overwritten by the outcome
    assert stored["status"] == "executing"
    assert await tamper_audited(kit, proposal_id)
