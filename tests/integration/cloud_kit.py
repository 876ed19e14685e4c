"""Shared pieces of the cloud-write tests: the gateway on PostgreSQL, the real Functions connector, and the
fake Functions server writing into the Firestore emulator (read back with the official client)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from studio_brain.adapters.attestation_keys import AttestationSigner
from studio_brain.adapters.connectors.base import HttpPolicy
from studio_brain.adapters.connectors.breaker import CircuitBreaker
from studio_brain.adapters.connectors.functions import FirestoreDocuments, FunctionsConnector
from studio_brain.adapters.connectors.functions.fake import FakeFunctions
from studio_brain.adapters.connectors.functions.store import EmulatorPilotStore
from studio_brain.adapters.firebase_id_token import IdTokenSource
from studio_brain.adapters.postgres.database import Database
from studio_brain.domain.connectors import ConnectorMode, WriteAllowlist
from tests.fakes import FakeClock
from tests.fixtures.firestore import TEST_PROJECT
from tests.integration.gateway_kit import Kit, build_kit

REFRESH = "brain-refresh-token-0b7d-very-secret"
#: within the shipped allowedHours (06:00-22:00; the kit's gateway runs in UTC)
NOON = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
ALL_WRITES = WriteAllowlist.parse(
    [
        "executeStudioBrainPilotAction:ops_note_append",
        "rollbackStudioBrainPilotAction:rollback",
        "pickedUpAndClose:close",
    ]
)
NOTE_INPUT = {
    "batchId": "batch-7",
    "ownerUid": "member-3",
    "note": "Bisque cracked on two bowls; told the member.",
}


def firestore_client() -> Any:
    from google.cloud import firestore

    return firestore.Client(project=TEST_PROJECT)


def functions_connector(
    *,
    base_url: str,
    token_url: str,
    clock: FakeClock,
    signer: AttestationSigner,
    mode: ConnectorMode = ConnectorMode.READ_WRITE,
    allowlist: WriteAllowlist = ALL_WRITES,
    timeout: float = 5.0,
) -> FunctionsConnector:
    return FunctionsConnector(
        base_url=base_url,
        tokens=IdTokenSource(refresh_token=SecretStr(REFRESH), clock=clock, token_url=token_url),
        documents=FirestoreDocuments(project_id=TEST_PROJECT),
        attester=signer,
        clock=clock,
        breaker=CircuitBreaker(name="functions", clock=clock, failure_threshold=50, window_seconds=30),
        policy=HttpPolicy(attempt_timeout_seconds=timeout, read_attempts=1),
        mode=mode,
        allowlist=allowlist,
        jwks_url="http://127.0.0.1:8787/.well-known/jwks.json",
    )


@dataclass
class CloudKit:
    kit: Kit
    fake: FakeFunctions
    connector: FunctionsConnector
    signer: AttestationSigner
    client: Any

    def notes(self) -> list[dict[str, Any]]:
        return [d.to_dict() for d in self.client.collection("studioBrainPilotOpsNotes").stream()]

    def actions(self) -> list[dict[str, Any]]:
        return [d.to_dict() for d in self.client.collection("studioBrainPilotActions").stream()]

    def seed_batch(self, batch_id: str, **fields: Any) -> None:
        self.client.collection("batches").document(batch_id).set(
            {"ownerUid": "member-3", "isClosed": False, "state": "SHELVED", **fields}
        )


def build_cloud_kit(database: Database, tmp_path: Path, *, fake: FakeFunctions | None = None) -> CloudKit:
    clock = FakeClock(NOON)
    kit = build_kit(database, clock=clock)
    server = fake or FakeFunctions(
        store=EmulatorPilotStore(project_id=TEST_PROJECT), project_id=TEST_PROJECT, refresh_token=REFRESH
    )
    server.start()
    signer = AttestationSigner(tmp_path / "home" / "keys" / "attestation-ed25519.pem")
    connector = functions_connector(
        base_url=server.functions_url, token_url=server.token_url, clock=clock, signer=signer
    )
    kit.connectors.add(connector)
    cloud = CloudKit(kit=kit, fake=server, connector=connector, signer=signer, client=firestore_client())
    cloud.seed_batch("batch-7")
    return cloud
