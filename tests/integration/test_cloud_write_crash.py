"""A brain killed (SIGKILL) between sending a cloud write and hearing the reply: the proposal is never
called executed on a guess; recovery marks it outcome_unknown; reconciliation proves it executed — and the
studio's Firestore still holds exactly one note."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

import studio_brain
from studio_brain.adapters.attestation_keys import AttestationSigner
from studio_brain.adapters.connectors.functions.fake import FakeFunctions
from studio_brain.adapters.connectors.functions.store import EmulatorPilotStore
from studio_brain.adapters.postgres.database import Database
from studio_brain.domain.capabilities import parse_registry_toml
from studio_brain.domain.proposals import Status
from tests.fakes import FakeClock
from tests.fixtures.firestore import TEST_PROJECT, wipe_firestore
from tests.integration.cloud_kit import NOTE_INPUT, REFRESH, firestore_client, functions_connector
from tests.integration.gateway_kit import ALICE, BOB, CAROL, build_kit

pytestmark = [pytest.mark.postgres, pytest.mark.firestore]

EXECUTE_IN_A_CHILD = (
    textwrap.dedent(
        """
    import asyncio, sys
    from pathlib import Path
    from pydantic import SecretStr
    from studio_brain.adapters.attestation_keys import AttestationSigner
    from studio_brain.adapters.clock import SystemClock, UUID7Factory
    from studio_brain.adapters.connector_directory import DictConnectorDirectory
    from studio_brain.adapters.connectors.base import HttpPolicy
    from studio_brain.adapters.connectors.breaker import CircuitBreaker
    from studio_brain.adapters.connectors.functions import FirestoreDocuments, FunctionsConnector
    from studio_brain.adapters.firebase_id_token import IdTokenSource
    from studio_brain.adapters.postgres.database import Database
    from studio_brain.adapters.postgres.event_store import PostgresEventStore
    from studio_brain.adapters.postgres.gateway_store import PostgresGatewayStore
    from studio_brain.domain.audit import ActorType
    from studio_brain.domain.capabilities import parse_registry_toml
    from studio_brain.domain.connectors import ConnectorMode, WriteAllowlist
    from studio_brain.domain.identity import AuthMethod, Principal
    from studio_brain.services.gateway import GatewayService

    url, registry_file, functions_url, token_url, key_file, proposal_id, tenant = sys.argv[1:8]

    async def main() -> None:
        clock = SystemClock()
        database = Database(url, max_size=2)
        await database.open()
        ids = UUID7Factory()
        events = PostgresEventStore(database, ids)
        connector = FunctionsConnector(
            base_url=functions_url,
            tokens=IdTokenSource(refresh_token=SecretStr("@REFRESH@"), clock=clock, token_url=token_url),
            documents=FirestoreDocuments(project_id="@PROJECT@"),
            attester=AttestationSigner(Path(key_file)),
            clock=clock,
            breaker=CircuitBreaker(name="functions", clock=clock, failure_threshold=5, window_seconds=30),
            policy=HttpPolicy(attempt_timeout_seconds=60, read_attempts=1),
            mode=ConnectorMode.READ_WRITE,
            allowlist=WriteAllowlist.parse(["executeStudioBrainPilotAction:ops_note_append"]),
        )
        service = GatewayService(
            store=PostgresGatewayStore(database, events),
            registry=parse_registry_toml(Path(registry_file).read_text()),
            connectors=DictConnectorDirectory({"firestore": connector}),
            clock=clock,
            ids=ids,
            tenant_id=tenant,
            events=events,
        )
        bob = Principal(tenant_id=tenant, actor_type=ActorType.STAFF, actor_id="bob", via=AuthMethod.CLI,
                        roles=frozenset({"staff"}))
        print("executing", flush=True)
        await service.execute(bob, proposal_id)
        print("answered", flush=True)

    asyncio.run(main())
    """
    )
    .replace("@REFRESH@", REFRESH)
    .replace("@PROJECT@", TEST_PROJECT)
)


def registry_without_hours(tmp_path: Path) -> Path:
    """The shipped registry minus its write windows, so the child's wall clock cannot close one."""
    text = (Path(studio_brain.__file__).parent / "capabilities.toml").read_text(encoding="utf-8")
    text = "\n".join(line for line in text.splitlines() if not line.startswith("allowedHours"))
    path = tmp_path / "capabilities.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def test_a_brain_killed_between_send_and_reply_leaves_one_note_and_reconciles_to_executed(
    database: Database,
    database_url: str,
    firestore_emulator_host: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator_host)
    wipe_firestore(firestore_emulator_host)
    registry_file = registry_without_hours(tmp_path)
    registry = parse_registry_toml(registry_file.read_text(encoding="utf-8"))
    clock = FakeClock(datetime.now(UTC))
    kit = build_kit(database, registry=registry, clock=clock)
    key_file = tmp_path / "home" / "keys" / "attestation-ed25519.pem"
    signer = AttestationSigner(key_file)
    fake = FakeFunctions(
        store=EmulatorPilotStore(project_id=TEST_PROJECT), project_id=TEST_PROJECT, refresh_token=REFRESH
    ).start()
    client = firestore_client()
    client.collection("batches").document("batch-7").set({"ownerUid": "member-3", "isClosed": False})
    try:
        kit.connectors.add(
            functions_connector(
                base_url=fake.functions_url, token_url=fake.token_url, clock=clock, signer=signer
            )
        )
        created = await kit.service.create_proposal(
            ALICE, "firestore.ops_note.append", NOTE_INPUT, "member asked us to note it"
        )
        await kit.service.approve(BOB, created.proposal.id, "checked with the member")
        fake.hold_after_commit(60)  # the Function writes, then its reply is slow: the crash window

        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                EXECUTE_IN_A_CHILD,
                database_url,
                str(registry_file),
                fake.functions_url,
                fake.token_url,
                str(key_file),
                created.proposal.id,
                "studio-a",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "FIRESTORE_EMULATOR_HOST": firestore_emulator_host},
        )
        try:
            assert fake.wait_committed(60), f"the child never reached the Function (exit {child.poll()})"
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
        finally:
            if child.poll() is None:
                child.kill()
        assert child.returncode == -signal.SIGKILL
        fake.hold_after_commit(0)

        notes = [d.to_dict() for d in client.collection("studioBrainPilotOpsNotes").stream()]
        assert len(notes) == 1
        crashed = await kit.service.get(BOB, created.proposal.id)
        assert crashed.status is Status.EXECUTING  # honest: nobody heard the answer

        # past the budget and the grace period, counted from when the child (started later) began
        clock.set(crashed.updated_at)
        clock.advance(registry.capabilities["firestore.ops_note.append"].timeout_budget_seconds + 61)
        (lost,) = await kit.service.recover_stale_executions(CAROL, "the executing brain was killed")
        assert lost.status is Status.OUTCOME_UNKNOWN

        settled = await kit.service.reconcile(CAROL, created.proposal.id, "prove what the Function did")
        assert settled.proposal.status is Status.EXECUTED
        assert settled.proposal.result is not None
        assert settled.proposal.result["replayed"] is True
        pointer = settled.proposal.result["resourcePointer"]
        assert pointer["docId"] == client.collection("studioBrainPilotOpsNotes").limit(1).get()[0].id
        assert len(list(client.collection("studioBrainPilotOpsNotes").stream())) == 1
        assert len(list(client.collection("studioBrainPilotActions").stream())) == 1
        action = next(iter(client.collection("studioBrainPilotActions").stream())).to_dict()
        assert json.loads(action["approvedBy"])["approvers"] == ["bob"]
    finally:
        fake.stop()
        wipe_firestore(firestore_emulator_host)


def _start_fake_process(
    emulator: str, *, port: int = 0, hold: float = 0.0
) -> tuple[subprocess.Popen[str], dict[str, str]]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "studio_brain.adapters.connectors.functions.fake",
            "--port",
            str(port),
            "--project",
            TEST_PROJECT,
            "--refresh-token",
            REFRESH,
            "--emulator",
            emulator,
            "--hold-after-commit",
            str(hold),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    ready: dict[str, str] = json.loads(process.stdout.readline())
    return process, ready


async def test_a_function_killed_between_its_commit_and_its_reply_is_outcome_unknown_then_reconciled(
    database: Database, firestore_emulator_host: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The other side of the crash: the Function process dies (SIGKILL) after writing, before answering."""
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator_host)
    wipe_firestore(firestore_emulator_host)
    registry = parse_registry_toml(registry_without_hours(tmp_path).read_text(encoding="utf-8"))
    clock = FakeClock(datetime.now(UTC))
    kit = build_kit(database, registry=registry, clock=clock)
    client = firestore_client()
    client.collection("batches").document("batch-7").set({"ownerUid": "member-3", "isClosed": False})
    signer = AttestationSigner(tmp_path / "keys" / "attestation-ed25519.pem")
    function, ready = _start_fake_process(firestore_emulator_host, hold=60)
    restarted: subprocess.Popen[str] | None = None
    try:
        kit.connectors.add(
            functions_connector(
                base_url=ready["url"], token_url=ready["tokenUrl"], clock=clock, signer=signer, timeout=30
            )
        )
        created = await kit.service.create_proposal(
            ALICE, "firestore.ops_note.append", NOTE_INPUT, "member asked us to note it"
        )
        await kit.service.approve(BOB, created.proposal.id, "checked with the member")

        async def kill_once_written() -> None:
            for _ in range(300):
                if list(client.collection("studioBrainPilotOpsNotes").limit(1).stream()):
                    os.kill(function.pid, signal.SIGKILL)
                    return
                await asyncio.sleep(0.1)

        killer = asyncio.create_task(kill_once_written())
        result = await kit.service.execute(BOB, created.proposal.id)
        await killer
        assert result.proposal.status is Status.OUTCOME_UNKNOWN  # sent, and no answer: never assumed
        assert len(list(client.collection("studioBrainPilotOpsNotes").stream())) == 1

        # the Function comes back (a new instance, new signing keys: the brain exchanges its token again)
        port = int(ready["url"].rsplit(":", 1)[1])
        restarted, _ = _start_fake_process(firestore_emulator_host, port=port)
        settled = await kit.service.reconcile(CAROL, created.proposal.id, "prove what the Function did")
        assert settled.proposal.status is Status.EXECUTED
        assert settled.proposal.result is not None
        assert settled.proposal.result["replayed"] is True
        assert len(list(client.collection("studioBrainPilotOpsNotes").stream())) == 1
    finally:
        for process in (function, restarted):
            if process is None:
                continue
            if process.poll() is None:
                process.kill()
            process.wait(10)
            if process.stdout is not None:
                process.stdout.close()
        wipe_firestore(firestore_emulator_host)
