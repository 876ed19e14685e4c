"""``studio-brain jobs list|run``: the catalogue an operator sees, a run by hand, clear usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_cli import cli

pytestmark = pytest.mark.postgres


def env(database_url: str, home: Path) -> dict[str, str]:
    return {
        "STUDIO_BRAIN_DATABASE_URL": database_url,
        "STUDIO_BRAIN_HOME": str(home),
        "STUDIO_BRAIN_STATE_SOURCE": "demo",
        "STUDIO_BRAIN_LOG_LEVEL": "warning",
    }


def test_jobs_list_shows_the_catalogue_and_a_run_by_hand_is_recorded(
    database_url: str, tmp_path: Path
) -> None:
    listed = cli("jobs", "list", "--json", env=env(database_url, tmp_path))
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert {"snapshot", "daily-close", "connector-health", "audit-checkpoint", "swarms"} <= set(rows)
    assert rows["snapshot"]["schedule"] == "every 1h"
    assert rows["daily-close"]["schedule"] == "daily 00:05"
    assert rows["audit-checkpoint"]["schedule"] == "daily 00:15"
    assert rows["swarms"]["schedule"] == "after snapshot, daily-close"
    assert rows["snapshot"]["lastStatus"] is None

    result = cli("jobs", "run", "snapshot", env=env(database_url, tmp_path), timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("snapshot: succeeded in ")
    assert lines[1].startswith("swarms: succeeded in ")

    after = cli("jobs", "list", "--json", env=env(database_url, tmp_path))
    rows = {row["name"]: row for row in json.loads(after.stdout)}
    assert rows["snapshot"]["lastStatus"] == "succeeded"
    assert rows["swarms"]["lastStatus"] == "succeeded"


def test_an_unknown_job_is_a_usage_error_naming_the_known_ones(database_url: str, tmp_path: Path) -> None:
    result = cli("jobs", "run", "snapshto", env=env(database_url, tmp_path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "known:" in result.stderr
    assert "snapshot" in result.stderr
    assert "Traceback" not in result.stderr


def test_jobs_run_explains_itself() -> None:
    result = cli("jobs", "run", "--help")
    assert result.returncode == 0
    assert "skipped" in result.stdout
