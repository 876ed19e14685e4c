"""The embedded PostgreSQL after a host crash or a ``kill -9`` (issue 13).

Faults: a reused PID in a stale ``postmaster.pid`` (what a host crash and reboot leave) stopped the brain
from starting with a raw ``psycopg.OperationalError`` traceback while ``doctor`` blamed STUDIO_BRAIN_HOME;
one ``kill -9`` left a dead PID in ``pgdata/.handle_pids.json``, so the server was never stopped again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from studio_brain.adapters.postgres.embedded import (
    HANDLE_LIST,
    PID_FILE,
    _any_postgres_on,
    embedded_fix,
    read_pid_file,
    start_embedded,
    stop_embedded,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def unrelated_process() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is not PostgreSQL: the PID a reboot may hand to anything."""
    process = subprocess.Popen(["sleep", "120"])
    try:
        yield process
    finally:
        process.kill()
        process.wait(timeout=10)


def _wait_stopped(data_dir: Path, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _any_postgres_on(data_dir) is None:
            return True
        time.sleep(0.2)
    return False


def test_a_stale_postmaster_pid_naming_a_reused_pid_is_cleared_and_the_server_starts(
    tmp_path: Path, unrelated_process: subprocess.Popen[bytes]
) -> None:
    server = start_embedded(tmp_path)
    data_dir = server.data_dir
    recorded = (data_dir / PID_FILE).read_text()
    stop_embedded(server)
    assert _wait_stopped(data_dir)

    # the host crashed: the file survived, and its PID now belongs to some other program
    lines = recorded.splitlines()
    lines[0] = str(unrelated_process.pid)
    (data_dir / PID_FILE).write_text("\n".join(lines) + "\n")
    assert "is stale" in embedded_fix(data_dir)

    server = start_embedded(tmp_path)
    try:
        with psycopg.connect(server.url, connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        info = read_pid_file(data_dir)
        assert info is not None
        assert info.pid != unrelated_process.pid
        assert (data_dir / f"{PID_FILE}.stale").exists()  # kept for whoever investigates
    finally:
        stop_embedded(server)
    assert _wait_stopped(data_dir)
    assert unrelated_process.poll() is None  # nobody touched the process that owns the PID now


def test_a_killed_process_is_dropped_from_the_handles_so_the_last_one_stops_the_server(
    tmp_path: Path,
) -> None:
    code = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from studio_brain.adapters.postgres.embedded import start_embedded
        start_embedded(Path({str(tmp_path)!r}))
        print("started", flush=True)
        time.sleep(120)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "started"
        data_dir = tmp_path / "pgdata"
        assert json.loads((data_dir / HANDLE_LIST).read_text()) == [child.pid]
        os.kill(child.pid, signal.SIGKILL)  # no atexit, no cleanup: its PID stays in the list
        child.wait(timeout=10)
    finally:
        child.kill()
        child.wait(timeout=10)
        assert child.stdout is not None
        child.stdout.close()

    server = start_embedded(tmp_path)  # joins the server the killed process left running
    assert json.loads((data_dir / HANDLE_LIST).read_text()) == [os.getpid()]
    stop_embedded(server)
    assert _wait_stopped(data_dir), "the last live process must stop the server"


def test_doctor_starts_past_a_stale_pid_file_instead_of_blaming_the_home(
    tmp_path: Path, unrelated_process: subprocess.Popen[bytes]
) -> None:
    server = start_embedded(tmp_path)
    data_dir = server.data_dir
    recorded = (data_dir / PID_FILE).read_text().splitlines()
    stop_embedded(server)
    assert _wait_stopped(data_dir)
    recorded[0] = str(unrelated_process.pid)
    (data_dir / PID_FILE).write_text("\n".join(recorded) + "\n")

    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_BRAIN_")}
    env["STUDIO_BRAIN_HOME"] = str(tmp_path)
    doctor = subprocess.run(
        [sys.executable, "-m", "studio_brain", "doctor"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    output = doctor.stdout + doctor.stderr
    assert "Traceback" not in output
    assert "unset STUDIO_BRAIN_HOME" not in output
    assert "embedded PostgreSQL answers" in output, output
    assert _wait_stopped(data_dir)
