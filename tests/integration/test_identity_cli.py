"""The CLI acts as one person: `studio-brain login` turns a one-time cockpit code into a personal token kept
0600 in the user's config; no setting or flag chooses an identity; without a login it is break-glass."""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from typer.testing import CliRunner

from studio_brain.bootstrap import Brain, open_brain
from studio_brain.cli.main import app
from studio_brain.settings import load_settings
from tests.fixtures.identity import TestPerson, cli_env_for, enrol_people_for_cli, identity_of

pytestmark = pytest.mark.postgres

T = TypeVar("T")


@pytest.fixture
def people(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, TestPerson]:
    monkeypatch.setenv("STUDIO_BRAIN_DATABASE_URL", database_url)
    monkeypatch.setenv("STUDIO_BRAIN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STUDIO_BRAIN_LOG_LEVEL", "error")
    return enrol_people_for_cli(("Ada", True), ("Grace", False))


def with_brain(use: Callable[[Brain], Awaitable[T]]) -> T:
    async def _main() -> T:
        async with open_brain(load_settings()) as brain:
            return await use(brain)

    return asyncio.run(_main())


def cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return (
        result.exit_code,
        result.stdout,
        result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "",
    )


def propose(env: dict[str, str]) -> str:
    code, out, err = cli(
        "proposals", "create", "studio.note.append", "--input", '{"text": "kiln swept"}',
        "--rationale", "daily cleaning log", "--json", env=env,
    )  # fmt: skip
    assert code == 0, err
    proposal_id: str = json.loads(out)["id"]
    return proposal_id


def test_login_turns_a_one_time_cockpit_code_into_a_private_personal_token(
    people: dict[str, TestPerson], tmp_path: Path
) -> None:
    grace = people["Grace"]
    code = with_brain(lambda b: identity_of(b).credentials.issue_cli_code(grace.principal))
    env = {"XDG_CONFIG_HOME": str(tmp_path / "grace-laptop")}
    exit_code, out, err = cli("login", "--code", code, "--label", "laptop", env=env)
    assert exit_code == 0, err
    assert f"signed in as Grace ({grace.person_id})" in out
    stored = tmp_path / "grace-laptop" / "studio-brain" / "credentials.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert json.loads(stored.read_text())["token"].startswith("sbpt_")
    assert code not in stored.read_text()
    assert cli("whoami", env=env)[1].startswith(f"Grace ({grace.person_id})")
    again = cli("login", "--code", code, env={"XDG_CONFIG_HOME": str(tmp_path / "mallory")})
    assert again[0] == 1
    assert "LOGIN_CODE_INVALID" in again[2]


def test_no_name_flag_or_setting_makes_the_cli_act_as_another_person(
    people: dict[str, TestPerson], tmp_path: Path
) -> None:
    ada_env = cli_env_for(people["Ada"], tmp_path / "ada")
    proposal_id = propose(ada_env)
    as_flag = cli(
        "proposals", "approve", proposal_id, "--rationale", "I am Grace now", "--as", "Grace", env=ada_env
    )
    assert as_flag[0] == 2
    spoofed = {
        **ada_env,
        "STUDIO_BRAIN_CLI_ACTOR": people["Grace"].person_id,
        "STUDIO_BRAIN_CLI_IDENTITIES": f"{people['Grace'].person_id}=staff",
    }
    refused = cli("proposals", "approve", proposal_id, "--rationale", "I am Grace now", env=spoofed)
    assert refused[0] == 1
    assert "SELF_APPROVAL_FORBIDDEN" in refused[2]
    grace_env = cli_env_for(people["Grace"], tmp_path / "grace")
    assert cli("proposals", "approve", proposal_id, "--rationale", "checked, fine", env=grace_env)[0] == 0
    code, out, _ = cli("proposals", "execute", proposal_id, "--json", env=ada_env)
    assert code == 0
    assert json.loads(out)["status"] == "executed"


def test_without_a_login_the_cli_is_break_glass_and_never_approves(
    people: dict[str, TestPerson], tmp_path: Path
) -> None:
    proposal_id = propose(cli_env_for(people["Ada"], tmp_path / "ada"))
    nobody = cli_env_for(None, tmp_path / "nobody")
    assert "break-glass" in cli("whoami", env=nobody)[1]
    refused = cli("proposals", "approve", proposal_id, "--rationale", "admin says yes", env=nobody)
    assert refused[0] == 1
    assert "ADMIN_TOKEN_CANNOT_APPROVE" in refused[2]
    assert cli("killswitch", "on", "--reason", "storm tonight, stop", env=nobody)[0] == 0
    off = cli("killswitch", "off", "--reason", "storm is over now", env=nobody)
    assert off[0] == 1
    assert "BREAK_GLASS_NOT_ALLOWED" in off[2]
    assert (
        cli(
            "killswitch",
            "off",
            "--reason",
            "storm is over now",
            env=cli_env_for(people["Ada"], tmp_path / "ada"),
        )[0]
        == 0
    )


def test_staff_commands_create_the_first_owner_once_and_print_one_time_invites(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUDIO_BRAIN_DATABASE_URL", database_url)
    monkeypatch.setenv("STUDIO_BRAIN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STUDIO_BRAIN_LOG_LEVEL", "error")
    nobody = cli_env_for(None, tmp_path / "nobody")
    code, out, _ = cli("staff", "create-owner", "Ada Owner", env=nobody)
    assert code == 0
    assert "/enrol?invite=sbi_" in out
    second = cli("staff", "create-owner", "Mallory", env=nobody)
    assert second[0] == 1
    assert "FIRST_OWNER_EXISTS" in second[2]
    code, out, _ = cli("staff", "invite", "Grace Manager", "--role", "staff", env=nobody)
    assert code == 0
    assert "/enrol?invite=sbi_" in out
    listed = cli("staff", "list", "--json", env=nobody)[1]
    assert {(p["name"], p["status"]) for p in json.loads(listed)} == {
        ("Ada Owner", "invited"),
        ("Grace Manager", "invited"),
    }


def test_sessions_revoke_ends_a_persons_cockpit_sessions_now(
    people: dict[str, TestPerson], tmp_path: Path
) -> None:
    grace = people["Grace"]
    ada_env = cli_env_for(people["Ada"], tmp_path / "ada")
    assert with_brain(lambda b: identity_of(b).credentials.principal_for_session(grace.session)) is not None
    code, out, err = cli("sessions", "revoke", "--person", grace.person_id, env=ada_env)
    assert code == 0, err
    assert out.startswith("1 session(s) ended")
    assert with_brain(lambda b: identity_of(b).credentials.principal_for_session(grace.session)) is None
    refused = cli(
        "sessions", "revoke", "--person", people["Ada"].person_id, env=cli_env_for(grace, tmp_path / "g")
    )
    assert refused[0] == 1
    assert "OWNER_REQUIRED" in refused[2]


def test_login_link_works_on_a_running_system_once(people: dict[str, TestPerson], tmp_path: Path) -> None:
    code, out, _ = cli("login-link", env=cli_env_for(None, tmp_path / "nobody"))
    assert code == 0
    raw = out.split("/login?token=", 1)[1].split()[0]
    first = with_brain(lambda b: identity_of(b).credentials.redeem_login_link(raw))
    assert first is not None
    assert first.principal.is_break_glass
    assert with_brain(lambda b: identity_of(b).credentials.redeem_login_link(raw)) is None


def test_logout_revokes_the_token_and_forgets_it(people: dict[str, TestPerson], tmp_path: Path) -> None:
    grace = people["Grace"]
    env = cli_env_for(grace, tmp_path / "grace")
    assert cli("logout", env=env)[0] == 0
    assert not (tmp_path / "grace" / "studio-brain" / "credentials.json").exists()
    assert with_brain(lambda b: identity_of(b).credentials.verify_token(grace.token)) is None


def test_doctor_says_how_to_create_the_first_owner_until_one_enrolled(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUDIO_BRAIN_DATABASE_URL", database_url)
    monkeypatch.setenv("STUDIO_BRAIN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STUDIO_BRAIN_LOG_LEVEL", "error")
    before = CliRunner().invoke(app, ["doctor"])
    assert "! staff: no owner has enrolled a passkey yet" in before.stdout
    assert 'studio-brain staff create-owner "Your Name"' in before.stdout
    enrol_people_for_cli(("Ada", True))
    after = CliRunner().invoke(app, ["doctor"])
    assert "✓ staff: 1 active staff account(s), 1 owner(s)" in after.stdout


def test_doctor_names_passkeys_enrolled_before_they_were_sealed_and_how_to_replace_them(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    monkeypatch.setenv("STUDIO_BRAIN_DATABASE_URL", database_url)
    monkeypatch.setenv("STUDIO_BRAIN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STUDIO_BRAIN_LOG_LEVEL", "error")
    enrol_people_for_cli(("Ada", True))
    with psycopg.connect(database_url, autocommit=True) as conn:  # as a row from before migration 0016
        conn.execute("UPDATE staff_passkeys SET seal = NULL")
    report = CliRunner().invoke(app, ["doctor"])
    assert "! staff: 1 passkey(s) enrolled before passkeys were sealed" in report.stdout
    assert "studio-brain staff reinvite" in report.stdout
