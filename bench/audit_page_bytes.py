"""Benchmark: response bytes of an audit page of lifecycle events (native list, Portal rows, detail, export).

Run: .venv/bin/python bench/audit_page_bytes.py [--lifecycles 34] [--limit 100] [--repeat 0]
                                                [--server postgresql://postgres@127.0.0.1:5432/test]

Makes real lifecycle events (create → approve → execute ``studio.note.append`` through the gateway over
``/api/v1/proposals``, a requester and a distinct approver with RS256 Firebase ID tokens, as
``bench/gateway_lifecycle.py`` does) in a throw-away database, then reads one page of each audit view
in-process (``httpx.ASGITransport``, one request each) and prints its bytes, bytes per row and which
fields of a row weigh most. The bytes are deterministic: the figure the issue-18 target is about
(≤ 80 KB for 100 rows). ``--repeat N`` also reads each page N times and prints this process's CPU per
request (``time.process_time``: the app and the client together, PostgreSQL's backends not included) and
the Python function calls of one request (cProfile's count: the same on a loaded box).
The database is dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.gateway_lifecycle import bench_registry, http_lifecycle
from bench.server_cpu import FirebaseTrust

from studio_brain.adapters.postgres.database import with_database
from studio_brain.adapters.postgres.migrate import upgrade_to_head
from studio_brain.bootstrap import DatabaseTarget, open_brain
from studio_brain.logging import configure_logging
from studio_brain.settings import load_settings

TENANT = "bench-studio"
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"  # noqa: S105 (a throw-away database's)


def field_weights(rows: list[dict[str, Any]]) -> list[tuple[str, float]]:
    """Mean encoded bytes per row of each top-level field (``"key":value,``), heaviest first."""
    total: Counter[str] = Counter()
    for row in rows:
        for key, value in row.items():
            total[key] += len(json.dumps({key: value}, separators=(",", ":"), ensure_ascii=False)) - 1
    return [(k, v / len(rows)) for k, v in total.most_common()]


async def measure(url: str, lifecycles: int, limit: int, repeat: int) -> None:
    from studio_brain.web.app import create_app

    settings = load_settings()
    trust_requester = TRUST.staff_headers("bench-req")
    trust_approver = TRUST.staff_headers("bench-app")
    async with open_brain(settings, target=DatabaseTarget(url=url, embedded=None)) as brain:
        transport = httpx.ASGITransport(app=create_app(brain=brain))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1:8000", timeout=60
        ) as http:
            for n in range(lifecycles):
                await http_lifecycle(http, n, trust_requester, trust_approver)
            admin = {"x-studio-brain-admin-token": ADMIN_TOKEN}
            views = {
                "native list  GET /api/v1/audit": ("/api/v1/audit", {"limit": limit}, admin, "events"),
                "native full  GET /api/v1/audit?details=full": (
                    "/api/v1/audit",
                    {"limit": limit, "details": "full"},
                    admin,
                    "events",
                ),
                "Portal rows  GET /api/capabilities/audit": (
                    "/api/capabilities/audit",
                    {"limit": limit},
                    trust_requester,
                    "rows",
                ),
            }
            for name, (path, params, headers, key) in views.items():
                response = await http.get(path, params=params, headers=headers)
                assert response.status_code == 200, response.text
                rows = response.json()[key]
                sizes = [len(json.dumps(r, separators=(",", ":"), ensure_ascii=False).encode()) for r in rows]
                print(
                    f"{name:<48} {len(response.content) / 1000:7.1f} KB for {len(rows)} rows "
                    f"(rows {min(sizes):,}–{max(sizes):,} B, mean {sum(sizes) / len(sizes):,.0f} B)"
                )
                if name.startswith(("native list", "Portal")):
                    heavy = ", ".join(f"{k} {v:.0f}" for k, v in field_weights(rows)[:8])
                    print(f"    heaviest fields (B/row): {heavy}")
                if repeat:
                    # this process's CPU (app and client together; PostgreSQL's backends not included)
                    started = time.process_time()
                    for _ in range(repeat):
                        again = await http.get(path, params=params, headers=headers)
                        assert again.status_code == 200
                    spent = (time.process_time() - started) * 1000 / repeat
                    # Python function calls of one request: deterministic, unlike CPU on a shared box
                    profiler = cProfile.Profile()
                    profiler.enable()
                    await http.get(path, params=params, headers=headers)
                    profiler.disable()
                    calls = pstats.Stats(profiler).total_calls  # type: ignore[attr-defined]
                    print(
                        f"    in-process CPU {spent:.2f} ms/request ({repeat} requests, client included); "
                        f"{calls:,} Python function calls in one request"
                    )
            export = await http.get(
                "/api/capabilities/audit/export", params={"limit": limit}, headers=trust_requester
            )
            assert export.status_code == 200, export.text
            bundle = export.json()["bundle"]
            print(
                f"{'Portal export GET /api/capabilities/audit/export':<48} {len(export.content) / 1000:7.1f} KB "
                f"for {len(bundle['rows'])} rows"
            )
            detail = await http.get("/api/v1/audit/1", headers=admin)
            assert detail.status_code == 200, detail.text
            print(f"{'detail       GET /api/v1/audit/1':<48} {len(detail.content):7,} B")


TRUST: FirebaseTrust


def main() -> None:
    global TRUST
    parser = argparse.ArgumentParser()
    parser.add_argument("--lifecycles", type=int, default=34, help="each makes 3 audit events or more")
    parser.add_argument("--limit", type=int, default=100, help="rows per page")
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument(
        "--repeat", type=int, default=0, help="also read each page N times: this process's CPU per request"
    )
    args = parser.parse_args()
    configure_logging(level="warning", fmt="json")
    name = f"sb_bench_audit_bytes_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_database(args.server, name)
    with tempfile.TemporaryDirectory(prefix="sb-audit-bytes-") as home:
        TRUST = FirebaseTrust.create(Path(home))
        registry = Path(home) / "capabilities.toml"
        registry.write_text(bench_registry(), encoding="utf-8")
        os.environ.update(
            {
                **TRUST.env(),
                "STUDIO_BRAIN_HOME": home,
                "STUDIO_BRAIN_DATABASE_URL": url,
                "STUDIO_BRAIN_ADMIN_TOKEN": ADMIN_TOKEN,
                "STUDIO_BRAIN_GATEWAY_REGISTRY_FILE": str(registry),
                "STUDIO_BRAIN_TENANT_ID": TENANT,
                "STUDIO_BRAIN_SCHEDULER_ENABLED": "false",
            }
        )
        try:
            upgrade_to_head(url)
            asyncio.run(measure(url, args.lifecycles, args.limit, args.repeat))
        finally:
            with psycopg.connect(args.server, autocommit=True) as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
