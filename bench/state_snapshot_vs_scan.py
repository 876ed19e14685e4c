"""Benchmark: StudioState's count() snapshot vs a naive reader that streams every document (emulator).

Seeds N documents (default 100,000) into each of the 8 collections of a fresh emulator project with
batched writes of 500, then, in one run, measures for both readers: wall time, billed reads and
exactness against the ground truth computed while generating. For the snapshot it also measures the
same queries issued one at a time, as concurrency evidence (wall time vs the sum of single-query times).

Billed reads follow Firestore's pricing: an aggregation query costs 1 read per 1,000 index entries
matched (minimum 1 per query); a scan costs 1 read per document returned.

    .venv/bin/python bench/state_snapshot_vs_scan.py [--docs 100000] [--concurrency 8] [--json out.json]

Uses FIRESTORE_EMULATOR_HOST when set, otherwise starts the emulator jar on a free loopback port and stops
it at the end. Bounded: every phase has a deadline (--max-seconds, default 1500 s in all).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from studio_brain.adapters.clock import SystemClock
from studio_brain.adapters.firestore import FirestoreReader
from studio_brain.adapters.rule_files import load_rule_table
from studio_brain.domain.rules import RuleTable
from studio_brain.domain.snapshot import CloudRead, QueryStatus

JAR = Path("/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar")

# Realistic mixes of the real values (reference: firestore-model.md), as weights.
MIXES: dict[str, dict[str, dict[Any, int]]] = {
    "batches": {
        "state": {
            "DRAFT": 4,
            "SUBMITTED": 3,
            "SHELVED": 3,
            "LOADED": 2,
            "FIRED": 2,
            "READY_FOR_PICKUP": 3,
            "CLOSED_PICKED_UP": 80,
            "CLOSED_OTHER": 3,
        }
    },
    "reservations": {
        "status": {
            "REQUESTED": 3,
            "CONFIRMED": 4,
            "WAITLISTED": 1,
            "CANCELLED": 12,
            "CONFIRMED_ARRIVED": 5,
            "LOADED": 75,
        }
    },
    "kilnFirings": {
        "status": {
            "scheduled": 3,
            "in-progress": 1,
            "loading": 1,
            "firing": 1,
            "cooling": 1,
            "unloading": 1,
            "completed": 88,
            "cancelled": 4,
        }
    },
    "communityReports": {
        "status": {"open": 3, "triaged": 2, "actioned": 2, "resolved": 80, "dismissed": 13},
        "severity": {"low": 60, "medium": 34, "high": 6},
    },
    "agentRequests": {
        "status": {
            "new": 3,
            "triaged": 2,
            "accepted": 2,
            "in_progress": 2,
            "ready": 1,
            "fulfilled": 80,
            "rejected": 6,
            "cancelled": 4,
        }
    },
    "materialsOrders": {
        "status": {
            "checkout_created": 2,
            "checkout_pending": 2,
            "paid": 10,
            "picked_up": 80,
            "payment_failed": 3,
            "disputed": 1,
            "refunded": 2,
        }
    },
    "payments": {
        "status": {
            "checkout_created": 2,
            "checkout_completed": 2,
            "payment_succeeded": 60,
            "invoice_paid": 28,
            "payment_failed": 3,
            "invoice_payment_failed": 2,
            "charge_disputed": 1,
            "charge_refunded": 2,
        }
    },
    "supportRequests": {
        "status": {
            "new": 5,
            "open": 10,
            "waiting": 5,
            "blocked": 2,
            "on_hold": 2,
            "resolved": 40,
            "closed": 36,
        },
        "urgency": {"low": 30, "normal": 55, "high": 15},
    },
}


def make_document(collection: str, rng: random.Random) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for field, weights in MIXES[collection].items():
        doc[field] = rng.choices(list(weights), list(weights.values()))[0]
    if collection == "batches":
        doc["isClosed"] = doc["state"].startswith("CLOSED_")
        if rng.random() < 0.001:  # legacy documents without isClosed: unclassified, never lost
            del doc["isClosed"]
    doc["ownerUid"] = f"member-{rng.randint(1, 400):03d}"
    return doc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_emulator() -> tuple[str, subprocess.Popen[bytes] | None]:
    existing = os.environ.get("FIRESTORE_EMULATOR_HOST")
    if existing:
        return existing, None
    java = shutil.which("java")
    if java is None or not JAR.exists():
        raise SystemExit(f"need java and {JAR} (or set FIRESTORE_EMULATOR_HOST)")
    port = free_port()
    host = f"127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            java,
            "-cp",
            str(JAR),
            "com.google.cloud.datastore.emulator.firestore.CloudFirestore",
            "start",
            "--host=127.0.0.1",
            f"--port={port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{host}/", timeout=1):
                return host, process
        except OSError:
            time.sleep(0.3)
    process.terminate()
    raise SystemExit("the emulator did not start within 90 s")


async def seed(project: str, table: RuleTable, docs: int, seed_value: int) -> tuple[dict[str, int], float]:
    """Write the documents (batches of 500, 4 commits in flight); return the true counts and seconds."""
    from google.cloud import firestore

    client = firestore.AsyncClient(project=project)
    truth: Counter[str] = Counter()
    started = time.monotonic()
    in_flight: set[asyncio.Task[Any]] = set()
    try:
        for collection in table.collections:
            rng = random.Random(f"{seed_value}:{collection}")
            rules = table.rules_for(collection)
            batch = client.batch()
            for i in range(docs):
                doc = make_document(collection, rng)
                truth[f"total:{collection}"] += 1
                for rule in rules:
                    if rule.matches(doc):
                        truth[rule.target] += 1
                batch.set(client.collection(collection).document(f"d{i:07d}"), doc)
                if (i + 1) % 500 == 0 or i + 1 == docs:
                    in_flight.add(asyncio.ensure_future(batch.commit()))
                    batch = client.batch()
                    if len(in_flight) >= 4:
                        done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                        for task in done:
                            task.result()
            print(
                f"  seeded {collection}: {docs} documents ({time.monotonic() - started:.1f} s so far)",
                flush=True,
            )
        if in_flight:
            for task in (await asyncio.wait(in_flight))[0]:
                task.result()
    finally:
        await client._transport.close()
    return dict(truth), time.monotonic() - started


def billed_for_counts(read: CloudRead) -> int:
    # aggregation pricing: 1 read per 1,000 index entries matched, at least 1 per query
    return sum(max(1, math.ceil((r.count or 0) / 1000)) for r in (*read.rule_counts, *read.totals))


def exact(read: CloudRead, truth: dict[str, int]) -> bool:
    ok = all(r.status is QueryStatus.OK and r.count == truth.get(r.key, 0) for r in read.rule_counts)
    return ok and all(r.count == truth[f"total:{r.key}"] for r in read.totals)


async def naive_scan(project: str, table: RuleTable) -> tuple[dict[str, int], int, float]:
    """What a scan-based brain does: stream every document of every collection and count in Python."""
    from google.cloud import firestore

    client = firestore.AsyncClient(project=project)
    counts: Counter[str] = Counter()
    documents = 0
    started = time.monotonic()
    try:
        for collection in table.collections:
            rules = table.rules_for(collection)
            async for snapshot in client.collection(collection).stream():
                doc = snapshot.to_dict() or {}
                documents += 1
                counts[f"total:{collection}"] += 1
                for rule in rules:
                    if rule.matches(doc):
                        counts[rule.target] += 1
            print(f"  scanned {collection} ({time.monotonic() - started:.1f} s so far)", flush=True)
    finally:
        await client._transport.close()
    return dict(counts), documents, time.monotonic() - started


async def main(args: argparse.Namespace) -> dict[str, Any]:
    host, process = start_emulator()
    os.environ["FIRESTORE_EMULATOR_HOST"] = host
    project = f"bench-{os.getpid()}"
    table = load_rule_table()
    try:
        print(
            f"emulator {host}, project {project}, {args.docs} documents x {len(table.collections)} collections"
        )
        truth, seed_seconds = await asyncio.wait_for(
            seed(project, table, args.docs, 42), args.max_seconds / 3
        )
        clock = SystemClock()

        concurrent = FirestoreReader(
            project_id=project, clock=clock, deadline_seconds=args.deadline, max_concurrency=args.concurrency
        )
        t0 = time.monotonic()
        snap = await concurrent.read(table)
        snap_wall = time.monotonic() - t0
        print(f"  snapshot (concurrency {args.concurrency}): {snap_wall:.1f} s", flush=True)

        sequential = FirestoreReader(
            project_id=project, clock=clock, deadline_seconds=args.deadline, max_concurrency=1
        )
        t0 = time.monotonic()
        one_by_one = await sequential.read(table)
        sequential_wall = time.monotonic() - t0
        single_sum = sum(r.duration_ms for r in (*one_by_one.rule_counts, *one_by_one.totals)) / 1000
        print(f"  snapshot (one query at a time): {sequential_wall:.1f} s", flush=True)

        scan_counts, scanned, scan_wall = await asyncio.wait_for(
            naive_scan(project, table), args.max_seconds / 2
        )
        scan_exact = all(scan_counts.get(k, 0) == v for k, v in truth.items()) and all(
            scan_counts.get(r.target, 0) == truth.get(r.target, 0) for r in table.rules
        )
        snapshot_billed = billed_for_counts(snap)
        result = {
            "documents_per_collection": args.docs,
            "collections": len(table.collections),
            "queries": len(snap.rule_counts) + len(snap.totals),
            "seed_seconds": round(seed_seconds, 1),
            "snapshot": {
                "wall_seconds": round(snap_wall, 2),
                "billed_reads": snapshot_billed,
                "exact": exact(snap, truth),
                "concurrency": args.concurrency,
                "peak_in_flight": concurrent.peak_in_flight,
                "sequential_wall_seconds": round(sequential_wall, 2),
                "sum_of_single_query_seconds": round(single_sum, 2),
                "sequential_exact": exact(one_by_one, truth),
                "slowest_query_seconds": round(
                    max(r.duration_ms for r in (*one_by_one.rule_counts, *one_by_one.totals)) / 1000, 2
                ),
            },
            "scan": {"wall_seconds": round(scan_wall, 2), "billed_reads": scanned, "exact": scan_exact},
            "billed_reads_ratio": round(scanned / snapshot_billed, 1),
            "wall_time_ratio": round(scan_wall / snap_wall, 2),
        }
        return result
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000, help="documents per collection")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--deadline", type=float, default=300.0, help="per-query deadline, seconds")
    parser.add_argument("--max-seconds", type=float, default=1500.0)
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    arguments = parser.parse_args()
    outcome = asyncio.run(main(arguments))
    text = json.dumps(outcome, indent=2)
    print(text)
    if arguments.json:
        arguments.json.write_text(text + "\n", encoding="utf-8")
