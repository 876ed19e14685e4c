"""Leader election proven with two real processes on one database: every scheduled tick runs exactly once,
only the leader runs jobs, and when the leader dies the other brain takes over.

Each process is ``python -m studio_brain.scheduler`` (the same loop ``serve`` runs beside its server),
reading the demo studio, with the swarms job scheduled every second.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def start_brain(database_url: str, home: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_BRAIN_")}
    env.update(
        STUDIO_BRAIN_DATABASE_URL=database_url,
        STUDIO_BRAIN_HOME=str(home),
        STUDIO_BRAIN_STATE_SOURCE="demo",
        STUDIO_BRAIN_SCHEDULE_SWARMS="every 1s",
        STUDIO_BRAIN_SCHEDULER_LEADER_CHECK_SECONDS="0.5",
        STUDIO_BRAIN_LOG_FORMAT="json",
        STUDIO_BRAIN_LOG_LEVEL="warning",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "studio_brain.scheduler"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "scheduler running" in line, process.stderr.read() if process.poll() is not None else line
    return process


def swarm_runs(database_url: str) -> list[tuple[str, str, str, str]]:
    """(runner, trigger, scheduledFor, status) of every swarms run, in start order."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT summary->>'runner', summary->>'trigger', coalesce(summary->>'scheduledFor', ''), status"
            " FROM job_runs WHERE job = 'swarms' ORDER BY started_at, id"
        ).fetchall()
    return [(str(a), str(b), str(c), str(d)) for a, b, c, d in rows]


def wait_until(predicate: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_two_brains_on_one_database_run_each_job_once_and_fail_over(
    database_url: str, tmp_path: Path
) -> None:
    first = start_brain(database_url, tmp_path / "a")
    second = start_brain(database_url, tmp_path / "b")
    brains = {first, second}
    try:
        wait_until(lambda: sum(1 for r in swarm_runs(database_url) if r[1] == "schedule") >= 4, timeout=60)
        before = swarm_runs(database_url)
        leader = {runner for runner, trigger, _, _ in before if trigger == "schedule"}
        assert len(leader) == 1, f"two brains ran scheduled jobs at once: {leader}"
        [leader_runner] = leader
        leading = first if leader_runner.endswith(f":{first.pid}") else second
        follower = second if leading is first else first
        assert leader_runner.endswith(f":{leading.pid}")

        leading.send_signal(signal.SIGKILL)  # a crash: no clean release, the server frees the lock
        leading.communicate(timeout=10)
        brains.discard(leading)
        wait_until(
            lambda: any(
                r[0].endswith(f":{follower.pid}") and r[1] == "schedule" for r in swarm_runs(database_url)
            ),
            timeout=30,
        )
        time.sleep(2)
    finally:
        for brain in brains:
            brain.send_signal(signal.SIGTERM)
        for brain in brains:
            brain.communicate(timeout=30)

    after = swarm_runs(database_url)
    scheduled = [r for r in after if r[1] == "schedule" and r[3] != "skipped"]
    ticks = Counter(when for _, _, when, _ in scheduled)
    assert ticks, "no scheduled runs recorded"
    assert max(ticks.values()) == 1, f"a tick ran twice: {[t for t, n in ticks.items() if n > 1]}"
    runners = [runner for runner, _, _, _ in scheduled]
    # the old leader's runs all come before the new leader's: never both at once
    switch = runners.index(next(r for r in runners if r.endswith(f":{follower.pid}")))
    assert all(r.endswith(f":{leading.pid}") for r in runners[:switch])
    assert all(r.endswith(f":{follower.pid}") for r in runners[switch:])
    assert follower.returncode == 0
