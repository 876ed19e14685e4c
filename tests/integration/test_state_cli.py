"""The StudioState command line: snapshot, state show/diff/history, rebuild, the demo history; clear failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from studio_brain.bootstrap import DatabaseTarget, open_brain
from studio_brain.cli.main import app
from studio_brain.cli.state import prepare_demo_state, render_history
from studio_brain.domain.errors import ConfigError
from studio_brain.domain.state import Completeness, SnapshotRun
from studio_brain.logging import configure_logging
from studio_brain.settings import load_settings
from tests.integration.test_cli import cli

pytestmark = pytest.mark.postgres

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "studio-state.schema.json").read_text(encoding="utf-8")
)


def invoke(args: list[str], env: dict[str, str | None]) -> Any:
    """In-process run, only for usage errors (decided before logging is configured for the process)."""
    result = CliRunner().invoke(app, args, env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {"STUDIO_BRAIN_DATABASE_URL": database_url, "STUDIO_BRAIN_HOME": str(tmp_path)}


def test_snapshot_computes_stores_and_prints_a_schema_valid_snapshot(env: dict[str, str]) -> None:
    computed = cli("snapshot", "--source", "demo", "--json", env=env)
    assert computed.returncode == 0, computed.stderr
    printed = json.loads(computed.stdout)
    jsonschema.validate(printed["snapshot"], SCHEMA)
    assert printed["completeness"] == "full"

    shown = cli("state", "show", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == printed

    text = cli("state", "show", "--date", printed["snapshot"]["snapshotDate"], env=env)
    assert "counts.batchesActive" in text.stdout
    assert "sourceHashes.firestore" in text.stdout


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("state", "show", "--date", "2026-13-01"), "--date"),
        (("state", "show", "--date", "yesterday"), "--date"),
        (("state", "diff", "--from", "2026-11-02", "--to", "11/03/2026"), "--to"),
        (("state", "diff", "--from", "2026-11-05", "--to", "2026-11-01"), "--from"),
        (("state", "history", "--days", "0"), "--days"),
        (("snapshot", "--source", "stripe"), "--source"),
    ],
)
def test_bad_input_is_a_usage_error_naming_the_option(
    args: tuple[str, ...], option: str, tmp_path: Path
) -> None:
    # in-process: usage errors are decided before any database or cloud is touched
    result = invoke(list(args), env={"STUDIO_BRAIN_HOME": str(tmp_path)})
    assert result.exit_code == 2
    assert option in result.stderr


def test_an_unreachable_emulator_fails_with_the_fix_and_stores_nothing(env: dict[str, str]) -> None:
    result = cli("snapshot", "--source", "firestore", env={**env, "FIRESTORE_EMULATOR_HOST": "127.0.0.1:1"})
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()[-1:]
    assert "emulator at 127.0.0.1:1 does not answer" in line
    assert "Traceback" not in result.stderr

    shown = cli("state", "show", env=env)
    assert shown.returncode == 1
    assert "no complete snapshot yet" in shown.stderr


def test_missing_google_credentials_say_how_to_provide_them(env: dict[str, str], tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_BRAIN_")}
    clean.pop("FIRESTORE_EMULATOR_HOST", None)  # read "real" Firestore, whose credentials are missing
    clean.update(env, GOOGLE_APPLICATION_CREDENTIALS=str(tmp_path / "absent.json"))
    result = subprocess.run(
        [sys.executable, "-m", "studio_brain", "snapshot", "--source", "firestore"],
        capture_output=True,
        text=True,
        env=clean,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "gcloud auth application-default login" in result.stderr
    assert "Traceback" not in result.stderr


def test_rebuild_replays_the_audit_log_and_takes_a_fresh_read(env: dict[str, str]) -> None:
    assert cli("snapshot", "--source", "demo", env=env).returncode == 0
    replay_only = cli("rebuild", "--no-cloud", env=env)
    assert replay_only.returncode == 0, replay_only.stderr
    assert "restored 1 runs" in replay_only.stdout

    with_read = cli("rebuild", "--source", "demo", env=env)
    assert with_read.returncode == 0, with_read.stderr
    assert "fresh snapshot" in with_read.stdout


def test_a_bad_rules_file_stops_the_command_with_one_line(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "rules.toml"
    bad.write_text(
        'version = "x"\n[[rules]]\ntarget = "counts.nope"\ncollection = "batches"\n', encoding="utf-8"
    )
    result = cli("snapshot", "--source", "demo", env={**env, "STUDIO_BRAIN_STATE_RULES_FILE": str(bad)})
    assert result.returncode == 1
    assert "unknown snapshot field 'counts.nope'" in result.stderr
    assert "Traceback" not in result.stderr


async def test_the_demo_loads_sixty_days_of_history_once_one_snapshot_per_day(
    database_url: str, tmp_path: Path
) -> None:
    # how long the load takes is measured in bench/, not asserted here (a shared machine)
    configure_logging(level="warning", fmt="json")  # to this test's stderr, whatever ran before
    settings = load_settings(database_url=database_url, home=tmp_path)
    target = DatabaseTarget(url=database_url, embedded=None)
    async with open_brain(settings, target=target) as brain:
        assert await prepare_demo_state(brain) == 61
        assert await prepare_demo_state(brain) == 0
        assert brain.state.default_source == "demo", "scheduled snapshots in the demo read the demo studio"
        history = await brain.state.history(61)
        assert len(history) == 61
        days = [r.snapshot_date for r in history]
        assert days == sorted(set(days)), "one snapshot per day, oldest first"
        assert (days[-1] - days[0]).days == 60
        for day in (days[0], days[-1]):
            assert len(await brain.state_store.runs_for_date(brain.tenant_id, day)) == 1
    result = cli(
        "state",
        "history",
        "--days",
        "5",
        env={"STUDIO_BRAIN_DATABASE_URL": database_url, "STUDIO_BRAIN_HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["date", "active", "closed"]
    assert len(lines) == 6


def _run(day: date, active: int | None) -> SnapshotRun:
    counts: dict[str, Any] = {"batchesActive": active}
    return SnapshotRun(
        id=str(day),
        tenant_id="t",
        snapshot_date=day,
        generated_at=datetime(2026, 11, 25, tzinfo=UTC),
        completeness=Completeness.FULL,
        source="demo",
        document={"counts": counts, "ops": {}, "finance": {}},
        snapshot_hash="0" * 64,
    )


def test_the_history_table_marks_trends_day_over_day_on_a_terminal() -> None:
    first = date(2026, 11, 20)
    runs = [
        _run(first, 5),
        _run(first + timedelta(days=1), 7),
        _run(first + timedelta(days=2), 4),
        _run(first + timedelta(days=3), 4),
    ]
    with_arrows = render_history(runs, arrows=True)
    assert [line.split()[1] for line in with_arrows[1:]] == ["5", "7↑", "4↓", "4"]
    plain = render_history(runs, arrows=False)
    assert [line.split()[1] for line in plain[1:]] == ["5", "7", "4", "4"]


async def test_a_finance_endpoint_without_a_refresh_token_stops_start_up(
    database_url: str, tmp_path: Path
) -> None:
    settings = load_settings(
        database_url=database_url, home=tmp_path, functions_finance_url="https://functions.example/finance"
    )
    with pytest.raises(ConfigError, match="STUDIO_BRAIN_FUNCTIONS_REFRESH_TOKEN"):
        async with open_brain(settings, target=DatabaseTarget(url=database_url, embedded=None)):
            pass


def test_a_finance_endpoint_must_be_a_url() -> None:
    with pytest.raises(ConfigError, match="STUDIO_BRAIN_FUNCTIONS_FINANCE_URL"):
        load_settings(functions_finance_url="functions.example/finance")
