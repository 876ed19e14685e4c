"""Benchmark: `audit verify` over 1,000,000 events on local PostgreSQL (issue 3) — speed and memory.

Loads pre-sealed events with COPY into a throw-away database (sealed in Python exactly as the store seals
them), signs a checkpoint at the head, then times AuditService.verify: a server-side cursor streams the
chain, every hash and link is recomputed, the checkpoint checked. Reports events/s, resident memory while
verifying (constant memory: the peak does not grow with the chain), and, as the physical reference on the
same machine, raw SHA-256 throughput over the same canonical bytes, and the ratio.

    .venv/bin/python bench/audit_verify.py [--events 1000000] [--format 2] [--server URL] [--json]

``--format 2`` (default, issue 12): keyed events, every MAC checked with the keyring as ``audit verify``
does; ``--format 1``: unkeyed events as written before the keyed chain (the issue-3 figures).

Target: >= 50,000 events/s (1,000,000 events in <= 20 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from psycopg import sql
from psycopg.types.json import Jsonb

from studio_brain.adapters.audit_files import CheckpointFile
from studio_brain.adapters.clock import SystemClock
from studio_brain.adapters.keys import Ed25519Signer, Ed25519Verifier
from studio_brain.adapters.postgres.database import Database, with_database
from studio_brain.adapters.postgres.event_store import COLUMNS, PostgresCheckpointStore, PostgresEventStore
from studio_brain.adapters.postgres.migrate import upgrade_to_head
from studio_brain.adapters.postgres.segment_verifier import ProcessSegmentVerifier
from studio_brain.domain.audit import (
    GENESIS_HASH,
    ActorType,
    ApprovalState,
    AuditCheckpoint,
    AuditEvent,
    canonical_event_bytes,
    checkpoint_message,
    event_hash,
)
from studio_brain.domain.audit.mac import event_mac
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.records import Keyring, MacKey
from studio_brain.services.audit import AuditService

TENANT = "bench-tenant"
ACTIONS = (
    "capability.proposal.created",
    "capability.proposal.approved",
    "connector.hubitat.read",
    "swarm.ops.drafted",
)


#: the benchmark's MAC key (a fixed test key; verification checks every MAC with it)
KEYRING = Keyring(current=MacKey(key_id="mk-bench", secret=bytes(range(32))))
FORMAT = {"version": 2}
#: worker processes of the verify (``--workers``; 1: one pass, as before issue 12's second round)
WORKERS = {"count": 2}


def make_event(n: int, prev_hash: str, base: datetime) -> AuditEvent:
    unsealed = AuditEvent(
        id=str(uuid.UUID(int=(0x0192 << 112) | n)),
        seq=n,
        tenant_id=TENANT,
        at=base + timedelta(milliseconds=n),
        actor_type=(ActorType.AGENT, ActorType.STAFF, ActorType.SYSTEM)[n % 3],
        actor_id=f"actor-{n % 17}",
        action=ACTIONS[n % 4],
        capability_id="kiln.schedule" if n % 2 else None,
        target="local",
        rationale=f"benchmark event {n}: a sentence of realistic length explaining the action",
        approval_state=ApprovalState.APPROVED if n % 2 else ApprovalState.NOT_APPLICABLE,
        input_hash=sha256_hex(n),
        output_hash=sha256_hex([n, "out"]) if n % 2 else None,
        request_id=f"req-{n}",
        correlation_id=f"corr-{n // 10}",
        metadata={"n": n, "kiln": f"k{n % 3}", "ok": True},
        prev_hash=prev_hash,
        hash="",
    )
    if FORMAT["version"] == 2:
        unsealed = replace(unsealed, format_version=2, key_id=KEYRING.current.key_id)
        hash_ = event_hash(unsealed)
        return replace(unsealed, hash=hash_, mac=event_mac(KEYRING.current, hash_))
    return replace(unsealed, hash=event_hash(unsealed))


def load(url: str, count: int) -> tuple[AuditEvent, float]:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    prev = GENESIS_HASH
    last: AuditEvent | None = None
    started = time.perf_counter()
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY audit_events ({COLUMNS}) FROM STDIN") as copy:
            for n in range(1, count + 1):
                e = make_event(n, prev, base)
                copy.write_row(
                    (
                        e.id, e.seq, e.tenant_id, e.at, e.actor_type.value, e.actor_id, e.action, e.capability_id,
                        e.target, e.rationale, e.approval_state.value, e.input_hash, e.output_hash, e.request_id,
                        e.correlation_id, Jsonb(e.metadata), e.prev_hash, e.hash, e.format_version, e.key_id,
                        e.mac,
                    )
                )  # fmt: skip
                prev = e.hash
                last = e
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE audit_events")
    assert last is not None
    return last, time.perf_counter() - started


async def verify(url: str, head: AuditEvent, home: Path) -> dict[str, Any]:
    process = psutil.Process()
    signer = Ed25519Signer(Ed25519PrivateKey.generate())
    at = datetime.now(UTC)
    checkpoint = AuditCheckpoint(
        tenant_id=TENANT,
        seq=head.seq,
        hash=head.hash,
        at=at,
        signature=signer.sign(checkpoint_message(tenant_id=TENANT, seq=head.seq, hash=head.hash, at=at)),
        public_key=signer.public_key,
    )
    rss: list[int] = []

    def progress(_tenant: str, checked: int) -> None:
        rss.append(process.memory_info().rss)

    async with Database(url, max_size=2) as db:
        await PostgresCheckpointStore(db).save(checkpoint)
        service = AuditService(
            events=PostgresEventStore(db, None),  # type: ignore[arg-type]  # verify never makes ids
            checkpoint_stores=[PostgresCheckpointStore(db), CheckpointFile(home / "checkpoints.jsonl")],
            signer=signer,
            verifier=Ed25519Verifier(),
            clock=SystemClock(),
            keyring=KEYRING,
            segments=ProcessSegmentVerifier(db, workers=WORKERS["count"]),
        )
        backends = await _backends(db)
        # worker processes and their database backends end before the verify returns: their CPU is
        # counted from the reaped children of this process and of the postmaster (which includes any
        # other backend of the cluster that ended meanwhile: run on a quiet machine)
        postmaster = psutil.Process(backends[0].ppid()) if backends else None
        server_before = _cpu_seconds(backends) + _children_cpu(postmaster)
        rss_before = process.memory_info().rss
        client_before = time.process_time() + _own_children_cpu()
        started = time.perf_counter()
        (report,) = await service.verify(TENANT, progress=progress)
        elapsed = time.perf_counter() - started
        client_cpu = time.process_time() + _own_children_cpu() - client_before
        server_cpu = _cpu_seconds(backends) + _children_cpu(postmaster) - server_before
    tenth = rss[: max(1, len(rss) // 10)]
    return {
        "intact": report.intact,
        "checked": report.checked,
        "checkpoints_trusted": report.checkpoints_trusted,
        "seconds": round(elapsed, 2),
        "events_per_second": round(report.checked / elapsed),
        "workers": WORKERS["count"],
        "client_cpu_us_per_event": round(client_cpu / report.checked * 1e6, 2),
        "server_cpu_us_per_event": round(server_cpu / report.checked * 1e6, 2),
        "rss_mib_before": round(rss_before / 2**20, 1),
        "rss_mib_after_first_tenth": round(max(tenth) / 2**20, 1),
        "rss_mib_peak": round(max(rss) / 2**20, 1),
    }


async def _backends(db: Database) -> list[psutil.Process]:
    """The PostgreSQL server processes serving this benchmark's pool (same machine), to count their CPU."""
    async with db.connection() as conn:
        cursor = await conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        pids = [row["pid"] for row in await cursor.fetchall()]
    found: list[psutil.Process] = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            found.append(psutil.Process(pid))
    return found


def _own_children_cpu() -> float:
    times = os.times()
    return times.children_user + times.children_system


def _children_cpu(process: psutil.Process | None) -> float:
    """CPU of ``process``'s children that have ended and been reaped (/proc/PID/stat cutime + cstime)."""
    if process is None:
        return 0.0
    with contextlib.suppress(psutil.Error):
        times = process.cpu_times()
        return times.children_user + times.children_system
    return 0.0


def _cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for p in processes:
        try:
            times = p.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def raw_sha256(sample: bytes, count: int) -> dict[str, Any]:
    sha = hashlib.sha256
    started = time.perf_counter()
    for _ in range(count):
        sha(sample).hexdigest()
    per_event = (time.perf_counter() - started) / count
    block = b"\x5a" * (1 << 20)
    started = time.perf_counter()
    for _ in range(256):
        sha(block).digest()
    mb_per_second = 256 / (time.perf_counter() - started)
    return {
        "event_bytes": len(sample),
        "events_per_second": round(1 / per_event),
        "mib_per_second_bulk": round(mb_per_second),
    }


def python_hash_only(count: int) -> int:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    events = [make_event(n, GENESIS_HASH, base) for n in range(1, count + 1)]
    started = time.perf_counter()
    for e in events:
        event_hash(e)
    return round(count / (time.perf_counter() - started))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--format", type=int, choices=(1, 2), default=2, help="hashed format of the events")
    parser.add_argument(
        "--workers", type=int, default=2, help="worker processes (as `audit verify`; 1: one pass)"
    )
    args = parser.parse_args()
    FORMAT["version"] = args.format
    WORKERS["count"] = args.workers

    name = f"sb_bench_audit_verify_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_database(args.server, name)
    try:
        upgrade_to_head(url)
        head, load_seconds = load(url, args.events)
        with tempfile.TemporaryDirectory() as home:
            result = asyncio.run(verify(url, head, Path(home)))
    finally:
        with psycopg.connect(args.server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    sample = canonical_event_bytes(make_event(123_457, GENESIS_HASH, datetime(2026, 1, 1, tzinfo=UTC)))
    raw = raw_sha256(sample, 1_000_000)
    result |= {
        "events": args.events,
        "format": args.format,
        "load_seconds": round(load_seconds, 1),
        "raw_sha256": raw,
        "python_canonical_and_hash_events_per_second": python_hash_only(200_000),
        "ratio_verify_to_raw_sha256": round(result["events_per_second"] / raw["events_per_second"], 3),
        "load_average": [round(x, 2) for x in psutil.getloadavg()],
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"loaded {args.events} pre-sealed format-{args.format} events with COPY in {result['load_seconds']} s"
    )
    print(
        f"verify: {result['checked']} events in {result['seconds']} s = {result['events_per_second']} events/s, "
        f"intact={result['intact']}, checkpoints trusted={result['checkpoints_trusted']}"
    )
    print(
        f"CPU per event: client (Python) {result['client_cpu_us_per_event']} us, "
        f"PostgreSQL server {result['server_cpu_us_per_event']} us"
    )
    print(
        f"memory (RSS MiB): before {result['rss_mib_before']}, after first tenth {result['rss_mib_after_first_tenth']},"
        f" peak {result['rss_mib_peak']}"
    )
    print(
        f"raw SHA-256 over {raw['event_bytes']}-byte events: {raw['events_per_second']} events/s "
        f"({raw['mib_per_second_bulk']} MiB/s bulk); canonical+hash in Python alone: "
        f"{result['python_canonical_and_hash_events_per_second']} events/s"
    )
    print(
        f"ratio verify / raw SHA-256: {result['ratio_verify_to_raw_sha256']}; load average {result['load_average']}"
    )


if __name__ == "__main__":
    main()
