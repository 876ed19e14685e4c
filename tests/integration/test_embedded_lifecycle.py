"""The embedded PostgreSQL: started on demand, shared by a second process, stopped by Ctrl-C, restartable."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_BRAIN_")}
    env["STUDIO_BRAIN_HOME"] = str(home)
    return env


def _wait_ready(port: int, timeout: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                body: dict[str, object] = json.loads(response.read())
                return body
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"server on {port} never became ready")


def _postgres_running_in(data_dir: Path) -> bool:
    for proc in psutil.process_iter(attrs=["name", "cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if proc.info.get("name") == "postgres" and any(str(data_dir) in part for part in cmdline):
            return True
    return False


def _serve(home: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "studio_brain", "serve", "--port", str(port)],
        env=_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_serve_starts_the_embedded_database_shares_it_and_stops_it_on_ctrl_c(tmp_path: Path) -> None:
    home = tmp_path / "home"
    port = _free_port()
    server = _serve(home, port)
    try:
        body = _wait_ready(port)
        assert body["ok"] is True
        assert _postgres_running_in(home / "pgdata")

        # A second process on the same home joins the running server instead of starting another.
        second = subprocess.run(
            [sys.executable, "-m", "studio_brain", "migrate"],
            env=_env(home),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert second.returncode == 0, second.stderr
        assert "already at" in second.stdout
        assert _postgres_running_in(home / "pgdata"), "the second process must not stop a shared server"
    finally:
        server.send_signal(signal.SIGINT)
        _, stderr = server.communicate(timeout=60)
    assert server.returncode == 0, stderr
    assert "Traceback" not in stderr
    deadline = time.monotonic() + 10
    while _postgres_running_in(home / "pgdata") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _postgres_running_in(home / "pgdata"), "Ctrl-C must stop the embedded server"

    # The next start works on the same data.
    again = _serve(home, port)
    try:
        assert _wait_ready(port)["ok"] is True
    finally:
        again.send_signal(signal.SIGINT)
        again.communicate(timeout=60)
    assert again.returncode == 0
