"""The keyed audit chain (issue 12 item 1) against a real PostgreSQL.

The attacker here can write the brain's database (a superuser session with the append-only triggers
switched off) and runs the project's own code (``seal``, ``event_hash``), but has no file of
STUDIO_BRAIN_HOME — so not the MAC keyring. Whatever they insert, alter, delete, reorder or re-chain,
``verify`` names the first break (seq and kind) and ``checkpoint`` refuses to sign it.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from studio_brain.adapters.audit_files import CheckpointFile
from studio_brain.adapters.clock import UUID7Factory
from studio_brain.adapters.keys import (
    Ed25519Signer,
    Ed25519Verifier,
    ensure_mac_keyring,
    load_mac_keyring,
    rotate_mac_key,
)
from studio_brain.adapters.postgres.database import Database
from studio_brain.adapters.postgres.event_store import COLUMNS, PostgresCheckpointStore, PostgresEventStore
from studio_brain.domain.audit import (
    FORMAT_KEYED,
    ActorType,
    ApprovalState,
    AuditDraft,
    AuditEvent,
    BreakKind,
    event_from_json,
    event_hash,
    seal,
)
from studio_brain.domain.errors import ConfigError, Conflict
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.records import Keyring, MacKey
from studio_brain.services.audit import AuditService, VerifyReport
from tests.fakes import FakeClock

pytestmark = pytest.mark.postgres

T = "monsoonfire-main"
KEYRING = Keyring(current=MacKey(key_id="mk-brain", secret=bytes(range(32))))
#: a key the attacker made up: right shape, wrong secret
ATTACKER_KEY = MacKey(key_id="mk-brain", secret=b"\xff" * 32)


def draft(n: int, **changes: Any) -> AuditDraft:
    return replace(
        AuditDraft(
            tenant_id=T,
            actor_type=ActorType.STAFF,
            actor_id=f"staff-{'a' if n % 2 else 'c'}",
            action="capability.proposal.created",
            target="hubitat",
            rationale=f"event {n}",
            approval_state=ApprovalState.REQUIRED,
            input_hash=sha256_hex({"n": n}),
            request_id=f"req-{n}",
            correlation_id=f"prop-{n}",
            capability_id="hubitat.switch.set",
            metadata={"n": n},
        ),
        **changes,
    )


def service_for(database: Database, tmp_path: Path, keyring: Keyring | None) -> AuditService:
    return AuditService(
        events=PostgresEventStore(database, UUID7Factory(), keyring),
        checkpoint_stores=[PostgresCheckpointStore(database), CheckpointFile(tmp_path / "checkpoints.jsonl")],
        signer=Ed25519Signer(Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))),
        verifier=Ed25519Verifier(),
        clock=FakeClock(),
        keyring=keyring,
    )


@pytest.fixture
def service(database: Database, tmp_path: Path) -> AuditService:
    return service_for(database, tmp_path, KEYRING)


@pytest.fixture
async def chain(service: AuditService) -> list[AuditEvent]:
    return await service.append_many([draft(n) for n in range(1, 11)])


@contextmanager
def attacker(database_url: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE audit_events DISABLE TRIGGER USER")
        try:
            yield conn
        finally:
            conn.execute("ALTER TABLE audit_events ENABLE TRIGGER USER")


def insert(conn: psycopg.Connection[Any], event: AuditEvent) -> None:
    conn.execute(
        f"INSERT INTO audit_events ({COLUMNS}) VALUES ({', '.join(['%s'] * 21)})",
        (
            event.id, event.seq, event.tenant_id, event.at, str(event.actor_type), event.actor_id,
            event.action, event.capability_id, event.target, event.rationale, str(event.approval_state),
            event.input_hash, event.output_hash, event.request_id, event.correlation_id,
            json.dumps(event.metadata), event.prev_hash, event.hash, event.format_version, event.key_id,
            event.mac,
        ),
    )  # fmt: skip


def rewrite(conn: psycopg.Connection[Any], event: AuditEvent) -> None:
    conn.execute(
        "UPDATE audit_events SET rationale = %s, actor_id = %s, prev_hash = %s, hash = %s, format_version = %s,"
        " key_id = %s, mac = %s WHERE id = %s",
        (
            event.rationale, event.actor_id, event.prev_hash, event.hash, event.format_version, event.key_id,
            event.mac, event.id,
        ),
    )  # fmt: skip


async def verdict(service: AuditService) -> VerifyReport:
    (report,) = await service.verify(T)
    return report


def assert_break(report: VerifyReport, kind: BreakKind, seq: int) -> None:
    assert report.problem is not None, "the tampering went unnoticed"
    assert (report.problem.kind, report.problem.seq) == (kind, seq), report.problem


def forged_approval(head: AuditEvent, *, key: MacKey | None = None) -> AuditEvent:
    """The issue's attack: row N+1 "staff-b approved hubitat.switch.set", sealed with the project's own seal."""
    return seal(
        draft(
            99,
            actor_id="staff-b",
            action="capability.proposal.approved",
            approval_state=ApprovalState.APPROVED,
            rationale="approved in the cockpit",
            correlation_id=head.correlation_id,
        ),
        event_id="forged-approval",
        seq=head.seq + 1,
        at=head.at + timedelta(seconds=1),
        prev_hash=head.hash,
        key=key,
    )


async def test_every_new_event_is_keyed_and_names_its_key(
    service: AuditService, chain: list[AuditEvent], database_url: str
) -> None:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT format_version, key_id, mac FROM audit_events ORDER BY seq").fetchall()
    assert len(rows) == 10
    assert all(
        version == FORMAT_KEYED and key_id == "mk-brain" and len(mac) == 64 for version, key_id, mac in rows
    )
    report = await verdict(service)
    assert report.intact
    assert report.macs_checked
    assert (report.keyed, report.unkeyed) == (10, 0)


async def test_a_forged_approval_sealed_with_the_unkeyed_seal_fails_verify_and_is_never_signed(
    service: AuditService, chain: list[AuditEvent], database_url: str
) -> None:
    with attacker(database_url) as conn:
        insert(conn, forged_approval(chain[-1]))
    assert_break(await verdict(service), BreakKind.UNKEYED, 11)
    with pytest.raises(Conflict, match="seq 11"):
        await service.checkpoint(T)
    assert await service.all_checkpoints(T) == []


async def test_a_forged_approval_with_a_made_up_key_fails_verify_and_is_never_signed(
    service: AuditService, chain: list[AuditEvent], database_url: str
) -> None:
    await service.checkpoint(T)  # the forged row lands after the newest checkpoint
    with attacker(database_url) as conn:
        insert(conn, forged_approval(chain[-1], key=ATTACKER_KEY))
    assert_break(await verdict(service), BreakKind.INSERTED, 11)
    with pytest.raises(Conflict, match="seq 11"):
        await service.checkpoint(T)
    assert [c.seq for c in await service.all_checkpoints(T)] == [10]


async def test_a_row_altered_and_resealed_without_the_key_is_modified_at_that_row(
    service: AuditService, chain: list[AuditEvent], database_url: str
) -> None:
    altered = replace(chain[4], actor_id="staff-b")
    altered = replace(altered, hash=event_hash(altered))  # the MAC is left as it was: no key to renew it
    with attacker(database_url) as conn:
        conn.execute("ALTER TABLE audit_events DROP CONSTRAINT uq_audit_events_tenant_id_prev_hash")
        rewrite(conn, altered)
    assert_break(await verdict(service), BreakKind.MODIFIED, 5)


async def test_a_tail_rechained_with_fresh_hashes_and_made_up_macs_is_caught_at_its_first_row(
    service: AuditService, chain: list[AuditEvent], database_url: str
) -> None:
    # Rows 6..10 rewritten and consistently re-chained (every hash and link right) with the attacker's key.
    prev = chain[4].hash
    with attacker(database_url) as conn:
        conn.execute("ALTER TABLE audit_events DROP CONSTRAINT uq_audit_events_tenant_id_prev_hash")
        for original in chain[5:]:
            forged = seal(
                draft(original.seq, rationale="rewritten"),
                event_id=original.id,
                seq=original.seq,
                at=original.at,
                prev_hash=prev,
                key=ATTACKER_KEY,
            )
            rewrite(conn, replace(forged, actor_id=original.actor_id))
            prev = forged.hash
    assert_break(await verdict(service), BreakKind.MODIFIED, 6)


async def test_a_keyed_tail_downgraded_to_unkeyed_rows_is_caught(
    service: AuditService, chain: list[AuditEvent], database_url: str
) -> None:
    # Rows 4..10 re-sealed as unkeyed (format 1) events with the project's seal: hashes and links right.
    prev = chain[2].hash
    with attacker(database_url) as conn:
        conn.execute("ALTER TABLE audit_events DROP CONSTRAINT uq_audit_events_tenant_id_prev_hash")
        for original in chain[3:]:
            forged = seal(
                draft(original.seq), event_id=original.id, seq=original.seq, at=original.at, prev_hash=prev
            )
            rewrite(conn, forged)
            prev = forged.hash
    assert_break(await verdict(service), BreakKind.UNKEYED, 4)


async def test_a_whole_chain_downgraded_after_its_checkpoint_is_caught(
    service: AuditService, chain: list[AuditEvent], database_url: str
) -> None:
    await service.checkpoint(T)  # covers 1..10
    more = await service.append_many([draft(n) for n in range(11, 16)])
    prev = chain[-1].hash
    with attacker(database_url) as conn:
        conn.execute("ALTER TABLE audit_events DROP CONSTRAINT uq_audit_events_tenant_id_prev_hash")
        for original in more:
            forged = seal(
                draft(original.seq), event_id=original.id, seq=original.seq, at=original.at, prev_hash=prev
            )
            rewrite(conn, forged)
            prev = forged.hash
    assert_break(await verdict(service), BreakKind.UNKEYED, 11)


async def test_deleting_and_reordering_keyed_rows_are_named(
    service: AuditService, chain: list[AuditEvent], database_url: str
) -> None:
    with attacker(database_url) as conn:
        conn.execute("DELETE FROM audit_events WHERE tenant_id = %s AND seq = 3", (T,))
    assert_break(await verdict(service), BreakKind.MISSING, 3)


async def test_rows_written_before_the_upgrade_verify_by_hash_and_are_reported_unkeyed(
    database: Database, tmp_path: Path, database_url: str
) -> None:
    old_brain = service_for(database, tmp_path, None)  # the code before the upgrade: unkeyed events
    await old_brain.append_many([draft(n) for n in range(1, 6)])
    upgraded = service_for(database, tmp_path, KEYRING)

    # Not sealed yet: an unkeyed tail that nothing a database writer cannot forge vouches for.
    assert_break(await verdict(upgraded), BreakKind.UNKEYED, 1)
    sealed = await upgraded.seal_unkeyed_chains()  # what bootstrap does when it creates the keyring
    assert [c.seq for c in sealed] == [5]
    report = await verdict(upgraded)
    assert report.intact
    assert (report.unkeyed, report.keyed, report.unkeyed_sealed_by) == (5, 0, None)

    await upgraded.append_many([draft(n) for n in range(6, 9)])
    report = await verdict(upgraded)
    assert report.intact
    assert (report.unkeyed, report.keyed, report.unkeyed_sealed_by) == (5, 3, 6)
    assert await upgraded.seal_unkeyed_chains() == []  # the head is keyed: nothing to seal again

    # An old brain still running after the upgrade writes an unkeyed row: refused by verify.
    await old_brain.append(draft(9))
    assert_break(await verdict(upgraded), BreakKind.UNKEYED, 9)


async def test_an_unkeyed_row_forged_after_the_upgrade_checkpoint_is_caught(
    database: Database, tmp_path: Path, database_url: str
) -> None:
    await service_for(database, tmp_path, None).append_many([draft(n) for n in range(1, 6)])
    upgraded = service_for(database, tmp_path, KEYRING)
    await upgraded.seal_unkeyed_chains()
    head = await upgraded.events.head(T)
    assert head is not None
    with attacker(database_url) as conn:
        insert(conn, forged_approval(head))
    assert_break(await verdict(upgraded), BreakKind.UNKEYED, 6)
    with pytest.raises(Conflict):
        await upgraded.checkpoint(T)


async def test_after_a_key_rotation_old_events_verify_with_their_key_and_new_ones_with_the_new(
    database: Database, tmp_path: Path
) -> None:
    path = tmp_path / "keys" / "audit-mac.json"
    first, created = ensure_mac_keyring(path)
    assert created
    await service_for(database, tmp_path, first).append_many([draft(n) for n in range(1, 4)])
    new_key = rotate_mac_key(path)
    rotated = load_mac_keyring(path)
    assert rotated is not None
    assert rotated.current == new_key
    assert set(rotated.key_ids) == {first.current.key_id, new_key.key_id}
    service = service_for(database, tmp_path, rotated)
    appended = await service.append_many([draft(n) for n in range(4, 6)])
    assert {e.key_id for e in appended} == {new_key.key_id}
    report = await verdict(service)
    assert report.intact
    assert report.keyed == 5

    # A keyring that lost the old key cannot vouch for the old events.
    forgetful = Keyring(current=new_key)
    assert_break(await verdict(service_for(database, tmp_path, forgetful)), BreakKind.MODIFIED, 1)


def test_the_keyring_file_is_private_created_once_and_refused_when_others_can_read_it(tmp_path: Path) -> None:
    path = tmp_path / "home" / "keys" / "audit-mac.json"
    keyring, created = ensure_mac_keyring(path)
    again, created_again = ensure_mac_keyring(path)
    assert created
    assert not created_again
    assert again == keyring
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert keyring.current.secret.hex() not in repr(keyring)
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_mac_keyring(path)
    os.chmod(path, 0o600)
    path.write_text('{"format": "studio-brain.mac-keys/1", "current": "x", "keys": []}')
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError, match="not a Studio Brain keyring") as refused:
        load_mac_keyring(path)
    assert "keys" not in str(refused.value).split("(")[-1]


# --- the command line --------------------------------------------------------------------------


def cli(*args: str, home: Path, url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_BRAIN_")}
    env |= {"STUDIO_BRAIN_HOME": str(home), "STUDIO_BRAIN_LOG_LEVEL": "warning"}
    if url is not None:
        env["STUDIO_BRAIN_DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "studio_brain", "audit", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


async def test_the_cli_names_a_forged_approval_and_refuses_to_checkpoint_it(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    keyring, _ = ensure_mac_keyring(tmp_path / "keys" / "audit-mac.json")  # the brain's own key file
    events = await PostgresEventStore(database, UUID7Factory(), keyring).append_many(
        [draft(n) for n in range(1, 11)]
    )
    assert cli("verify", home=tmp_path, url=database_url).returncode == 0
    with attacker(database_url) as conn:
        insert(conn, forged_approval(events[-1]))
    verified = cli("verify", "--json", home=tmp_path, url=database_url)
    assert verified.returncode == 1, verified.stderr
    assert json.loads(verified.stdout)["tenants"][0]["break"] | {"detail": None} == {
        "seq": 11,
        "kind": "unkeyed",
        "detail": None,
    }
    signed = cli("checkpoint", home=tmp_path, url=database_url)
    assert signed.returncode == 1
    assert "not signing a broken chain" in signed.stderr + signed.stdout


async def test_verify_file_checks_the_outside_checkpoint_file_and_the_macs(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    keyring, _ = ensure_mac_keyring(tmp_path / "keys" / "audit-mac.json")
    await PostgresEventStore(database, UUID7Factory(), keyring).append_many([draft(n) for n in range(1, 21)])
    assert cli("checkpoint", home=tmp_path, url=database_url).returncode == 0
    out = tmp_path / "export.jsonl"
    assert cli("export", "--out", str(out), home=tmp_path, url=database_url).returncode == 0
    manifest_file = out.with_name(out.name + ".manifest.json")

    # The export's last 5 rows cut, and its manifest made to agree (row count, last, no checkpoints).
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:15]))
    manifest = json.loads(manifest_file.read_text())
    last = json.loads(lines[14])
    manifest |= {"rowCount": 15, "last": {"seq": 15, "hash": last["hash"]}, "checkpoints": []}
    manifest_file.write_text(json.dumps(manifest))
    cut = cli("verify", "--file", str(out), "--json", home=tmp_path)
    assert cut.returncode == 1, cut.stdout
    assert json.loads(cut.stdout)["tenants"][0]["break"]["kind"] == "truncated_after_checkpoint"

    # A row of the export altered and re-hashed: its MAC, checked with this installation's keyring, fails.
    out.write_text("".join(lines))
    manifest_file.write_text(json.dumps(manifest | {"rowCount": 20, "last": json.loads(lines[19])}))
    row = json.loads(lines[4])
    row["rationale"] = "approved by the owner"
    event = event_from_json(row)
    row["hash"] = event_hash(event)
    lines[4] = json.dumps(row) + "\n"
    out.write_text("".join(lines))
    altered = cli("verify", "--file", str(out), "--json", home=tmp_path)
    assert altered.returncode == 1, altered.stdout
    assert json.loads(altered.stdout)["tenants"][0]["break"]["seq"] == 5
