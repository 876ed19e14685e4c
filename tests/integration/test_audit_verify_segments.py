"""`audit verify` in segments, one worker process each, against a real PostgreSQL: the same verdict as one
pass, a break at a seam still named exactly, a worker that fails costs only time, no secret leaves in a
worker's arguments. (Every attack of test_audit_tamper.py also runs verified in segments.)"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from structlog.testing import capture_logs

from studio_brain.adapters.audit_files import CheckpointFile
from studio_brain.adapters.clock import UUID7Factory
from studio_brain.adapters.keys import Ed25519Signer, Ed25519Verifier
from studio_brain.adapters.postgres.database import Database
from studio_brain.adapters.postgres.event_store import PostgresCheckpointStore, PostgresEventStore
from studio_brain.adapters.postgres.segment_verifier import (
    ProcessSegmentVerifier,
    SegmentJob,
    verify_workers,
)
from studio_brain.domain.audit import ActorType, ApprovalState, AuditDraft, BreakKind
from studio_brain.domain.audit.segments import Segment
from studio_brain.domain.records import Keyring, MacKey
from studio_brain.services.audit import AuditService
from tests.fakes import FakeClock

pytestmark = pytest.mark.postgres

T = "tenant-a"
KEYRING = Keyring(current=MacKey(key_id="mk-seg", secret=bytes(range(40, 72))))
SIGNER = Ed25519Signer(Ed25519PrivateKey.generate())


def draft(n: int) -> AuditDraft:
    return AuditDraft(
        tenant_id=T,
        actor_type=ActorType.AGENT,
        actor_id="agent-ops",
        action="connector.hubitat.read",
        target="hubitat",
        rationale=f"read {n}",
        approval_state=ApprovalState.NOT_APPLICABLE,
        input_hash=f"{n:064x}",
        request_id=f"req-{n}",
        correlation_id=f"corr-{n}",
        metadata={"n": n, "kiln": {"id": n % 3, "temperature": 1000.5 + n}},
    )


def service(database: Database, tmp_path: Path, segments: ProcessSegmentVerifier | None) -> AuditService:
    return AuditService(
        events=PostgresEventStore(database, UUID7Factory(), KEYRING),
        checkpoint_stores=[PostgresCheckpointStore(database), CheckpointFile(tmp_path / "checkpoints.jsonl")],
        signer=SIGNER,
        verifier=Ed25519Verifier(),
        clock=FakeClock(),
        keyring=KEYRING,
        segments=segments,
    )


@pytest.fixture
async def chain(database: Database, tmp_path: Path) -> None:
    """Thirty keyed events, checkpointed at 30 (four segments: seams after 7, 15 and 22)."""
    one_pass = service(database, tmp_path, None)
    await one_pass.append_many([draft(n) for n in range(1, 31)])
    await one_pass.checkpoint(T)


def in_segments(database: Database, tmp_path: Path) -> AuditService:
    return service(database, tmp_path, ProcessSegmentVerifier(database, workers=4, min_events=2))


async def test_a_chain_verified_in_segments_gets_the_verdict_of_one_pass(
    database: Database, tmp_path: Path, chain: None
) -> None:
    (one,) = await service(database, tmp_path, None).verify(T)
    (split,) = await in_segments(database, tmp_path).verify(T)
    assert split.intact
    assert split.segments == 4
    assert split.to_json() | {"segments": 1} == one.to_json()
    assert (split.checked, split.keyed, split.checkpoints_trusted) == (30, 30, 1)


async def test_progress_is_reported_across_segments_up_to_the_whole_chain(
    database: Database, tmp_path: Path, chain: None
) -> None:
    seen: list[tuple[str, int]] = []
    await in_segments(database, tmp_path).verify(T, progress=lambda t, n: seen.append((t, n)))
    assert seen[-1] == (T, 30)


async def test_deleting_the_row_a_segment_is_anchored_on_is_missing_at_that_row(
    database: Database, database_url: str, tmp_path: Path, chain: None
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE audit_events DISABLE TRIGGER USER")
        conn.execute("DELETE FROM audit_events WHERE tenant_id = %s AND seq = 7", (T,))
        conn.execute("ALTER TABLE audit_events ENABLE TRIGGER USER")
    (report,) = await in_segments(database, tmp_path).verify(T)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq, report.segments) == (BreakKind.MISSING, 7, 1)


async def test_swapping_the_rows_either_side_of_a_seam_is_reordered(
    database: Database, database_url: str, tmp_path: Path, chain: None
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE audit_events DISABLE TRIGGER USER")
        for old, new in ((15, 999), (16, 15), (999, 16)):
            conn.execute("UPDATE audit_events SET seq = %s WHERE tenant_id = %s AND seq = %s", (new, T, old))
        conn.execute("ALTER TABLE audit_events ENABLE TRIGGER USER")
    (report,) = await in_segments(database, tmp_path).verify(T)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == (BreakKind.REORDERED, 15)


async def test_a_worker_that_cannot_reach_the_database_costs_only_a_second_pass(
    database: Database, tmp_path: Path, chain: None
) -> None:
    unreachable = Database("postgresql://postgres@127.0.0.1:9/nowhere")  # never opened: only its URL
    segments = ProcessSegmentVerifier(unreachable, workers=2, min_events=2)
    with capture_logs() as logs:
        (report,) = await service(database, tmp_path, segments).verify(T)
    assert report.intact
    assert (report.checked, report.segments) == (30, 1)
    failures = [e for e in logs if e["event"] == "audit.verify.worker_failed"]
    assert failures
    assert {e["error"] for e in failures} == {"OperationalError"}
    assert [e["event"] for e in logs if e["event"] == "audit.verify.one_pass"] == ["audit.verify.one_pass"]


def test_a_jobs_repr_shows_neither_the_database_password_nor_the_mac_keys() -> None:
    secret = bytes(range(100, 132))
    job = SegmentJob(
        url="postgresql://app:hunter2-password@db.example/brain",
        options=None,
        tenant_id=T,
        segment=Segment(first_seq=1, last_seq=None),
        checkpoints=(),
        keys=(("mk-1", secret),),
    )
    shown = repr(job)
    assert "hunter2" not in shown
    assert secret.hex() not in shown
    assert repr(secret) not in shown


def test_workers_default_to_one_per_core_at_most_four() -> None:
    assert verify_workers(3) == 3
    assert 1 <= verify_workers(0) <= 4
