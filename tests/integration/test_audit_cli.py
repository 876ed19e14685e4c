"""`studio-brain audit ...` end to end: exit 0 intact, 1 broken, 2 usage; export and verify --file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from studio_brain.adapters.clock import UUID7Factory
from studio_brain.adapters.postgres.database import Database
from studio_brain.adapters.postgres.event_store import PostgresEventStore
from studio_brain.domain.audit import ActorType, ApprovalState, AuditDraft
from studio_brain.domain.hashing import sha256_hex

pytestmark = pytest.mark.postgres

T = "monsoonfire-main"


def audit(*args: str, home: Path, url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_BRAIN_")}
    env |= {"STUDIO_BRAIN_HOME": str(home), "STUDIO_BRAIN_LOG_LEVEL": "warning"}
    if url is not None:
        env["STUDIO_BRAIN_DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "studio_brain", "audit", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.fixture
async def populated(database: Database) -> None:
    await PostgresEventStore(database, UUID7Factory()).append_many(
        [
            AuditDraft(
                tenant_id=T,
                actor_type=ActorType.STAFF if n % 2 else ActorType.AGENT,
                actor_id=f"actor-{n % 2}",
                action="capability.proposal.approved" if n % 2 else "swarm.ops.drafted",
                target="local",
                rationale=f"event {n}",
                approval_state=ApprovalState.APPROVED if n % 2 else ApprovalState.REQUIRED,
                input_hash=sha256_hex(n),
                request_id=f"req-{n}",
                correlation_id="corr",
            )
            for n in range(1, 31)
        ]
    )


async def test_verify_checkpoint_export_and_verify_file_on_an_intact_log(
    populated: None, database_url: str, tmp_path: Path
) -> None:
    signed = audit("checkpoint", "--json", home=tmp_path, url=database_url)
    assert signed.returncode == 0, signed.stderr
    assert json.loads(signed.stdout)["checkpoint"]["seq"] == 30
    assert (tmp_path / "audit" / "checkpoints.jsonl").exists()

    verified = audit("verify", "--json", home=tmp_path, url=database_url)
    assert verified.returncode == 0, verified.stderr
    report = json.loads(verified.stdout)
    assert report["intact"] is True
    assert report["tenants"][0] | {"lastHash": None} == {
        "tenantId": T,
        "intact": True,
        "checked": 30,
        "lastSeq": 30,
        "lastHash": None,
        "checkpointsTrusted": 1,
        "break": None,
        # written by a store without the keyring: unkeyed rows, sealed by the upgrade checkpoint at seq 30
        "macsChecked": True,
        "keyed": 0,
        "keyedUnchecked": 0,
        "unkeyed": 30,
        "unkeyedSealedBy": None,
        "segments": 1,
    }

    out = tmp_path / "exports" / "audit.jsonl"
    exported = audit("export", "--out", str(out), home=tmp_path, url=database_url)
    assert exported.returncode == 0, exported.stderr
    assert "exported 30 event(s)" in exported.stdout

    # No database configured at all: the export stands on its own.
    offline = audit("verify", "--file", str(out), home=tmp_path)
    assert offline.returncode == 0, offline.stderr
    assert "intact — 30 events" in offline.stdout

    again = audit("export", "--out", str(out), home=tmp_path, url=database_url)
    assert again.returncode == 2
    assert "--force" in again.stderr

    out.write_text(out.read_text().replace('"event 7"', '"event 70"'))
    broken = audit("verify", "--file", str(out), "--json", home=tmp_path)
    assert broken.returncode == 1
    assert json.loads(broken.stdout)["tenants"][0]["break"]["seq"] == 7


async def test_verify_exits_1_and_names_the_break_when_the_log_was_tampered_with(
    populated: None, database_url: str, tmp_path: Path
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE audit_events DISABLE TRIGGER USER")
        conn.execute("DELETE FROM audit_events WHERE seq = 12")
        conn.execute("ALTER TABLE audit_events ENABLE TRIGGER USER")
    result = audit("verify", home=tmp_path, url=database_url)
    assert result.returncode == 1
    assert f"{T}: BROKEN at seq 12 (missing)" in result.stdout
    assert "Traceback" not in result.stderr


async def test_list_shows_recent_events_newest_first_with_filters(
    populated: None, database_url: str, tmp_path: Path
) -> None:
    result = audit(
        "list", "--limit", "3", "--action", "capability.proposal", "--json", home=tmp_path, url=database_url
    )
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert [e["seq"] for e in listed["events"]] == [29, 27, 25]
    assert listed["nextBeforeSeq"] == 25
    text = audit("list", "--approval", "required", "--limit", "1", home=tmp_path, url=database_url)
    assert text.returncode == 0, text.stderr
    assert "swarm.ops.drafted" in text.stdout
    assert "--before-seq 30" in text.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["verify", "--file", "/nonexistent/export.jsonl"],
        ["verify", "--public-key", "00"],
        ["export", "--out", "x.jsonl", "--from-seq", "5", "--to-seq", "2"],
        ["list", "--since", "yesterday"],
    ],
)
def test_usage_errors_exit_2_with_one_line(args: list[str], tmp_path: Path) -> None:
    result = audit(*args, home=tmp_path, url="postgresql://nobody@127.0.0.1:1/none")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr


def test_verify_file_on_a_file_that_is_not_an_export_is_a_usage_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.jsonl"
    bogus.write_text("{}\n")
    result = audit("verify", "--file", str(bogus), home=tmp_path)
    assert result.returncode == 2
    assert "manifest" in result.stderr
