"""The Functions write connector and the fake Functions server pass the connector contract (the fake's
in-memory store here; tests/integration/test_cloud_writes.py runs the same fake on the Firestore emulator)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import SecretStr

from studio_brain.adapters.attestation_keys import AttestationSigner
from studio_brain.adapters.connectors.base import HttpConnector, HttpPolicy
from studio_brain.adapters.connectors.breaker import CircuitBreaker
from studio_brain.adapters.connectors.functions import FunctionsConnector, MemoryDocuments
from studio_brain.adapters.connectors.functions.fake import FakeFunctions
from studio_brain.adapters.connectors.functions.store import MemoryPilotStore
from studio_brain.adapters.firebase_id_token import IdTokenSource
from studio_brain.domain.attestation import claims_for
from studio_brain.domain.connectors import ConnectorCommand, ConnectorMode, WriteAllowlist
from tests.contract.connector_contract import (
    BREAKER_FAILURES,
    BREAKER_WINDOW,
    FAST,
    ConnectorContract,
    MakeConnector,
)
from tests.fakes import FakeClock

REFRESH = "functions-refresh-token-7c1e-very-secret"
APPROVAL = claims_for(
    proposal_id="proposal-contract-0001",
    capability_id="firestore.ops_note.append",
    tenant_id="monsoonfire-main",
    input_hash="0" * 64,
    approvers=["manager"],
    approved_at=datetime(2026, 11, 25, 11, 0, tzinfo=UTC),
    expires_at=datetime(2026, 11, 25, 12, 30, tzinfo=UTC),
)
# device and command name the allowlist pair (function:command); the gateway leaves them to the connector
NOTE = ConnectorCommand(
    action="ops_note.append",
    device_id="executeStudioBrainPilotAction",
    command="ops_note_append",
    args={"batchId": "batch-1", "ownerUid": "member-1", "note": "Glaze test tiles set aside."},
    approval=APPROVAL,
)
CLOSE = ConnectorCommand(
    action="batch.close",
    device_id="pickedUpAndClose",
    command="close",
    args={"batchId": "batch-2"},
    approval=APPROVAL,
)
ROLLBACK = ConnectorCommand(
    action="ops_note.rollback",
    device_id="rollbackStudioBrainPilotAction",
    command="rollback",
    args={"proposalId": "proposal-contract-0001", "reason": "Posted on the wrong batch."},
    approval=APPROVAL,
)


class TestFunctionsContract(ConnectorContract):
    secret = REFRESH
    write_commands: ClassVar[list[ConnectorCommand]] = [NOTE, CLOSE, ROLLBACK]
    allowed_write = NOTE
    disallowed_write = CLOSE
    allowlist = WriteAllowlist.parse(["executeStudioBrainPilotAction:ops_note_append"])
    html_json_is_parsed = False
    requests_for_a_rejected_credential = 0

    @pytest.fixture
    def store(self) -> MemoryPilotStore:
        store = MemoryPilotStore()
        store.put("batches/batch-1", {"ownerUid": "member-1", "isClosed": False, "state": "SHELVED"})
        store.put("batches/batch-2", {"ownerUid": "member-2", "isClosed": False, "state": "READY_FOR_PICKUP"})
        return store

    @pytest.fixture
    def fake(self, clock: FakeClock, store: MemoryPilotStore) -> Iterator[FakeFunctions]:
        with FakeFunctions(store=store, refresh_token=REFRESH, now=clock.now) as server:
            yield server  # type: ignore[misc]

    @pytest.fixture
    def make_connector(
        self, fake: FakeFunctions, clock: FakeClock, store: MemoryPilotStore, tmp_path: Path
    ) -> MakeConnector:
        signer = AttestationSigner(tmp_path / "keys" / "attestation.pem")

        def make(
            *,
            mode: ConnectorMode = ConnectorMode.READ_ONLY,
            allowlist: WriteAllowlist | None = None,
            token: str | None = None,
            policy: HttpPolicy = FAST,
        ) -> HttpConnector:
            return FunctionsConnector(
                base_url=fake.functions_url,
                tokens=IdTokenSource(
                    refresh_token=SecretStr(token or REFRESH), clock=clock, token_url=fake.token_url
                ),
                documents=MemoryDocuments(store.store),
                attester=signer,
                clock=clock,
                breaker=CircuitBreaker(
                    name="functions",
                    clock=clock,
                    failure_threshold=BREAKER_FAILURES,
                    window_seconds=BREAKER_WINDOW,
                ),
                policy=policy,
                mode=mode,
                allowlist=allowlist,
            )

        return make
