"""Verifying segments of one tenant's audit chain in worker processes, one PostgreSQL connection each.

One Python process verifies about 40,000 events a second (canonical JSON, SHA-256 and HMAC per event, all
under the GIL); a studio's machine has two cores or more. Each worker streams its own range of rows over
its own connection and feeds a :class:`~studio_brain.domain.audit.ChainVerifier` from the stored hash of
the row before its range; the audit service joins the verdicts (domain/audit/segments.py) and, when they
do not prove the chain intact, verifies it in one pass to name the first break exactly.

Workers are fresh interpreters (``python -m`` of :mod:`.segment_worker`), not forks: the parent may hold
an event loop, a connection pool and gRPC threads, none of which survive a fork. The MAC keys reach a
worker through its stdin, never its command line, environment, a repr or a log line; a worker that fails
reports only the type of its error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from studio_brain.adapters.postgres.database import CONNECT_KWARGS, Database
from studio_brain.adapters.postgres.event_store import READ_COLUMNS, STREAM_BATCH, feed_row
from studio_brain.domain.audit import (
    GENESIS_HASH,
    AuditCheckpoint,
    BreakKind,
    ChainBreak,
    ChainVerifier,
    checkpoint_from_json,
    checkpoint_to_json,
)
from studio_brain.domain.audit.segments import PARALLEL_MIN_EVENTS, Segment, SegmentVerdict
from studio_brain.domain.records import Keyring, MacKey
from studio_brain.logging import get_logger

log = get_logger(__name__)

#: how often (in events) a worker tells the parent how far it got
PROGRESS_EVERY = 20_000
#: the most workers "one per core" means: past this the database, not Python, is the limit
AUTO_WORKERS_MAX = 4


def verify_workers(configured: int) -> int:
    """Workers for ``audit verify``: the setting, or (0) one per usable CPU core, at most four."""
    if configured > 0:
        return configured
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, AUTO_WORKERS_MAX))


@dataclass(frozen=True, kw_only=True, slots=True)
class SegmentJob:
    """What one worker needs: where to read, which rows, the checkpoints in its range, the MAC keys."""

    url: str = field(repr=False)  # may hold a password
    options: str | None
    tenant_id: str
    segment: Segment
    checkpoints: tuple[AuditCheckpoint, ...]
    #: (key id, secret) of every MAC key, the current one first; empty: MACs are not checked
    keys: tuple[tuple[str, bytes], ...] = field(repr=False)


def job_to_json(job: SegmentJob) -> dict[str, Any]:
    return {
        "url": job.url,
        "options": job.options,
        "tenantId": job.tenant_id,
        "segment": [job.segment.first_seq, job.segment.last_seq],
        "checkpoints": [checkpoint_to_json(c) for c in job.checkpoints],
        "keys": [[key_id, secret.hex()] for key_id, secret in job.keys],
    }


def job_from_json(data: dict[str, Any]) -> SegmentJob:
    first, last = data["segment"]
    return SegmentJob(
        url=data["url"],
        options=data["options"],
        tenant_id=data["tenantId"],
        segment=Segment(first_seq=first, last_seq=last),
        checkpoints=tuple(checkpoint_from_json(c) for c in data["checkpoints"]),
        keys=tuple((key_id, bytes.fromhex(secret)) for key_id, secret in data["keys"]),
    )


def verdict_to_json(verdict: SegmentVerdict) -> dict[str, Any]:
    problem = verdict.problem
    return {
        "segment": [verdict.segment.first_seq, verdict.segment.last_seq],
        "anchorHash": verdict.anchor_hash,
        "checked": verdict.checked,
        "lastSeq": verdict.last_seq,
        "lastHash": verdict.last_hash,
        "keyed": verdict.keyed,
        "keyedUnchecked": verdict.keyed_unchecked,
        "unkeyed": verdict.unkeyed,
        "problem": None
        if problem is None
        else {
            "tenantId": problem.tenant_id,
            "seq": problem.seq,
            "kind": str(problem.kind),
            "detail": problem.detail,
        },
    }


def verdict_from_json(data: dict[str, Any]) -> SegmentVerdict:
    first, last = data["segment"]
    problem = data["problem"]
    return SegmentVerdict(
        segment=Segment(first_seq=first, last_seq=last),
        anchor_hash=data["anchorHash"],
        checked=data["checked"],
        last_seq=data["lastSeq"],
        last_hash=data["lastHash"],
        keyed=data["keyed"],
        keyed_unchecked=data["keyedUnchecked"],
        unkeyed=data["unkeyed"],
        problem=None
        if problem is None
        else ChainBreak(
            tenant_id=problem["tenantId"],
            seq=problem["seq"],
            kind=BreakKind(problem["kind"]),
            detail=problem["detail"],
        ),
    )


def keyring_from(keys: Sequence[tuple[str, bytes]]) -> Keyring | None:
    if not keys:
        return None
    made = {key_id: MacKey(key_id=key_id, secret=secret) for key_id, secret in keys}
    return Keyring(current=made[keys[0][0]], keys=made)


def keys_of(keyring: Keyring | None) -> tuple[tuple[str, bytes], ...]:
    if keyring is None:
        return ()
    others = [k for key_id, k in sorted(keyring.keys.items()) if key_id != keyring.current.key_id]
    return tuple((k.key_id, k.secret) for k in (keyring.current, *others))


def verify_segment(job: SegmentJob, progress: Callable[[int], None] | None = None) -> SegmentVerdict:
    """Check ``job``'s rows (synchronously, in this process) and say what was found."""
    segment = job.segment
    kwargs: dict[str, Any] = {**CONNECT_KWARGS, **({"options": job.options} if job.options else {})}
    with psycopg.connect(job.url, **kwargs) as conn:
        # UTC: the driver stamps rows with datetime.timezone.utc, as the one-pass stream does
        conn.execute("SET TIME ZONE 'UTC'")
        anchor: str | None = GENESIS_HASH
        if segment.first_seq > 1:
            row = conn.execute(
                "SELECT hash FROM audit_events WHERE tenant_id = %s AND seq = %s",
                (job.tenant_id, segment.first_seq - 1),
            ).fetchone()
            anchor = None if row is None else row[0]
        if not isinstance(anchor, str):
            return _verdict(segment, None, None)
        chain = ChainVerifier(
            job.tenant_id,
            first_seq=segment.first_seq,
            anchor_hash=anchor,
            checkpoints=job.checkpoints,
            keyring=keyring_from(job.keys),
            # unkeyed rows are judged over the whole chain, never per segment (the join refuses them)
            unkeyed_tail_ok=True,
        )
        sql = f"SELECT {READ_COLUMNS} FROM audit_events WHERE tenant_id = %s AND seq >= %s"
        params: list[Any] = [job.tenant_id, segment.first_seq]
        if segment.last_seq is not None:
            sql += " AND seq <= %s"
            params.append(segment.last_seq)
        sql += " ORDER BY seq"
        reported = 0
        with conn.cursor("audit_segment", row_factory=tuple_row, binary=True) as cur:
            cur.itersize = STREAM_BATCH
            cur.execute(sql, params)
            broken = False
            while not broken and (rows := cur.fetchmany(STREAM_BATCH)):
                for row in rows:
                    if feed_row(chain, row) is not None:
                        broken = True
                        break
                if progress is not None and chain.checked - reported >= PROGRESS_EVERY:
                    reported = chain.checked
                    progress(reported)
        chain.finish()
        return _verdict(segment, anchor, chain)


def _verdict(segment: Segment, anchor: str | None, chain: ChainVerifier | None) -> SegmentVerdict:
    return SegmentVerdict(
        segment=segment,
        anchor_hash=anchor,
        checked=0 if chain is None else chain.checked,
        last_seq=None if chain is None else chain.last_seq,
        last_hash=None if chain is None else chain.last_hash,
        keyed=0 if chain is None else chain.keyed,
        keyed_unchecked=0 if chain is None else chain.keyed_unchecked,
        unkeyed=0 if chain is None else chain.unkeyed,
        problem=None if chain is None else chain.broken,
    )


def run_segment(job: SegmentJob, send: Callable[[str, object], None]) -> None:
    """A worker process's whole life: verify, send the verdict (or only its error's type), return."""
    try:
        verdict = verify_segment(job, lambda checked: send("progress", checked))
    except Exception as err:  # told to the parent, which verifies in one pass instead
        send("failed", type(err).__name__)
    else:
        send("done", verdict_to_json(verdict))


#: the module a worker process runs (``python -m``): it imports only what verifying needs
WORKER_MODULE = "studio_brain.adapters.postgres.segment_worker"
#: the most a worker's message may hold (a verdict is a few hundred bytes)
MESSAGE_LIMIT = 1 << 16


def frame(kind: str, value: object) -> bytes:
    """One message from a worker: a line of JSON ``{"kind": ..., "value": ...}``."""
    return json.dumps({"kind": kind, "value": value}, separators=(",", ":")).encode() + b"\n"


class ProcessSegmentVerifier:
    """:class:`~studio_brain.ports.audit.SegmentVerifier` with one worker process per segment.

    A worker is a fresh ``python -m`` of :data:`WORKER_MODULE` (not ``multiprocessing``: that would
    import the parent's main module in every worker — the whole CLI — and a fork would copy an event
    loop, a connection pool and gRPC threads). Its job arrives on stdin, its messages leave on stdout."""

    def __init__(self, database: Database, *, workers: int, min_events: int = PARALLEL_MIN_EVENTS) -> None:
        self._url = database.url
        self._options = database.options
        self.workers = workers
        self.min_events = min_events

    def __repr__(self) -> str:
        return f"ProcessSegmentVerifier(workers={self.workers}, min_events={self.min_events})"

    async def verify_segments(
        self,
        tenant_id: str,
        segments: Sequence[Segment],
        *,
        checkpoints: Sequence[AuditCheckpoint],
        keyring: Keyring | None,
        progress: Callable[[int], None] | None = None,
    ) -> list[SegmentVerdict] | None:
        jobs = [
            SegmentJob(
                url=self._url,
                options=self._options,
                tenant_id=tenant_id,
                segment=s,
                checkpoints=tuple(c for c in checkpoints if c.tenant_id == tenant_id and s.holds(c.seq)),
                keys=keys_of(keyring),
            )
            for s in segments
        ]
        checked = [0] * len(jobs)

        def advanced(index: int, count: int) -> None:
            checked[index] = count
            if progress is not None:
                progress(sum(checked))

        workers: list[asyncio.subprocess.Process] = []
        try:
            for _ in jobs:
                workers.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable,
                        "-m",
                        WORKER_MODULE,
                        stdin=asyncio.subprocess.PIPE,
                        stdout=asyncio.subprocess.PIPE,
                        limit=MESSAGE_LIMIT,
                        # a worker's own diagnostics may name the server; failures are told by type only
                        stderr=asyncio.subprocess.DEVNULL,
                    )
                )
            verdicts = await asyncio.gather(
                *(
                    _run(worker, job, partial(advanced, i))
                    for i, (worker, job) in enumerate(zip(workers, jobs, strict=True))
                )
            )
        except OSError as err:  # could not start a worker
            log.warning("audit.verify.worker_failed", error=type(err).__name__)
            return None
        finally:
            for worker in workers:
                if worker.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        worker.kill()
                    await worker.wait()
        if any(v is None for v in verdicts):
            return None
        return [v for v in verdicts if v is not None]


async def _run(
    worker: asyncio.subprocess.Process, job: SegmentJob, advanced: Callable[[int], None]
) -> SegmentVerdict | None:
    """Hand ``job`` to ``worker`` and read its messages until its verdict; None when it failed."""
    assert worker.stdin is not None
    assert worker.stdout is not None
    worker.stdin.write(json.dumps(job_to_json(job)).encode())
    try:
        await worker.stdin.drain()
        worker.stdin.close()
        while line := await worker.stdout.readline():
            message = json.loads(line)
            kind, value = message["kind"], message["value"]
            if kind == "progress":
                advanced(value)
            elif kind == "done":
                verdict = verdict_from_json(value)
                await worker.wait()
                return verdict
            else:
                log.warning("audit.verify.worker_failed", segment=job.segment.first_seq, error=str(value))
                return None
    except (ConnectionError, ValueError, KeyError, TypeError) as err:
        log.warning("audit.verify.worker_failed", segment=job.segment.first_seq, error=type(err).__name__)
        return None
    code = await worker.wait()
    log.warning("audit.verify.worker_lost", segment=job.segment.first_seq, exit_code=code)
    return None
