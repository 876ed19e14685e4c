"""Benchmark: Python function calls per read request, in one process — a load-independent measure (issue 18).

Run: .venv/bin/python bench/request_calls.py [--requests 20] [--server postgresql://postgres@127.0.0.1:5432/test]

CPU per request on this shared 2-core VM swings ±20 % between runs of the same code; the number of Python
calls a request makes does not depend on the load. This builds the app on the read benchmark's database
(``sb_bench_cockpit``, seeded by ``bench/api_load.py``: run that once first), sends each read with an RS256
Firebase ID token of a staff user over ASGI (``httpx.ASGITransport``, no socket), and counts the Python
calls (``sys.setprofile`` "call" events) outside the HTTP client's own packages. With a Studio Brain that has
the fast lane (ADR 0019) each read is counted twice: on the lane and with ``create_app(fast_lane=False)``.
Compare two trees with ``PYTHONPATH=<tree>/src``.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.server_cpu import FirebaseTrust

PATHS = [
    "/api/v1/state/latest",
    "/api/v1/capabilities",
    "/api/capabilities",
    "/api/capabilities/audit?limit=100",
    "/api/v1/audit?newestFirst=true&limit=100",
]
#: the load client's packages: their calls are not the server's. The last two are the client's as well:
#: httpx's ASGI transport tries ``import trio`` on every request (the import machinery's calls) and builds
#: each response's headers as an ``email.message.Message``; no server path here touches either
CLIENT_PACKAGES = (
    "/httpx/",
    "/httpcore/",
    "/anyio/",
    "/sniffio/",
    "/h11/",
    "/idna/",
    "<frozen importlib.",
    "/email/",
)


async def count(app: Any, path: str, headers: dict[str, str], requests: int) -> float:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        for _ in range(5):  # warm: caches filled, lazy imports done
            answer = await client.get(path, headers=headers)
            if answer.status_code != 200:
                raise SystemExit(f"{path} answered {answer.status_code}: {answer.text[:200]}")
        calls = 0

        def profile(frame: FrameType, event: str, arg: object) -> None:
            nonlocal calls
            if event == "call" and not any(p in frame.f_code.co_filename for p in CLIENT_PACKAGES):
                calls += 1

        sys.setprofile(profile)
        try:
            for _ in range(requests):
                await client.get(path, headers=headers)
        finally:
            sys.setprofile(None)
    return calls / requests


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="sb-request-calls-"))
    trust = FirebaseTrust.create(home)
    database = args.server.rsplit("/", 1)[0] + "/sb_bench_cockpit"
    os.environ.update(trust.env(), STUDIO_BRAIN_HOME=str(home / "home"), STUDIO_BRAIN_DATABASE_URL=database)
    from studio_brain.bootstrap import open_brain
    from studio_brain.settings import load_settings
    from studio_brain.web.app import create_app

    headers = trust.staff_headers("staff-bench")
    async with open_brain(load_settings(), migrate=False) as brain:
        variants = {"as served": create_app(brain=brain)}
        if "fast_lane" in inspect.signature(create_app).parameters:
            variants["without the fast lane"] = create_app(brain=brain, fast_lane=False)
        for path in PATHS:
            for name, app in variants.items():
                per = await count(app, path, headers, args.requests)
                print(f"{path:<42} {name:<22} {per:7.0f} Python calls per request")


if __name__ == "__main__":
    asyncio.run(main())
