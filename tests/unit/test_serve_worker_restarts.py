"""How soon ``serve --workers`` starts a dead worker again: 1 s, doubling to 30 s while it keeps dying at
once, and 1 s again after a worker that had run for a minute (cli/workers.py). Processes are stand-ins
here (the real ones: tests/integration/test_serve_workers.py); the clock is a plain number."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from studio_brain.cli import workers as workers_module
from studio_brain.cli.workers import HttpWorkers


class Process:
    """A started worker: alive until ``die()``."""

    started: ClassVar[list[Process]] = []

    def __init__(self, command: list[str], **_kwargs: Any) -> None:
        self.pid = 1000 + len(Process.started)
        self.returncode: int | None = None
        Process.started.append(self)

    def poll(self) -> int | None:
        return self.returncode

    def die(self) -> None:
        self.returncode = -9


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sock() -> Iterator[socket.socket]:
    with socket.socket() as s:
        yield s


@pytest.fixture(autouse=True)
def stand_in_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    Process.started = []
    monkeypatch.setattr(workers_module.subprocess, "Popen", Process)


def _restart_delays(workers: HttpWorkers, clock: Clock, deaths: int) -> list[float]:
    """Kill the worker each time it is up, and note how long until the next one started."""
    delays = []
    for _ in range(deaths):
        Process.started[-1].die()
        died_at, count = clock.now, len(Process.started)
        while len(Process.started) == count:
            clock.now += 0.5
            workers.check()
        delays.append(clock.now - died_at - 0.5)  # the death itself is seen on the first pass
    return delays


def test_a_worker_that_keeps_dying_at_once_is_restarted_after_a_doubling_back_off_capped_at_30_s(
    sock: socket.socket,
) -> None:
    clock = Clock()
    workers = HttpWorkers(sock, 1, {}, clock=clock)
    workers.start()
    assert _restart_delays(workers, clock, 7) == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_a_worker_that_had_run_a_minute_is_restarted_after_one_second(sock: socket.socket) -> None:
    clock = Clock()
    workers = HttpWorkers(sock, 1, {}, clock=clock)
    workers.start()
    assert _restart_delays(workers, clock, 3) == [1.0, 2.0, 4.0]
    clock.now += 60
    assert _restart_delays(workers, clock, 1) == [1.0]


def test_each_worker_slot_is_watched_on_its_own(sock: socket.socket) -> None:
    clock = Clock()
    workers = HttpWorkers(sock, 2, {}, clock=clock)
    workers.start()
    first, second = Process.started
    first.die()
    clock.now += 0.5
    workers.check()
    assert workers.pids() == [second.pid]  # the dead one waits out its back-off; the other serves on
    clock.now += 1.0
    workers.check()
    assert len(workers.pids()) == 2
