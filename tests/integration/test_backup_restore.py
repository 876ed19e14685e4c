"""`studio-brain backup` and `restore` round-trip (issue 14): the brain's own database (not the empty
``postgres`` one), the audit export, checkpoint file and keys, restored into an empty home, the audit
chain verified and the state compared. Run through the real CLI in a subprocess, as an operator would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from studio_brain.bootstrap import DatabaseTarget, open_brain
from studio_brain.settings import load_settings

pytestmark = pytest.mark.postgres

TENANT = "monsoonfire-main"


def cli(*args: str, home: Path, database_url: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_BRAIN_")}
    env |= {"STUDIO_BRAIN_HOME": str(home), "STUDIO_BRAIN_LOG_LEVEL": "warning"}
    if database_url is not None:
        env["STUDIO_BRAIN_DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "studio_brain", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )


async def seed_brain(home: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """A brain with history, a close, audit events and a signed checkpoint; returns what must come back."""
    monkeypatch.setenv("STUDIO_BRAIN_HOME", str(home))
    monkeypatch.setenv("STUDIO_BRAIN_DATABASE_URL", database_url)
    async with open_brain(load_settings(), target=DatabaseTarget(url=database_url, embedded=None)) as brain:
        demo = brain.state.source("demo")
        await brain.state.backfill(5, demo.at)  # type: ignore[attr-defined]
        brain.state.set_default_source("demo")
        close = await brain.state.close_day(brain.state.today() - date.resolution)
        checkpoint = await brain.audit.checkpoint(TENANT)
        latest = await brain.state_store.latest_snapshot(TENANT)
        history = await brain.state.history(10)
        head = await brain.audit.events.head(TENANT)
    assert checkpoint is not None
    assert latest is not None
    assert head is not None
    return {
        "latest": latest,
        "history": [r.id for r in history],
        "close": close,
        "head": (head.seq, head.hash),
    }


async def restored_state(home: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    monkeypatch.setenv("STUDIO_BRAIN_HOME", str(home))
    monkeypatch.setenv("STUDIO_BRAIN_DATABASE_URL", database_url)
    async with open_brain(load_settings(), target=DatabaseTarget(url=database_url, embedded=None)) as brain:
        [report] = await brain.audit.verify(TENANT)
        head = await brain.audit.events.head(TENANT)
        assert head is not None
        return {
            "latest": await brain.state_store.latest_snapshot(TENANT),
            "history": [r.id for r in await brain.state.history(10)],
            "close": await brain.state.close_of(brain.state.today() - date.resolution),
            "head": (head.seq, head.hash),
            "intact": report.intact,
            "checkpoints": report.checkpoints_trusted,
        }


async def test_a_backup_restores_into_an_empty_home_with_an_intact_chain_and_the_same_state(
    tmp_path: Path, database_url: str, empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    source_home, target_home, out = tmp_path / "a", tmp_path / "b", tmp_path / "backup"
    before = await seed_brain(source_home, database_url, monkeypatch)

    made = cli("backup", "--to", str(out), "--json", home=source_home, database_url=database_url)
    assert made.returncode == 0, made.stderr
    manifest = json.loads(made.stdout)
    assert manifest["tables"]["snapshot_runs"] >= 6, "the brain's own database, not an empty one"
    assert manifest["tables"]["daily_closes"] == 1
    assert {"database.dump", "audit.jsonl", "checkpoints.jsonl", "keys/audit-signing.key"} <= set(
        manifest["files"]
    )
    assert (out / "keys" / "audit-signing.key").stat().st_mode & 0o077 == 0

    restored = cli("restore", str(out), home=target_home, database_url=empty_database_url)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "audit chain: intact" in restored.stdout
    assert "match the backup's manifest" in restored.stdout

    after = await restored_state(target_home, empty_database_url, monkeypatch)
    assert after["intact"] is True
    assert after["checkpoints"] >= 1, "the checkpoint file and signing key came back and verify"
    assert {k: after[k] for k in before} == before
    audit_export = cli(
        "audit", "verify", "--file", str(out / "audit.jsonl"), home=target_home, database_url=None
    )
    assert audit_export.returncode == 0, audit_export.stdout + audit_export.stderr


async def test_restore_refuses_a_home_that_is_not_empty_and_a_backup_that_was_altered(
    tmp_path: Path, database_url: str, empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, out = tmp_path / "a", tmp_path / "backup"
    await seed_brain(home, database_url, monkeypatch)
    assert cli("backup", "--to", str(out), home=home, database_url=database_url).returncode == 0

    into_live = cli("restore", str(out), home=home, database_url=empty_database_url)
    assert into_live.returncode == 2
    assert "needs an empty home" in into_live.stderr

    with (out / "database.dump").open("r+b") as dump:
        dump.seek(200)
        dump.write(b"\x00")
    altered = cli("restore", str(out), home=tmp_path / "fresh", database_url=empty_database_url)
    assert altered.returncode == 1
    assert "database.dump does not match the manifest" in altered.stderr
    assert not (tmp_path / "fresh" / "keys").exists(), "nothing was restored"


async def test_restore_into_an_embedded_database_works_as_root_with_the_wheels_tools(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, out, fresh = tmp_path / "a", tmp_path / "backup", tmp_path / "embedded-home"
    before = await seed_brain(home, database_url, monkeypatch)
    assert cli("backup", "--to", str(out), home=home, database_url=database_url).returncode == 0

    restored = cli("restore", str(out), "--json", home=fresh, database_url=None)

    assert restored.returncode == 0, restored.stdout + restored.stderr
    report = json.loads(restored.stdout)
    assert report["auditIntact"] is True
    assert report["differences"] == []
    assert report["tables"]["snapshot_runs"] == len(before["history"])  # type: ignore[arg-type]
    assert (fresh / "pgdata").is_dir()
