"""``studio-brain serve`` runs the scheduler beside the HTTP server and stops both cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_catches_up_the_jobs_and_stops_cleanly(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_BRAIN_")}
    env.update(
        STUDIO_BRAIN_DATABASE_URL=database_url,
        STUDIO_BRAIN_HOME=str(tmp_path),
        STUDIO_BRAIN_STATE_SOURCE="demo",
        STUDIO_BRAIN_LOG_LEVEL="warning",
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "studio_brain", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        jobs: set[str] = set()
        while time.monotonic() < deadline and not {"snapshot", "swarms"} <= jobs:
            time.sleep(0.5)
            with psycopg.connect(database_url) as conn:
                rows = conn.execute("SELECT job FROM job_runs WHERE status = 'succeeded'").fetchall()
            jobs = {str(r[0]) for r in rows}
        assert {"snapshot", "swarms"} <= jobs, jobs
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    finally:
        server.send_signal(signal.SIGINT)
        _out, err = server.communicate(timeout=60)
    assert server.returncode == 0, err
    assert "Traceback" not in err
    with psycopg.connect(database_url) as conn:
        running = conn.execute("SELECT count(*) FROM job_runs WHERE status = 'running'").fetchone()
    assert running == (0,)
