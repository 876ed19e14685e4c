"""What authenticating costs per request, by credential (issue 11): the admin-token header (no database),
a server-side cockpit session (one MAC, one session row and one person row read; touched at most once a
minute), a personal API token (same shape), a Firebase-less passkey sign-in ceremony end to end.

Run: .venv/bin/python bench/identity_auth.py [--requests 2000] [--server postgresql://postgres@127.0.0.1:5432/test]

- database: a fresh one on ``--server``, migrated to head, dropped afterwards;
- app: the real FastAPI app over ASGI in this process (no sockets: the figure is the brain's own work),
  ``GET /api/v1/capabilities`` (no database work of its own), sequential requests after a warm-up;
- the passkey ceremony: begin + finish with a software authenticator (EC P-256) verified by the real
  ``webauthn`` library, the challenge stored and used once.
Prints p50/p95 in milliseconds and requests per second for each credential.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.identity import enrol_person, identity_of, session_cookie  # noqa: E402
from tests.fixtures.postgres import create_database, drop_database  # noqa: E402

from studio_brain.adapters.postgres.migrate import upgrade_to_head  # noqa: E402
from studio_brain.bootstrap import DatabaseTarget, open_brain  # noqa: E402
from studio_brain.settings import load_settings  # noqa: E402
from studio_brain.web.app import create_app  # noqa: E402

ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"  # noqa: S105 - a throwaway token for a loopback benchmark
PATH = "/api/v1/capabilities"


def _summary(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered) * 1000
    p95 = ordered[int(len(ordered) * 0.95) - 1] * 1000
    rate = len(ordered) / sum(ordered)
    return f"{name:<26} p50 {p50:6.2f} ms   p95 {p95:6.2f} ms   {rate:7.0f} req/s"


async def _run(url: str, requests: int, home: Path) -> None:
    os.environ.update(
        STUDIO_BRAIN_DATABASE_URL=url,
        STUDIO_BRAIN_HOME=str(home),
        STUDIO_BRAIN_ADMIN_TOKEN=ADMIN_TOKEN,
        STUDIO_BRAIN_LOG_LEVEL="error",
        STUDIO_BRAIN_SCHEDULER_ENABLED="false",
    )
    async with open_brain(load_settings(), target=DatabaseTarget(url=url, embedded=None)) as brain:
        ada = await enrol_person(brain, "Ada", owner=True)
        credentials = {
            "admin-token header": {"x-studio-brain-admin-token": ADMIN_TOKEN},
            "cockpit session cookie": session_cookie(ada.session),
            "personal token (sbpt_)": {"authorization": f"Bearer {ada.token}"},
        }
        transport = httpx.ASGITransport(app=create_app(brain=brain))
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8787") as client:
            for name, headers in credentials.items():
                for _ in range(50):  # warm-up
                    assert (await client.get(PATH, headers=headers)).status_code == 200
                samples = []
                for _ in range(requests):
                    started = time.perf_counter()
                    response = await client.get(PATH, headers=headers)
                    samples.append(time.perf_counter() - started)
                    assert response.status_code == 200, response.text
                print(_summary(name, samples))
        identity = identity_of(brain)
        ceremonies = []
        for _ in range(max(50, requests // 20)):
            started = time.perf_counter()
            begun = await identity.begin_sign_in()
            answer = ada.authenticator.answer(ada.passkey, json.loads(begun.options))
            await identity.finish_sign_in(begun.challenge_id, json.dumps(answer))
            ceremonies.append(time.perf_counter() - started)
        print(_summary("passkey sign-in ceremony", ceremonies))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    name = f"sb_bench_identity_{uuid.uuid4().hex[:8]}"
    url = create_database(args.server, name)
    try:
        upgrade_to_head(url)
        with tempfile.TemporaryDirectory(prefix="sb-bench-identity-") as home:
            asyncio.run(_run(url, args.requests, Path(home)))
    finally:
        drop_database(args.server, name)


if __name__ == "__main__":
    main()
