"""Two uvicorn worker processes serving one tenant keep its audit chain gap-free and fork-free (issue 18):
every audited write takes the tenant's advisory lock in PostgreSQL, so the writers of both processes queue
on the same lock and each reads the head the other committed."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from studio_brain.adapters.postgres.database import libpq_url
from studio_brain.bootstrap import DatabaseTarget, open_brain
from studio_brain.settings import load_settings
from tests.fixtures.auth import TEST_ADMIN_TOKEN, TEST_PROJECT_ID, TokenMinter

ROOT = Path(__file__).resolve().parents[2]
TENANT = "workers-studio"
CLIENTS = 8
LIFECYCLES_PER_CLIENT = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return found


def _cpu(pid: int) -> float:
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture
def env(
    database_url: str, tmp_path: Path, firebase_certs_file: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    values = {
        "STUDIO_BRAIN_DATABASE_URL": database_url,
        "STUDIO_BRAIN_HOME": str(tmp_path / "home"),
        "STUDIO_BRAIN_TENANT_ID": TENANT,
        "STUDIO_BRAIN_FIREBASE_PROJECT_ID": TEST_PROJECT_ID,
        "STUDIO_BRAIN_FIREBASE_CERTS_FILE": str(firebase_certs_file),
        "STUDIO_BRAIN_ADMIN_TOKEN": TEST_ADMIN_TOKEN,
        "STUDIO_BRAIN_SCHEDULER_ENABLED": "false",
        "STUDIO_BRAIN_LOG_LEVEL": "warning",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


@pytest.fixture
def two_workers(env: dict[str, str]) -> Iterator[tuple[str, int]]:
    port = _free_port()
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_BRAIN_")} | env
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "studio_brain.web.app:app_from_environment",
            "--factory",
            "--workers",
            "2",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
        ],
        env=child_env,
        cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not start"
            try:
                if (
                    httpx.get(base + "/healthz", timeout=1).status_code == 200
                    and len(_children(process.pid)) >= 2
                ):
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(20)


async def _lifecycles(base: str, tokens: TokenMinter, client: int) -> list[str]:
    requester = tokens.headers(f"workers-req-{client}", staff=True)
    approver = tokens.headers(f"workers-app-{client}", staff=True)
    done: list[str] = []
    # a fresh connection per request: the kernel spreads accepted connections over both workers
    for n in range(LIFECYCLES_PER_CLIENT):
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            created = await http.post(
                "/api/v1/proposals",
                json={
                    "capabilityId": "studio.note.append",
                    "input": {"text": f"w{client}-{n}"},
                    "rationale": "two workers",
                },
                headers=requester,
            )
            assert created.status_code == 201, created.text
            proposal_id = created.json()["proposal"]["id"]
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            approved = await http.post(
                f"/api/v1/proposals/{proposal_id}/approve",
                json={"rationale": "approved by a second person"},
                headers=approver,
            )
            assert approved.status_code == 200, approved.text
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            executed = await http.post(f"/api/v1/proposals/{proposal_id}/execute", json={}, headers=approver)
            assert executed.status_code == 200, executed.text
            assert executed.json()["proposal"]["status"] == "executed"
        done.append(proposal_id)
    return done


async def test_two_worker_processes_keep_one_tenants_audit_chain_gap_free_and_fork_free(
    two_workers: tuple[str, int], tokens: TokenMinter, database_url: str, env: dict[str, str]
) -> None:
    base, supervisor = two_workers
    workers = _children(supervisor)
    before = {pid: _cpu(pid) for pid in workers}
    results = await asyncio.gather(*(_lifecycles(base, tokens, c) for c in range(CLIENTS)))
    busy = [pid for pid in workers if _cpu(pid) - before[pid] > 0.05]
    assert len(busy) >= 2, "both worker processes served requests"
    proposals = [p for batch in results for p in batch]
    assert len(set(proposals)) == CLIENTS * LIFECYCLES_PER_CLIENT

    with psycopg.connect(libpq_url(database_url)) as conn:
        seqs = [
            r[0]
            for r in conn.execute("SELECT seq FROM audit_events WHERE tenant_id = %s ORDER BY seq", (TENANT,))
        ]
        forks = conn.execute(
            "SELECT prev_hash, count(*) FROM audit_events WHERE tenant_id = %s GROUP BY prev_hash HAVING count(*) > 1",
            (TENANT,),
        ).fetchall()
        executed = conn.execute(
            "SELECT count(*) FROM audit_events WHERE tenant_id = %s AND action = 'capability.proposal.executed'",
            (TENANT,),
        ).fetchone()
    assert seqs == list(range(1, len(seqs) + 1)), "gap-free"
    assert forks == [], "fork-free: no two events link to the same predecessor"
    assert executed is not None
    assert executed[0] == len(proposals), "each proposal executed exactly once"

    settings = load_settings()
    async with open_brain(settings, target=DatabaseTarget(url=database_url, embedded=None)) as brain:
        (report,) = await brain.audit.verify(TENANT)
    assert report.intact, report.problem
    assert report.checked == len(seqs)
