"""Shared by the HTTP benchmarks: a real uvicorn server on loopback trusting a local Firebase signing key,
RS256 Firebase ID tokens minted the way the Portal sends them, and CPU accounting from the kernel's own
per-process counters (``/proc/PID/stat`` utime + stime) for the server's processes and the PostgreSQL
backends serving its database (pids from ``pg_stat_activity``).

CPU per request is the figure to compare on a shared, loaded machine: wall-clock latency there is mostly
queueing for a core, while the CPU a process spent on the work is not.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fixtures.auth import TEST_PROJECT_ID, TokenMinter, make_signing_key  # noqa: E402

from studio_brain.adapters.postgres.database import libpq_url  # noqa: E402

_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of one process in seconds; None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_mb(pid: int) -> float:
    """Resident memory of the process and its descendants (with --workers N: the supervisor and workers)."""
    total = 0
    for member in process_tree(pid):
        for line in Path(f"/proc/{member}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def process_tree(pid: int) -> list[int]:
    """The process and all its descendants (uvicorn --workers N: the supervisor and its workers)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                continue
    return found


def backend_pids(url: str) -> list[int]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend'"
        ).fetchall()
    return [int(r[0]) for r in rows]


@dataclass
class CpuSnapshot:
    server: dict[int, float] = field(default_factory=dict)
    database: dict[int, float] = field(default_factory=dict)


def snapshot(server_pid: int, url: str) -> CpuSnapshot:
    shot = CpuSnapshot()
    for pid in process_tree(server_pid):
        if (cpu := cpu_seconds(pid)) is not None:
            shot.server[pid] = cpu
    for pid in backend_pids(url):
        if (cpu := cpu_seconds(pid)) is not None:
            shot.database[pid] = cpu
    return shot


def _delta(before: dict[int, float], after: dict[int, float]) -> float:
    # a process born during the window counts in full; one that died in it is lost (the pool keeps its
    # connections, so after the warm-up none should)
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def cpu_spent(before: CpuSnapshot, after: CpuSnapshot) -> tuple[float, float]:
    """(server seconds, PostgreSQL backend seconds) between two snapshots."""
    return _delta(before.server, after.server), _delta(before.database, after.database)


@dataclass(frozen=True)
class FirebaseTrust:
    """A local signing key the server trusts (``STUDIO_BRAIN_FIREBASE_CERTS_FILE``) and a token minter."""

    minter: TokenMinter
    certs_file: Path

    @classmethod
    def create(cls, home: Path) -> FirebaseTrust:
        key = make_signing_key("bench-key-1")
        home.mkdir(parents=True, exist_ok=True)
        certs = home / "firebase-certs.json"
        certs.write_text(json.dumps({key.key_id: key.certificate_pem}), encoding="utf-8")
        return cls(minter=TokenMinter(key=key), certs_file=certs)

    def env(self) -> dict[str, str]:
        return {
            "STUDIO_BRAIN_FIREBASE_PROJECT_ID": TEST_PROJECT_ID,
            "STUDIO_BRAIN_FIREBASE_CERTS_FILE": str(self.certs_file),
        }

    def staff_headers(self, uid: str) -> dict[str, str]:
        """What the Portal sends for a staff user: ``authorization: Bearer <RS256 ID token>``."""
        return self.minter.headers(uid, staff=True, expires_in=3600)


def start_server(
    url: str,
    home: Path,
    workers: int,
    extra_env: dict[str, str],
    *,
    profile: Path | None = None,
    serve: bool = False,
) -> tuple[subprocess.Popen[bytes], str]:
    """``uvicorn … --factory --workers N`` on a free loopback port; returns when /healthz answers.

    ``profile``: run the (single-worker) server under cProfile, its stats written there when it stops;
    the CPU figures of such a run are the profiler's, not the server's. ``serve``: run the product's own
    ``studio-brain serve --workers N`` instead (its scheduler off, like uvicorn's here)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_BRAIN_")}
    env.update(
        STUDIO_BRAIN_DATABASE_URL=url,
        STUDIO_BRAIN_HOME=str(home),
        STUDIO_BRAIN_LOG_LEVEL="warning",
        STUDIO_BRAIN_SCHEDULER_ENABLED="false",
        **extra_env,
    )
    command = [
        sys.executable,
        *([str(ROOT / "bench" / "profiled_uvicorn.py"), str(profile)] if profile else ["-m", "uvicorn"]),
        "studio_brain.web.app:app_from_environment",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    if workers > 1:
        command += ["--workers", str(workers)]
    if serve:
        command = [sys.executable, "-m", "studio_brain", "serve", "--host", "127.0.0.1", "--port", str(port)]
        command += ["--workers", str(workers)]
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL if serve else None)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the API server exited with status {process.returncode} (its error is above)")
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("the API server did not start within 90 s")


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages, as ``uptime`` prints them."""
    return ", ".join(Path("/proc/loadavg").read_text().split()[:3])
