"""Appends from many processes at once stay one gap-free chain, and a writer killed mid-transaction
leaves neither a half-written event nor a broken chain (nor a lock that blocks the next writer)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from studio_brain.adapters.audit_files import CheckpointFile
from studio_brain.adapters.clock import UUID7Factory
from studio_brain.adapters.keys import Ed25519Signer, Ed25519Verifier
from studio_brain.adapters.postgres.database import Database
from studio_brain.adapters.postgres.event_store import PostgresCheckpointStore, PostgresEventStore
from studio_brain.domain.audit import ActorType, ApprovalState, AuditDraft, AuditQuery
from studio_brain.domain.hashing import sha256_hex
from studio_brain.services.audit import AuditService
from tests.fakes import FakeClock

pytestmark = pytest.mark.postgres

T = "tenant-a"

#: one writer process: ``python -c WRITER url writer_number count``
WRITER = """
import asyncio, sys
from studio_brain.adapters.clock import UUID7Factory
from studio_brain.adapters.postgres.database import Database
from studio_brain.adapters.postgres.event_store import PostgresEventStore
from studio_brain.domain.audit import ActorType, ApprovalState, AuditDraft, AuditQuery
from studio_brain.domain.hashing import sha256_hex

async def main(url, writer, count):
    async with Database(url, max_size=1) as db:
        store = PostgresEventStore(db, UUID7Factory())
        for n in range(count):
            await store.append(AuditDraft(
                tenant_id="tenant-a", actor_type=ActorType.AGENT, actor_id=f"writer-{writer}",
                action="test.concurrent.append", target="local", rationale=f"writer {writer} event {n}",
                approval_state=ApprovalState.EXEMPT, input_hash=sha256_hex([writer, n]),
                request_id=f"{writer}-{n}", correlation_id=f"writer-{writer}", metadata={"n": n}))

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"""

#: appends inside a transaction, says so, then waits to be killed before committing
STALLED_WRITER = """
import asyncio, sys
import psycopg
from studio_brain.adapters.clock import UUID7Factory
from studio_brain.adapters.postgres.database import Database
from studio_brain.adapters.postgres.event_store import PostgresEventStore
from studio_brain.domain.audit import ActorType, ApprovalState, AuditDraft, AuditQuery
from studio_brain.domain.hashing import sha256_hex

async def main(url):
    store = PostgresEventStore(None, UUID7Factory())
    conn = await psycopg.AsyncConnection.connect(url)
    await store.append_many_on(conn, [AuditDraft(
        tenant_id="tenant-a", actor_type=ActorType.SYSTEM, actor_id="doomed", action="test.crash.append",
        target="local", rationale=f"never committed {n}", approval_state=ApprovalState.EXEMPT,
        input_hash=sha256_hex(n), request_id=f"doomed-{n}", correlation_id="doomed") for n in range(50)])
    print("appended, not committed", flush=True)
    await asyncio.sleep(120)

asyncio.run(main(sys.argv[1]))
"""


def service_for(database: Database, tmp_path: Path) -> AuditService:
    return AuditService(
        events=PostgresEventStore(database, UUID7Factory()),
        checkpoint_stores=[PostgresCheckpointStore(database), CheckpointFile(tmp_path / "checkpoints.jsonl")],
        signer=Ed25519Signer(Ed25519PrivateKey.generate()),
        verifier=Ed25519Verifier(),
        clock=FakeClock(),
    )


def draft(n: int) -> AuditDraft:
    return AuditDraft(
        tenant_id=T,
        actor_type=ActorType.SYSTEM,
        actor_id="survivor",
        action="test.crash.survivor",
        target="local",
        rationale=f"committed {n}",
        approval_state=ApprovalState.EXEMPT,
        input_hash=sha256_hex(n),
        request_id=f"ok-{n}",
        correlation_id="ok",
    )


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


@pytest.mark.slow
async def test_eight_processes_appending_500_events_each_make_one_gap_free_chain(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, database_url, str(w), "500"], stderr=subprocess.PIPE, env=_env()
        )
        for w in range(8)
    ]
    errors = [(await asyncio.to_thread(p.communicate, timeout=240))[1].decode() for p in writers]
    assert [p.returncode for p in writers] == [0] * 8, errors

    with psycopg.connect(database_url) as conn:
        count, first, last, parents = conn.execute(
            "SELECT count(*), min(seq), max(seq), count(DISTINCT prev_hash) FROM audit_events WHERE tenant_id = %s",
            (T,),
        ).fetchone() or (0, 0, 0, 0)
    assert (count, first, last) == (4000, 1, 4000)  # gap-free
    assert parents == 4000  # zero forks: no event has two successors
    report = (await service_for(database, tmp_path).verify(T))[0]
    assert report.intact, report.problem
    assert report.checked == 4000


async def test_a_writer_killed_mid_transaction_leaves_no_trace_and_no_broken_chain(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    service = service_for(database, tmp_path)
    before = await service.append_many([draft(n) for n in range(3)])
    with subprocess.Popen(
        [sys.executable, "-c", STALLED_WRITER, database_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=_env(),
    ) as doomed:
        try:
            assert doomed.stdout is not None
            line = await asyncio.to_thread(doomed.stdout.readline)
            assert line.strip() == b"appended, not committed"
            # While the doomed writer holds the chain lock, a new append waits rather than forking.
            waiting = asyncio.create_task(service.append(draft(3)))
            await asyncio.sleep(0.5)
            assert not waiting.done()
            os.kill(doomed.pid, signal.SIGKILL)
            after = await asyncio.wait_for(waiting, timeout=30)
        finally:
            doomed.kill()
            await asyncio.to_thread(doomed.wait)

    assert (after.seq, after.prev_hash) == (4, before[-1].hash)
    page = await service.events.query(T, AuditQuery(limit=100))
    assert [e.actor_id for e in page.events] == ["survivor"] * 4  # nothing of the doomed batch
    report = (await service.verify(T))[0]
    assert report.intact, report.problem
    assert report.checked == 4
