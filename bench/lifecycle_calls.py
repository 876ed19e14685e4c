"""Benchmark: Python function calls per gateway lifecycle step over HTTP, in one process — the
load-independent twin of ``bench/gateway_lifecycle.py`` (issue 18).

Run: .venv/bin/python bench/lifecycle_calls.py [--lifecycles 10] [--top 25 [--step execute]]
                                               [--server postgresql://postgres@127.0.0.1:5432/test]

Server CPU per lifecycle on this shared 2-core VM swings by ±20 % between runs of the same code; the calls a
lifecycle makes do not. This creates a throw-away database, builds the app on it with the lifecycle
benchmark's registry, and drives create → approve (a second Firebase staff user) → execute of
``studio.note.append`` over ASGI (``httpx.ASGITransport``, no socket), counting the Python calls
(``sys.setprofile`` "call" events) outside the HTTP client's own code, per step; ``--top`` lists the
functions called most. Compare two trees with ``PYTHONPATH=<tree>/src``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import sys
import tempfile
import uuid
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.gateway_lifecycle import bench_registry
from bench.request_calls import CLIENT_PACKAGES
from bench.server_cpu import FirebaseTrust

STEPS = ("create", "approve", "execute")


class Counter:
    """Python calls outside the client's packages, by step and by function, while ``step`` is set."""

    def __init__(self, listed_step: str | None = None) -> None:
        #: the step whose functions ``by_function`` counts (None: every step)
        self.listed_step = listed_step
        self.by_step: collections.Counter[str] = collections.Counter()
        self.by_function: collections.Counter[str] = collections.Counter()

    def profile(self, step: str) -> Any:
        def hook(frame: FrameType, event: str, arg: object) -> None:
            if event != "call":
                return
            filename = frame.f_code.co_filename
            if any(p in filename for p in CLIENT_PACKAGES):
                return
            self.by_step[step] += 1
            if self.listed_step not in (None, step):
                return
            short = filename.split("site-packages/")[-1].split("src/")[-1].split("python3.11/")[-1]
            self.by_function[f"{short}:{frame.f_code.co_name}"] += 1

        return hook


async def lifecycle(
    client: httpx.AsyncClient,
    n: int,
    requester: dict[str, str],
    approver: dict[str, str],
    counter: Counter | None = None,
) -> None:
    async def step(name: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
        if counter is not None:
            sys.setprofile(counter.profile(name))
        try:
            answer = await client.post(path, json=body, headers=headers)
        finally:
            sys.setprofile(None)
        if answer.status_code not in (200, 201):
            raise SystemExit(f"{name} answered {answer.status_code}: {answer.text[:300]}")
        return answer.json()

    created = await step(
        "create",
        "/api/v1/proposals",
        {
            "capabilityId": "studio.note.append",
            "input": {"text": f"calls {n}"},
            "rationale": "benchmark lifecycle",
        },
        requester,
    )
    proposal_id = created["proposal"]["id"]
    await step(
        "approve", f"/api/v1/proposals/{proposal_id}/approve", {"rationale": "benchmark approval"}, approver
    )
    executed = await step("execute", f"/api/v1/proposals/{proposal_id}/execute", {}, approver)
    if executed["proposal"]["status"] != "executed":
        raise SystemExit(f"execute left the proposal {executed['proposal']['status']}")


async def run(url: str, lifecycles: int, top: int, step: str | None) -> None:
    home = Path(tempfile.mkdtemp(prefix="sb-lifecycle-calls-"))
    trust = FirebaseTrust.create(home)
    registry = home / "capabilities.toml"
    registry.write_text(bench_registry(), encoding="utf-8")
    os.environ.update(
        trust.env(),
        STUDIO_BRAIN_HOME=str(home / "home"),
        STUDIO_BRAIN_DATABASE_URL=url,
        STUDIO_BRAIN_GATEWAY_REGISTRY_FILE=str(registry),
    )
    from studio_brain.bootstrap import open_brain
    from studio_brain.settings import load_settings
    from studio_brain.web.app import create_app

    requester, approver = trust.staff_headers("calls-requester"), trust.staff_headers("calls-approver")
    counter = Counter(step)
    async with open_brain(load_settings(), migrate=True) as brain:
        transport = httpx.ASGITransport(app=create_app(brain=brain))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
            for n in range(3):  # warm: caches filled, lazy imports done
                await lifecycle(client, n, requester, approver)
            for n in range(lifecycles):
                await lifecycle(client, 100 + n, requester, approver, counter)
    total = sum(counter.by_step.values()) / lifecycles
    steps = ", ".join(f"{s} {counter.by_step[s] / lifecycles:,.0f}" for s in STEPS)
    print(f"{total:,.0f} Python calls per lifecycle over HTTP ({steps})")
    for name, calls in counter.by_function.most_common(top):
        print(f"  {calls / lifecycles:7.0f}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lifecycles", type=int, default=10)
    parser.add_argument("--top", type=int, default=0, help="list the N functions called most")
    parser.add_argument("--step", choices=STEPS, help="with --top: list one step's functions only")
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    name = f"sb_bench_calls_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        asyncio.run(run(args.server.rsplit("/", 1)[0] + "/" + name, args.lifecycles, args.top, args.step))
    finally:
        with psycopg.connect(args.server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
