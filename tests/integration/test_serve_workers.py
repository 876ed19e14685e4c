"""``studio-brain serve --workers 2`` as real processes (issue 18, both cores): the serve process and one
worker share a listening socket and both answer; only serve runs the scheduler; a worker that dies is
started again; stopping serve stops the worker, and a worker whose serve was killed stops itself."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fixtures.auth import TEST_ADMIN_TOKEN, TEST_PROJECT_ID, TokenMinter
from tests.integration.test_gateway_workers import _children, _cpu, _free_port, _lifecycles

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
TENANT = "serve-workers-studio"


@dataclass
class Served:
    process: subprocess.Popen[str]
    base: str

    def workers(self) -> list[int]:
        return _children(self.process.pid)

    def stop(self) -> str:
        """SIGINT (Ctrl-C) and the log it wrote."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        _out, err = self.process.communicate(timeout=60)
        return err


def _wait_for(condition: Callable[[], object], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def _answers(base: str) -> bool:
    try:
        return httpx.get(base + "/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"  # a zombie has exited; only its parent's wait is missing


@pytest.fixture
def served(database_url: str, tmp_path: Path, firebase_certs_file: Path) -> Iterator[Served]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_BRAIN_")} | {
        "STUDIO_BRAIN_DATABASE_URL": database_url,
        "STUDIO_BRAIN_HOME": str(tmp_path / "home"),
        "STUDIO_BRAIN_TENANT_ID": TENANT,
        "STUDIO_BRAIN_FIREBASE_PROJECT_ID": TEST_PROJECT_ID,
        "STUDIO_BRAIN_FIREBASE_CERTS_FILE": str(firebase_certs_file),
        "STUDIO_BRAIN_ADMIN_TOKEN": TEST_ADMIN_TOKEN,
        "STUDIO_BRAIN_STATE_SOURCE": "demo",
        "STUDIO_BRAIN_LOG_FORMAT": "json",
        "STUDIO_BRAIN_LOG_LEVEL": "info",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "studio_brain", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    kit = Served(process=process, base=f"http://127.0.0.1:{port}")
    try:
        _wait_for(lambda: process.poll() is None and _answers(kit.base) and len(kit.workers()) == 1, 90, "up")
        yield kit
    finally:
        left = kit.workers()
        if process.returncode is None:
            kit.stop()  # also reads and closes its log pipe when it already exited
        for pid in left:
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)


async def test_serve_with_two_workers_answers_from_both_processes_and_only_serve_runs_jobs(
    served: Served, tokens: TokenMinter
) -> None:
    processes = [served.process.pid, *served.workers()]
    before = {pid: _cpu(pid) for pid in processes}
    # fresh connections: the kernel hands each to whichever process accepts first
    await asyncio.gather(*(_lifecycles(served.base, tokens, c) for c in range(6)))
    busy = [pid for pid in processes if _cpu(pid) - before[pid] > 0.05]
    assert sorted(busy) == sorted(processes), "serve and its worker both served requests"
    [worker] = served.workers()
    log = served.stop()
    assert served.process.returncode == 0, log[-3000:]
    assert _gone(worker), "stopping serve stopped its worker"
    assert log.count('"scheduler.started"') == 1, "the worker runs no scheduler of its own"
    assert '"serve.workers.stopped"' in log
    assert "Warning" not in log, "the worker process starts without a warning (runpy's double import)"


def test_a_worker_that_dies_is_started_again(served: Served) -> None:
    [first] = served.workers()
    os.kill(first, signal.SIGKILL)
    _wait_for(lambda: [p for p in served.workers() if p != first and not _gone(p)], 30, "a new worker")
    _wait_for(lambda: _answers(served.base), 30, "serve answers")
    log = served.stop()
    assert '"serve.worker.exited"' in log
    assert served.process.returncode == 0


def test_a_worker_stops_itself_when_serve_is_killed(served: Served) -> None:
    [worker] = served.workers()
    served.process.kill()
    served.stop()
    _wait_for(lambda: _gone(worker), 20, "the worker outlived a killed serve")
    assert not _answers(served.base)


def test_serve_refuses_a_worker_count_out_of_range(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_BRAIN_")} | {
        "STUDIO_BRAIN_HOME": str(tmp_path / "home"),
        "STUDIO_BRAIN_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none",
    }
    flag = subprocess.run(
        [sys.executable, "-m", "studio_brain", "serve", "--workers", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert flag.returncode == 2
    assert "--workers must be between 1 and 16, got 0" in flag.stderr
    setting = subprocess.run(
        [sys.executable, "-m", "studio_brain", "serve"],
        env=env | {"STUDIO_BRAIN_WORKERS": "40"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert setting.returncode == 1
    assert "STUDIO_BRAIN_WORKERS" in setting.stderr
