"""The fake Functions server implements the reference contract — on the in-memory store and on the Firestore
emulator alike (the same tests, both stores): auth, staff, methods, zod-equivalent validation, dedupe,
rollback replay, the close rate limit and 404s."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from studio_brain.adapters.attestation_keys import AttestationSigner
from studio_brain.adapters.connectors.base import HttpPolicy
from studio_brain.adapters.connectors.breaker import CircuitBreaker
from studio_brain.adapters.connectors.functions import FunctionsConnector, MemoryDocuments
from studio_brain.adapters.connectors.functions.fake import FakeFunctions
from studio_brain.adapters.connectors.functions.store import EmulatorPilotStore, MemoryPilotStore, PilotStore
from studio_brain.adapters.firebase_id_token import IdTokenSource
from studio_brain.domain.attestation import claims_for
from studio_brain.domain.connectors import ConnectorCommand, ConnectorContext, ConnectorMode, WriteAllowlist
from studio_brain.domain.errors import ConnectorError
from tests.fakes import FakeClock
from tests.fixtures.firestore import TEST_PROJECT, wipe_firestore

REFRESH = "fake-contract-refresh-token"
BODY = {
    "proposalId": "proposal-0001",
    "approvedBy": '{"approvers":["bob"]}',
    "approvedAt": "2026-11-25T18:00:00+00:00",
    "idempotencyKey": "prop-key-0001",
    "actorUid": "studio-brain-bot",
    "actionType": "ops_note_append",
    "ownerUid": "member-3",
    "resourceCollection": "batches",
    "resourceId": "batch-7",
    "note": "Shelf 3 wiped down.",
}


@pytest.fixture(params=["memory", pytest.param("emulator", marks=pytest.mark.firestore)])
def fake(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeFunctions]:
    store: PilotStore
    if request.param == "emulator":
        host = request.getfixturevalue("firestore_emulator_host")
        monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", host)
        wipe_firestore(host)
        store = EmulatorPilotStore(project_id=TEST_PROJECT)
    else:
        store = MemoryPilotStore()
    store.put("batches/batch-7", {"ownerUid": "member-3", "isClosed": False, "state": "SHELVED"})
    with FakeFunctions(store=store, project_id=TEST_PROJECT, refresh_token=REFRESH) as server:
        yield server  # type: ignore[misc]


def call(
    fake: FakeFunctions, name: str, body: Any = None, *, token: str | None = "mint", method: str = "POST"
) -> httpx.Response:
    headers = {}
    if token == "mint":
        token = fake.mint_id_token()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.request(method, f"{fake.url}/{name}", json=body, headers=headers, timeout=30)


def test_the_token_exchange_gives_a_staff_id_token_and_refuses_a_wrong_refresh_token(
    fake: FakeFunctions,
) -> None:
    ok = httpx.post(fake.token_url, data={"grant_type": "refresh_token", "refresh_token": REFRESH})
    assert ok.status_code == 200
    assert ok.json()["user_id"] == "studio-brain-bot"
    assert call(fake, "executeStudioBrainPilotAction", BODY, token=ok.json()["id_token"]).status_code == 200
    bad = httpx.post(fake.token_url, data={"grant_type": "refresh_token", "refresh_token": "nope"})
    assert bad.status_code == 400


def test_auth_staff_and_method_are_checked_like_the_functions(fake: FakeFunctions) -> None:
    assert call(fake, "executeStudioBrainPilotAction", BODY, token=None).status_code == 401
    assert call(fake, "executeStudioBrainPilotAction", BODY, token="not.a.jwt").status_code == 401
    unsigned = fake.mint_id_token()[:-8] + "AAAAAAAA"  # a tampered signature
    assert call(fake, "executeStudioBrainPilotAction", BODY, token=unsigned).status_code == 401
    forbidden = call(fake, "executeStudioBrainPilotAction", BODY, token=fake.mint_id_token(staff=False))
    assert (forbidden.status_code, forbidden.json()["message"]) == (403, "Forbidden")
    assert call(fake, "executeStudioBrainPilotAction", method="GET").status_code == 405
    before = fake.mint_id_token()
    fake.rotate_token("rotated-refresh-token")  # revokes every token issued so far (checkRevoked)
    assert call(fake, "executeStudioBrainPilotAction", BODY, token=before).status_code == 401
    assert call(fake, "executeStudioBrainPilotAction", BODY, token=fake.mint_id_token()).status_code == 200


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"proposalId": "short"}, "proposalId: String must contain at least 8 character(s)"),
        ({"idempotencyKey": "k" * 121}, "idempotencyKey: String must contain at most 120 character(s)"),
        (
            {"actionType": "delete_everything"},
            'actionType: Invalid literal value, expected "ops_note_append"',
        ),
        ({"resourceCollection": "payments"}, 'resourceCollection: Invalid literal value, expected "batches"'),
        ({"note": "hi"}, "note: String must contain at least 5 character(s)"),
        ({"ownerUid": 7}, "ownerUid: Expected string, received number"),
        ({"actorUid": None}, "actorUid: Required"),
    ],
)
def test_invalid_bodies_are_400_with_the_schema_message_and_write_nothing(
    fake: FakeFunctions, change: dict[str, Any], message: str
) -> None:
    response = call(fake, "executeStudioBrainPilotAction", {**BODY, **change})
    assert response.status_code == 400
    assert response.json() == {"ok": False, "message": message}
    assert fake.store.get(f"studioBrainPilotActions/{BODY['proposalId']}__{BODY['idempotencyKey']}") is None


def test_the_same_key_replays_and_a_new_key_writes_again(fake: FakeFunctions) -> None:
    first = call(fake, "executeStudioBrainPilotAction", BODY).json()
    again = call(fake, "executeStudioBrainPilotAction", {**BODY, "note": "A different note text."}).json()
    assert first["replayed"] is False
    assert again == {**first, "replayed": True}  # same pointer: nothing written twice
    other = call(fake, "executeStudioBrainPilotAction", {**BODY, "idempotencyKey": "prop-key-0002"}).json()
    assert other["resourcePointer"]["docId"] != first["resourcePointer"]["docId"]
    # the key is sanitised as the Function does: characters outside [A-Za-z0-9_-] removed
    dotted = call(fake, "executeStudioBrainPilotAction", {**BODY, "idempotencyKey": "prop-key-0001!"}).json()
    assert dotted["resourcePointer"] == first["resourcePointer"]
    assert dotted["replayed"] is True


def test_rollback_marks_once_then_replays_and_an_unknown_action_is_404(fake: FakeFunctions) -> None:
    pointer = call(fake, "executeStudioBrainPilotAction", BODY).json()["resourcePointer"]
    body = {
        "proposalId": BODY["proposalId"],
        "idempotencyKey": BODY["idempotencyKey"],
        "actorUid": "u",
        "reason": "Posted on the wrong batch.",
    }
    assert call(fake, "rollbackStudioBrainPilotAction", body).json() == {"ok": True, "replayed": False}
    assert call(fake, "rollbackStudioBrainPilotAction", body).json() == {"ok": True, "replayed": True}
    note = fake.store.get(f"studioBrainPilotOpsNotes/{pointer['docId']}")
    assert note is not None
    assert note["rollbackReason"] == "Posted on the wrong batch."
    missing = call(fake, "rollbackStudioBrainPilotAction", {**body, "proposalId": "proposal-9999"})
    assert missing.status_code == 404
    assert call(fake, "rollbackStudioBrainPilotAction", {**body, "reason": "short"}).status_code == 400


def test_picked_up_and_close_closes_404s_and_rate_limits(fake: FakeFunctions) -> None:
    assert call(fake, "pickedUpAndClose", {"batchId": "batch-7"}).json()["ok"] is True
    batch = fake.store.get("batches/batch-7")
    assert batch is not None
    assert (batch["isClosed"], batch["state"]) == (True, "CLOSED_PICKED_UP")
    assert batch["closedAt"] is not None
    missing = call(fake, "pickedUpAndClose", {"batchId": "no-such-batch"})
    assert (missing.status_code, missing.json()["message"]) == (404, "Batch not found")
    assert call(fake, "pickedUpAndClose", {"batchId": ""}).status_code == 400
    statuses = [call(fake, "pickedUpAndClose", {"batchId": "no-such-batch"}).status_code for _ in range(10)]
    assert statuses[-1] == 429  # 10 per 60 s (the ones above count)
    limited = call(fake, "pickedUpAndClose", {"batchId": "batch-7"})
    assert limited.status_code == 429
    assert "retry" in limited.json()["message"]


class ClosesNothing(MemoryPilotStore):
    """A Function that answers 200 to a close and changes nothing."""

    def close_batch(self, batch_id: str, notes: str, *, uid: str, now: datetime) -> bool:
        return True


async def test_a_close_answered_200_without_the_effect_is_never_executed(tmp_path: Path) -> None:
    """Never "executed" without an effect: the connector reads the batch back after the 200."""
    store = ClosesNothing()
    store.put("batches/batch-7", {"ownerUid": "member-3", "isClosed": False, "state": "READY_FOR_PICKUP"})
    approval = claims_for(
        proposal_id="proposal-0001",
        capability_id="firestore.batch.close",
        tenant_id="t",
        input_hash="0" * 64,
        approvers=["bob"],
        approved_at=datetime(2026, 11, 25, tzinfo=UTC),
        expires_at=datetime(2026, 11, 26, tzinfo=UTC),
    )
    with FakeFunctions(store=store, project_id=TEST_PROJECT, refresh_token=REFRESH) as fake:
        connector = FunctionsConnector(
            base_url=fake.url,
            tokens=IdTokenSource(
                refresh_token=SecretStr(REFRESH), clock=FakeClock(), token_url=fake.token_url
            ),
            documents=MemoryDocuments(store.store),
            attester=AttestationSigner(tmp_path / "k.pem"),
            clock=FakeClock(),
            breaker=CircuitBreaker(
                name="functions", clock=FakeClock(), failure_threshold=5, window_seconds=30
            ),
            policy=HttpPolicy(read_attempts=1),
            mode=ConnectorMode.READ_WRITE,
            allowlist=WriteAllowlist.parse(["pickedUpAndClose:close"]),
        )
        with pytest.raises(ConnectorError) as caught:
            await connector.execute(
                ConnectorContext(request_id="r", timeout_seconds=10, idempotency_key="prop-close-0001"),
                ConnectorCommand(action="batch.close", args={"batchId": "batch-7"}, approval=approval),
            )
    assert caught.value.kind == "BAD_RESPONSE"
    assert caught.value.sent is True  # so the gateway records outcome_unknown, never executed
    assert len(fake.writes) == 1


async def test_the_brains_reader_sees_the_same_documents_on_either_store(fake: FakeFunctions) -> None:
    """MemoryDocuments (the demo's cloud) and FirestoreDocuments (the official client) read alike."""
    from studio_brain.adapters.connectors.functions import CloudDocuments, FirestoreDocuments, MemoryDocuments

    call(fake, "executeStudioBrainPilotAction", BODY)
    reader: CloudDocuments = (
        MemoryDocuments(fake.store.store)
        if isinstance(fake.store, MemoryPilotStore)
        else FirestoreDocuments(project_id=TEST_PROJECT)
    )
    batch = await reader.get("batches/batch-7")
    assert batch == {"ownerUid": "member-3", "isClosed": False, "state": "SHELVED"}
    assert await reader.get("batches/no-such-batch") is None
    ((doc_id, action),) = await reader.actions_for(BODY["proposalId"])
    assert doc_id == f"{BODY['proposalId']}__{BODY['idempotencyKey']}"
    assert set(action) == {
        "proposalId",
        "idempotencyKey",
        "approvedBy",
        "approvedAt",
        "actorUid",
        "ownerUid",
        "resourceCollection",
        "resourceId",
        "noteCollection",
        "noteId",
        "createdAt",
        "rollbackState",
        "rollbackReason",
        "rolledBackAt",
    }
    assert action["rollbackState"] == "active"
    assert datetime.fromisoformat(action["createdAt"]).tzinfo is not None  # timestamps as ISO text
    assert await reader.actions_for("proposal-none") == []
