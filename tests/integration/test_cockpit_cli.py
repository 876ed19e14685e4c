"""The CLI items of issue 14, run as an operator would (subprocess): which home and database, no alembic
chatter, studio-local times, `state diff` from yesterday's close, `jobs list` with the last run,
`capabilities show`, and `connectors health` leaving the server's stored health alone."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from studio_brain.adapters.postgres.connector_health_store import PostgresConnectorHealthStore
from studio_brain.adapters.postgres.database import Database
from studio_brain.bootstrap import DatabaseTarget, open_brain
from studio_brain.domain.connectors import ConnectorHealth, HealthStatus
from studio_brain.domain.snapshot import diff_documents
from studio_brain.settings import load_settings
from tests.integration.test_cli import cli

pytestmark = pytest.mark.postgres

TENANT = "monsoonfire-main"


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "STUDIO_BRAIN_DATABASE_URL": database_url,
        "STUDIO_BRAIN_HOME": str(tmp_path),
        "STUDIO_BRAIN_TIMEZONE": "America/Phoenix",
    }


async def test_state_diff_without_dates_compares_yesterdays_close_with_the_latest_snapshot(
    env: dict[str, str], database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    async with open_brain(load_settings(), target=DatabaseTarget(url=database_url, embedded=None)) as brain:
        demo = brain.state.source("demo")
        await brain.state.backfill(3, demo.at)  # type: ignore[attr-defined]
        yesterday = brain.state.today() - timedelta(days=1)
        close = await brain.state.close_day(yesterday)
        since = await brain.state.since_yesterday()
    assert since.baseline is not None
    assert since.latest is not None

    shown = cli("state", "diff", "--json", env=env)

    assert shown.returncode == 0, shown.stderr
    printed = json.loads(shown.stdout)
    assert printed["fromRunId"] == close.run_id
    assert printed["toRunId"] == since.latest.id
    assert printed["changes"] == diff_documents(since.baseline.document, since.latest.document)
    assert "close of" in printed["from"]
    text = cli("state", "diff", env=env)
    assert f"{yesterday.isoformat()} (the close of {yesterday.isoformat()}" in text.stdout
    closed = cli("state", "close", env=env)
    assert closed.returncode == 0, closed.stderr
    assert f"{yesterday.isoformat()}: late" in closed.stdout, "shown, not redone"


def test_ordinary_commands_say_which_home_and_database_and_print_no_migration_chatter(
    env: dict[str, str], tmp_path: Path
) -> None:
    result = cli("state", "history", env={**env, "STUDIO_BRAIN_LOG_FORMAT": "json"})

    assert result.returncode == 0, result.stderr
    assert "Context impl" not in result.stderr
    assert "Will assume transactional DDL" not in result.stderr
    assert "Running upgrade" not in result.stderr
    assert f"home {tmp_path} (STUDIO_BRAIN_HOME)" in result.stderr
    assert "database: external PostgreSQL at postgresql://" in result.stderr


def test_jobs_list_shows_the_last_run_in_the_studios_local_time(env: dict[str, str]) -> None:
    ran = cli("jobs", "run", "audit-checkpoint", env=env, timeout=120)
    assert ran.returncode == 0, ran.stderr

    listed = cli("jobs", "list", env=env)

    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if line.startswith("audit-checkpoint"))
    match = re.search(r"last: succeeded at (\d{4}-\d\d-\d\d \d\d:\d\d) MST", line)
    assert match, line
    shown = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=UTC) + timedelta(hours=7)
    assert abs((datetime.now(UTC) - shown).total_seconds()) < 600, "Phoenix time, not UTC"
    assert re.search(r"next due \d{4}-\d\d-\d\d \d\d:\d\d MST", listed.stdout)


def test_capabilities_show_prints_the_input_schema_and_names_the_known_ids_for_a_typo(
    env: dict[str, str],
) -> None:
    shown = cli("capabilities", "show", "studio.note.append", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    schema = json.loads(shown.stdout)["inputSchema"]
    assert schema["required"] == ["text"]
    assert schema["properties"]["text"]["maxLength"] == 2000

    typo = cli("capabilities", "show", "studio.note.apend", env=env)
    assert typo.returncode == 2
    assert "studio.note.append" in typo.stderr


async def test_connectors_health_from_the_cli_leaves_the_servers_stored_health_alone(
    env: dict[str, str], database: Database
) -> None:
    store = PostgresConnectorHealthStore(database)
    server_view = ConnectorHealth(
        connector_id="hubitat",
        status=HealthStatus.HEALTHY,
        request_id="server-check",
        checked_at=datetime.now(UTC),
        latency_ms=12.0,
        detail="server's fakes are live",
    )
    await store.record(TENANT, server_view)

    checked = cli("connectors", "health", env=env)

    assert "hubitat" in checked.stdout
    latest = {h.connector_id: h for h in await store.latest(TENANT)}
    assert latest["hubitat"].status is HealthStatus.HEALTHY
    assert latest["hubitat"].request_id == "server-check"
