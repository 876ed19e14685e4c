"""The gateway CLI: two signed-in persons show separation of duties (each CLI acts as the person whose
personal token it holds); bad input exits 2 with one line; lint lists every violation and exits 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from studio_brain.cli.main import app
from tests.fixtures.identity import cli_env_for, enrol_people_for_cli

pytestmark = pytest.mark.postgres


@pytest.fixture
def env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "STUDIO_BRAIN_DATABASE_URL": database_url,
        "STUDIO_BRAIN_HOME": str(tmp_path),
        "STUDIO_BRAIN_LOG_LEVEL": "error",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    people = enrol_people_for_cli(("Owner", True), ("Manager", False))
    for name, who in people.items():
        values[name.lower()] = json.dumps(cli_env_for(who, tmp_path / f"config-{name.lower()}"))
    return values


_ENV: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _people_env(request: pytest.FixtureRequest) -> None:
    _ENV.clear()
    if "env" in request.fixturenames:
        values = request.getfixturevalue("env")
        _ENV.update({k: v for k, v in values.items() if k in {"owner", "manager"}})


def cli(*args: str, actor: str = "owner") -> tuple[int, str, str]:
    """Run the CLI as ``actor``: the person whose personal token that CLI's config holds."""
    result = CliRunner().invoke(app, list(args), env=json.loads(_ENV[actor]) if actor in _ENV else None)
    return result.exit_code, result.stdout, result.stderr


def test_a_second_identity_approves_what_the_first_proposed_and_the_note_is_written(
    env: dict[str, str],
) -> None:
    code, out, _ = cli(
        "proposals",
        "create",
        "studio.note.append",
        "--input",
        '{"text": "glaze room mopped"}',
        "--rationale",
        "daily cleaning log",
        "--json",
    )
    assert code == 0
    proposal_id = json.loads(out)["id"]
    code, _, err = cli("proposals", "approve", proposal_id, "--rationale", "approving my own work")
    assert code == 1
    assert (
        err.strip().splitlines()[-1]
        == "studio-brain: refused (SELF_APPROVAL_FORBIDDEN): the requester cannot approve their own proposal"
    )
    assert cli("proposals", "approve", proposal_id, "--rationale", "checked, fine", actor="manager")[0] == 0
    code, out, _ = cli("proposals", "execute", proposal_id, "--json", actor="manager")
    assert code == 0
    assert json.loads(out)["status"] == "executed"


def test_bad_input_exits_2_with_one_line_and_no_traceback(env: dict[str, str]) -> None:
    code, _, err = cli(
        "proposals", "create", "studio.note.append", "--input", "{oops", "--rationale", "daily cleaning log"
    )
    assert code == 2
    assert err.count("\n") == 1
    assert "not valid JSON" in err
    # no flag or setting chooses an identity any more
    code, _, err = cli("proposals", "list", "--as", "stranger")
    assert code == 2
    assert "No such option" in err


def test_lint_lists_every_violation_and_exits_1(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "registry.toml"
    bad.write_text('[[capability]]\nid = "x.y"\ntarget = "mainframe"\nmode = "write"\nrisk = "critical"\n')
    code, out, _ = cli("capabilities", "lint", "--file", str(bad), "--json")
    assert code == 1
    found = {v["code"] for v in json.loads(out)["violations"]}
    assert {"FIELD_INVALID", "FIELD_MISSING", "SCHEMA_INVALID"} <= found
    assert cli("capabilities", "lint")[0] == 0


def test_the_brain_refuses_to_start_on_an_invalid_registry(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "registry.toml"
    bad.write_text('[[capability]]\nid = "x.y"\nmode = "write"\n')
    monkeypatch.setenv("STUDIO_BRAIN_GATEWAY_REGISTRY_FILE", str(bad))
    code, _, err = cli("proposals", "list")
    assert code == 1
    assert "capability registry" in err
    assert "is invalid" in err
    assert "Traceback" not in err
