"""Tamper detection against a real PostgreSQL: an attacker with superuser rights edits the log behind the
application's back (disabling the append-only triggers), and `verify` names the first break and its kind."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from studio_brain.adapters.audit_files import CheckpointFile
from studio_brain.adapters.clock import UUID7Factory
from studio_brain.adapters.keys import Ed25519Signer, Ed25519Verifier
from studio_brain.adapters.postgres.database import Database
from studio_brain.adapters.postgres.event_store import COLUMNS, PostgresCheckpointStore, PostgresEventStore
from studio_brain.adapters.postgres.segment_verifier import ProcessSegmentVerifier
from studio_brain.domain.audit import (
    ActorType,
    ApprovalState,
    AuditDraft,
    AuditEvent,
    BreakKind,
    checkpoint_message,
    event_hash,
)
from studio_brain.domain.errors import Conflict
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.records import Keyring, MacKey
from studio_brain.services.audit import AuditService, VerifyReport
from tests.fakes import FakeClock

pytestmark = pytest.mark.postgres

T = "tenant-a"


def draft(n: int, tenant: str = T) -> AuditDraft:
    return AuditDraft(
        tenant_id=tenant,
        actor_type=ActorType.STAFF,
        actor_id=f"staff-{n % 3}",
        action="capability.proposal.approved",
        target="hubitat",
        rationale=f"approved proposal {n}",
        approval_state=ApprovalState.APPROVED,
        input_hash=sha256_hex({"proposal": n}),
        output_hash=sha256_hex({"result": n}) if n % 2 else None,
        request_id=f"req-{n}",
        correlation_id=f"corr-{n // 5}",
        capability_id="hubitat.switch",
        metadata={"n": n, "device": {"id": 21, "label": "Kiln room fan"}},
    )


KEYRING = Keyring(current=MacKey(key_id="mk-test", secret=bytes(range(32))))


@pytest.fixture(params=["unkeyed", "keyed", "keyed, in segments"])
def mode(request: pytest.FixtureRequest) -> str:
    """Every attack runs on a chain of unkeyed (format 1) events, on a keyed (format 2) chain, and on a
    keyed chain verified in three segments by worker processes (their seams at seq 7 and 14)."""
    return str(request.param)


@pytest.fixture
def keyed(mode: str) -> bool:
    return mode != "unkeyed"


@pytest.fixture
def service(database: Database, tmp_path: Path, keyed: bool, mode: str) -> AuditService:
    keyring = KEYRING if keyed else None
    segments = ProcessSegmentVerifier(database, workers=3, min_events=2) if "segments" in mode else None
    return AuditService(
        events=PostgresEventStore(database, UUID7Factory(), keyring),
        checkpoint_stores=[PostgresCheckpointStore(database), CheckpointFile(tmp_path / "checkpoints.jsonl")],
        signer=Ed25519Signer(Ed25519PrivateKey.generate()),
        verifier=Ed25519Verifier(),
        clock=FakeClock(),
        keyring=keyring,
        segments=segments,
    )


@pytest.fixture
async def chain(service: AuditService) -> list[AuditEvent]:
    """Twenty events of tenant-a (and three of tenant-b, which must stay intact throughout)."""
    events = [await service.append(draft(n)) for n in range(1, 21)]
    await service.append_many([draft(n, tenant="tenant-b") for n in range(3)])
    return events


@contextmanager
def attacker(database_url: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """A superuser session with the append-only triggers switched off, as a real attacker could."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE audit_events DISABLE TRIGGER USER")
        conn.execute("ALTER TABLE audit_checkpoints DISABLE TRIGGER USER")
        try:
            yield conn
        finally:
            conn.execute("ALTER TABLE audit_events ENABLE TRIGGER USER")
            conn.execute("ALTER TABLE audit_checkpoints ENABLE TRIGGER USER")


def move(conn: psycopg.Connection[Any], from_seq: int, to_seq: int) -> None:
    conn.execute("UPDATE audit_events SET seq = %s WHERE tenant_id = %s AND seq = %s", (to_seq, T, from_seq))


async def verdict(service: AuditService) -> VerifyReport:
    reports = {r.tenant_id: r for r in await service.verify()}
    assert reports["tenant-b"].intact, reports["tenant-b"]
    return reports[T]


def assert_break(report: VerifyReport, kind: BreakKind, seq: int) -> None:
    assert report.problem is not None, "the tampering went unnoticed"
    assert (report.problem.kind, report.problem.seq) == (kind, seq), report.problem


async def test_an_untouched_chain_verifies_with_its_checkpoint(
    service: AuditService, chain: list[AuditEvent], mode: str
) -> None:
    await service.checkpoint(T)
    report = await verdict(service)
    assert report.intact
    assert (report.checked, report.last_seq, report.last_hash) == (20, 20, chain[-1].hash)
    assert report.checkpoints_trusted == 1
    # in segments, the workers' verdicts joined: no second pass was needed
    assert report.segments == (3 if "segments" in mode else 1)


async def test_changing_one_field_of_one_row_is_detected_at_that_row(
    service: AuditService, chain: list[AuditEvent], database_url: str
) -> None:
    with attacker(database_url) as conn:
        conn.execute(
            "UPDATE audit_events SET rationale = 'nothing to see' WHERE tenant_id = %s AND seq = 7", (T,)
        )
    assert_break(await verdict(service), BreakKind.MODIFIED, 7)


async def test_changing_metadata_is_detected_even_though_jsonb_reorders_keys(
    service: AuditService, chain: list[AuditEvent], database_url: str
) -> None:
    with attacker(database_url) as conn:
        conn.execute(
            "UPDATE audit_events SET metadata = jsonb_set(metadata, '{device,id}', '22') WHERE tenant_id = %s"
            " AND seq = 11",
            (T,),
        )
    assert_break(await verdict(service), BreakKind.MODIFIED, 11)


async def test_a_row_rewritten_with_a_freshly_computed_hash_is_detected_at_that_row(
    service: AuditService, chain: list[AuditEvent], database_url: str
) -> None:
    forged = replace(chain[8], rationale="approved by the owner")
    with attacker(database_url) as conn:
        conn.execute(
            "UPDATE audit_events SET rationale = %s, hash = %s WHERE tenant_id = %s AND seq = 9",
            (forged.rationale, event_hash(forged), T),
        )
    assert_break(await verdict(service), BreakKind.MODIFIED, 9)


async def test_deleting_a_middle_row_is_detected_as_missing(
    service: AuditService, chain: list[AuditEvent], database_url: str
) -> None:
    with attacker(database_url) as conn:
        conn.execute("DELETE FROM audit_events WHERE tenant_id = %s AND seq = 10", (T,))
    assert_break(await verdict(service), BreakKind.MISSING, 10)


async def test_deleting_a_row_and_renumbering_the_rest_is_still_missing(
    service: AuditService, chain: list[AuditEvent], database_url: str
) -> None:
    with attacker(database_url) as conn:
        conn.execute("DELETE FROM audit_events WHERE tenant_id = %s AND seq = 10", (T,))
        for seq in range(11, 21):
            move(conn, seq, seq - 1)
    assert_break(await verdict(service), BreakKind.MISSING, 10)


async def test_inserting_a_forged_row_is_detected_as_inserted(
    service: AuditService, chain: list[AuditEvent], database_url: str
) -> None:
    # The attacker makes room at seq 13, drops the fork guard, and forges a row that links to row 12
    # with a correctly computed hash — everything a thorough attacker can do without the later hashes.
    forged = replace(chain[12], id="forged", rationale="refund approved", prev_hash=chain[11].hash)
    forged = replace(forged, hash=event_hash(forged))
    with attacker(database_url) as conn:
        conn.execute("ALTER TABLE audit_events DROP CONSTRAINT uq_audit_events_tenant_id_prev_hash")
        for seq in range(20, 12, -1):
            move(conn, seq, seq + 1)
        conn.execute(
            f"INSERT INTO audit_events ({COLUMNS}) SELECT %s, 999, tenant_id, at, actor_type, actor_id, action, capability_id,"
            " target, %s, approval_state, input_hash, output_hash, request_id, correlation_id, metadata,"
            " prev_hash, %s, format_version, key_id, mac FROM audit_events WHERE tenant_id = %s AND seq = 14",
            (forged.id, forged.rationale, forged.hash, T),
        )
        conn.execute("UPDATE audit_events SET seq = 13 WHERE id = 'forged'")
    assert_break(await verdict(service), BreakKind.INSERTED, 13)


async def test_inserting_a_row_that_does_not_link_is_detected_as_inserted(
    service: AuditService, chain: list[AuditEvent], database_url: str
) -> None:
    forged = replace(chain[4], id="forged", rationale="backdated", prev_hash=sha256_hex("anything"))
    forged = replace(forged, hash=event_hash(forged))
    with attacker(database_url) as conn:
        for seq in range(20, 4, -1):
            move(conn, seq, seq + 1)
        conn.execute(
            f"INSERT INTO audit_events ({COLUMNS}) SELECT %s, 5, tenant_id, at, actor_type, actor_id, action, capability_id,"
            " target, %s, approval_state, input_hash, output_hash, request_id, correlation_id, metadata,"
            " %s, %s, format_version, key_id, mac FROM audit_events WHERE tenant_id = %s AND seq = 6",
            (forged.id, forged.rationale, forged.prev_hash, forged.hash, T),
        )
    assert_break(await verdict(service), BreakKind.INSERTED, 5)


async def test_swapping_two_adjacent_rows_is_detected_as_reordered(
    service: AuditService, chain: list[AuditEvent], database_url: str
) -> None:
    with attacker(database_url) as conn:
        move(conn, 5, 999)
        move(conn, 6, 5)
        move(conn, 999, 6)
    assert_break(await verdict(service), BreakKind.REORDERED, 5)


async def test_swapping_two_distant_rows_is_detected_as_reordered(
    service: AuditService, chain: list[AuditEvent], database_url: str
) -> None:
    with attacker(database_url) as conn:
        move(conn, 4, 999)
        move(conn, 15, 4)
        move(conn, 999, 15)
    assert_break(await verdict(service), BreakKind.REORDERED, 4)


async def test_deleting_the_newest_rows_after_a_checkpoint_is_detected_as_truncation(
    service: AuditService, chain: list[AuditEvent], database_url: str
) -> None:
    await service.checkpoint(T)
    with attacker(database_url) as conn:
        conn.execute("DELETE FROM audit_events WHERE tenant_id = %s AND seq >= 18", (T,))
    assert_break(await verdict(service), BreakKind.TRUNCATED_AFTER_CHECKPOINT, 18)


async def test_truncation_is_caught_by_the_checkpoint_file_when_the_database_copy_is_deleted_too(
    service: AuditService, chain: list[AuditEvent], database_url: str
) -> None:
    await service.checkpoint(T)
    with attacker(database_url) as conn:
        conn.execute("DELETE FROM audit_events WHERE tenant_id = %s AND seq >= 16", (T,))
        conn.execute("DELETE FROM audit_checkpoints")
    assert_break(await verdict(service), BreakKind.TRUNCATED_AFTER_CHECKPOINT, 16)


async def test_wiping_a_whole_checkpointed_chain_is_detected(
    service: AuditService, chain: list[AuditEvent], database_url: str
) -> None:
    await service.checkpoint(T)
    with attacker(database_url) as conn:
        conn.execute("DELETE FROM audit_events WHERE tenant_id = %s", (T,))
    assert_break(await verdict(service), BreakKind.TRUNCATED_AFTER_CHECKPOINT, 1)


async def test_a_corrupted_checkpoint_signature_is_detected(
    service: AuditService, chain: list[AuditEvent], database_url: str
) -> None:
    checkpoint = await service.checkpoint(T)
    assert checkpoint is not None
    flipped = ("0" if checkpoint.signature[0] != "0" else "1") + checkpoint.signature[1:]
    with attacker(database_url) as conn:
        conn.execute("UPDATE audit_checkpoints SET signature = %s WHERE tenant_id = %s", (flipped, T))
    assert_break(await verdict(service), BreakKind.BAD_SIGNATURE, 20)


async def test_a_checkpoint_signed_with_another_key_is_not_trusted(
    service: AuditService, chain: list[AuditEvent], database_url: str
) -> None:
    # An attacker who rewrote the chain cannot bless it with a key of their own.
    other = Ed25519Signer(Ed25519PrivateKey.generate())
    at = FakeClock().now()
    signature = other.sign(checkpoint_message(tenant_id=T, seq=20, hash=chain[-1].hash, at=at))
    with attacker(database_url) as conn:
        conn.execute(
            "INSERT INTO audit_checkpoints (tenant_id, seq, hash, at, signature, public_key)"
            " VALUES (%s, 20, %s, %s, %s, %s)",
            (T, chain[-1].hash, at, signature, other.public_key),
        )
    assert_break(await verdict(service), BreakKind.BAD_SIGNATURE, 20)


async def test_a_chain_rewritten_consistently_is_caught_by_the_checkpoint(
    service: AuditService, chain: list[AuditEvent], database_url: str, keyed: bool
) -> None:
    await service.checkpoint(T)
    # Rewrite row 19 and re-seal 19 and 20 so every hash and link is consistent again.
    nineteen = replace(chain[18], rationale="rewritten")
    nineteen = replace(nineteen, hash=event_hash(nineteen))
    twenty = replace(chain[19], prev_hash=nineteen.hash)
    twenty = replace(twenty, hash=event_hash(twenty))
    with attacker(database_url) as conn:
        conn.execute("ALTER TABLE audit_events DROP CONSTRAINT uq_audit_events_tenant_id_prev_hash")
        for event in (nineteen, twenty):
            conn.execute(
                "UPDATE audit_events SET rationale = %s, prev_hash = %s, hash = %s WHERE id = %s",
                (event.rationale, event.prev_hash, event.hash, event.id),
            )
    # Unkeyed, only the checkpoint at 20 notices; keyed, row 19's MAC no longer verifies.
    assert_break(await verdict(service), BreakKind.MODIFIED, 19 if keyed else 20)


async def test_a_broken_chain_is_never_signed(
    service: AuditService, chain: list[AuditEvent], database_url: str
) -> None:
    with attacker(database_url) as conn:
        conn.execute("UPDATE audit_events SET rationale = 'x' WHERE tenant_id = %s AND seq = 3", (T,))
    with pytest.raises(Conflict, match="seq 3"):
        await service.checkpoint(T)
    assert await service.all_checkpoints(T) == []
