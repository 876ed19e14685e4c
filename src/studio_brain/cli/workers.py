"""``serve --workers N`` (issue 18, both cores): the extra HTTP processes, one listening socket shared.

The ``serve`` process keeps what must run once — the migration, the embedded database's start, the
scheduler — and serves HTTP itself; the N-1 others are started only after its database is ready, inherit
its listening socket (the kernel hands each accepted connection to one of them), run the same app with the
scheduler off, and join the same embedded database. Everything they share is in PostgreSQL or in files
written for several processes (docs/operations.md "Using both cores"). A worker that dies is started
again after a back-off; stopping ``serve`` stops them, and a worker whose ``serve`` was killed stops itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass

import uvicorn

from studio_brain.logging import get_logger

log = get_logger(__name__)

#: the back-off before a dead worker is started again: doubling from 1 s, at most this
RESTART_CAP_SECONDS = 30.0
#: a worker that lived this long before dying starts its back-off afresh
HEALTHY_AFTER_SECONDS = 60.0


class GracefulServer(uvicorn.Server):
    """uvicorn re-raises the captured Ctrl-C after shutdown; we want a clean return instead, so the
    database pool closes and the embedded server stops without a traceback."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def listening_socket(host: str, port: int) -> socket.socket:
    """The socket every HTTP process of ``serve`` accepts on, inheritable by the workers."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def worker_environment(base: Mapping[str, str], *, host: str, port: int) -> dict[str, str]:
    """A worker's environment: ``serve``'s own, with the scheduler off and one process (no grandchildren);
    host and port as served, so links and the passkey origin are the same in every process."""
    return dict(base) | {
        "STUDIO_BRAIN_SCHEDULER_ENABLED": "false",
        "STUDIO_BRAIN_WORKERS": "1",
        "STUDIO_BRAIN_HOST": host,
        "STUDIO_BRAIN_PORT": str(port),
    }


@dataclass
class _Slot:
    number: int
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    next_start: float = 0.0


class HttpWorkers:
    """Starts, watches and stops the extra HTTP processes of one ``serve``."""

    def __init__(
        self,
        sock: socket.socket,
        count: int,
        env: Mapping[str, str],
        *,
        clock: Callable[[], float] = time.monotonic,
        poll_seconds: float = 0.5,
    ) -> None:
        self._fd = sock.fileno()
        self._env = dict(env)
        self._clock = clock
        self._poll = poll_seconds
        self._slots = [_Slot(number=n) for n in range(1, count + 1)]
        self._stopping = False

    def pids(self) -> list[int]:
        return [s.process.pid for s in self._slots if s.process is not None and s.process.poll() is None]

    def start(self) -> None:
        for slot in self._slots:
            self._spawn(slot)

    def _spawn(self, slot: _Slot) -> None:
        command = [
            sys.executable,
            "-m",
            "studio_brain.cli.worker_process",
            "--fd",
            str(self._fd),
            "--parent",
            str(os.getpid()),
            "--number",
            str(slot.number),
        ]
        slot.process = subprocess.Popen(command, env=self._env, pass_fds=(self._fd,))
        slot.started_at = self._clock()
        log.info("serve.worker.started", worker=slot.number, pid=slot.process.pid)

    def check(self) -> None:
        """One supervision pass: note workers that died, start again those whose back-off is over."""
        now = self._clock()
        for slot in self._slots:
            process = slot.process
            if process is not None and process.poll() is not None:
                lived = now - slot.started_at
                slot.restarts = 1 if lived >= HEALTHY_AFTER_SECONDS else slot.restarts + 1
                delay = min(RESTART_CAP_SECONDS, 2.0 ** (slot.restarts - 1))
                slot.next_start = now + delay
                slot.process = None
                log.warning(
                    "serve.worker.exited",
                    worker=slot.number,
                    pid=process.pid,
                    returncode=process.returncode,
                    restart_in_seconds=delay,
                )
            if slot.process is None and not self._stopping and now >= slot.next_start:
                self._spawn(slot)

    async def supervise(self) -> None:
        while not self._stopping:
            self.check()
            await asyncio.sleep(self._poll)

    async def stop(self, *, timeout_seconds: float = 15.0) -> None:
        """SIGTERM to every worker (they finish their requests), SIGKILL to any still running after the
        timeout."""
        self._stopping = True
        living = [s.process for s in self._slots if s.process is not None and s.process.poll() is None]
        for process in living:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        deadline = self._clock() + timeout_seconds
        for process in living:
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(process.wait, max(0.0, deadline - self._clock()))
            if process.poll() is None:
                log.warning("serve.worker.killed", pid=process.pid, after_seconds=timeout_seconds)
                process.kill()
                process.wait()
        log.info("serve.workers.stopped", workers=len(self._slots))


@contextlib.asynccontextmanager
async def workers_running(
    sock: socket.socket, count: int, env: Mapping[str, str]
) -> AsyncIterator[HttpWorkers]:
    """``count`` extra HTTP processes on ``sock`` for the length of the block (``serve`` with one
    process does not come here)."""
    workers = HttpWorkers(sock, count, env)
    workers.start()
    watcher = asyncio.create_task(workers.supervise(), name="serve-workers")
    try:
        yield workers
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await workers.stop()
