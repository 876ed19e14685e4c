"""The command line: version, help, usage errors, config display, clear failures, busy ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from studio_brain import __version__


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_BRAIN_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "studio_brain", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )


def test_version_prints_the_package_version() -> None:
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"studio-brain {__version__}"


@pytest.mark.parametrize("command", [[], ["demo"], ["serve"], ["migrate"], ["config", "show"], ["doctor"]])
def test_every_command_has_help(command: list[str]) -> None:
    result = cli(*command, "--help")
    assert result.returncode == 0
    assert "Usage" in result.stdout


def test_an_unknown_command_is_a_usage_error() -> None:
    result = cli("frobnicate")
    assert result.returncode == 2
    assert "frobnicate" in result.stderr


def test_an_unknown_option_is_a_usage_error() -> None:
    result = cli("serve", "--colour", "blue")
    assert result.returncode == 2


def test_config_show_redacts_secrets(tmp_path: Path) -> None:
    result = cli(
        "config",
        "show",
        "--json",
        env={
            "STUDIO_BRAIN_DATABASE_URL": "postgresql://brain:pw-in-url@db:5432/brain",
            "STUDIO_BRAIN_ADMIN_TOKEN": "tok-secret-1",
            "STUDIO_BRAIN_HOME": str(tmp_path),
        },
    )
    assert result.returncode == 0, result.stderr
    assert "pw-in-url" not in result.stdout
    assert "tok-secret-1" not in result.stdout
    assert '"STUDIO_BRAIN_DATABASE_URL": "postgresql://brain:***@db:5432/brain"' in result.stdout


def test_a_bad_setting_stops_with_one_line_and_no_traceback() -> None:
    result = cli("config", "show", env={"STUDIO_BRAIN_PORT": "abc"})
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "STUDIO_BRAIN_PORT" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_external_database_is_one_line_with_the_password_redacted(tmp_path: Path) -> None:
    result = cli(
        "migrate",
        env={
            "STUDIO_BRAIN_DATABASE_URL": "postgresql://brain:topsecret@127.0.0.1:1/brain",
            "STUDIO_BRAIN_HOME": str(tmp_path),
        },
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "topsecret" not in result.stderr
    assert "postgresql://brain:***@127.0.0.1:1/brain" in result.stderr
    assert not (tmp_path / "pgdata").exists(), "must never fall back to the embedded database"


def test_a_busy_port_is_named_with_how_to_change_it(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = cli("serve", "--port", str(port), env={"STUDIO_BRAIN_HOME": str(tmp_path)})
    assert result.returncode == 1
    assert f"port {port}" in result.stderr
    assert "--port" in result.stderr
    assert "STUDIO_BRAIN_PORT" in result.stderr


@pytest.mark.postgres
def test_migrate_then_doctor_report_a_healthy_installation(database_url: str, tmp_path: Path) -> None:
    env = {"STUDIO_BRAIN_DATABASE_URL": database_url, "STUDIO_BRAIN_HOME": str(tmp_path)}
    migrated = cli("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert "already at" in migrated.stdout
    doctor = cli("doctor", env=env)
    assert "✓ configuration" in doctor.stdout
    assert "✓ database" in doctor.stdout
    assert "✓ migrations" in doctor.stdout


@pytest.mark.postgres
def test_doctor_explains_how_to_fix_an_unmigrated_database(empty_database_url: str, tmp_path: Path) -> None:
    doctor = cli(
        "doctor", env={"STUDIO_BRAIN_DATABASE_URL": empty_database_url, "STUDIO_BRAIN_HOME": str(tmp_path)}
    )
    assert doctor.returncode == 1
    assert "✗ migrations" in doctor.stdout
    assert "fix: run `studio-brain migrate`" in doctor.stdout


def test_doctor_reports_an_unreachable_database_with_a_fix(tmp_path: Path) -> None:
    doctor = cli(
        "doctor",
        env={
            "STUDIO_BRAIN_DATABASE_URL": "postgresql://u:pw@127.0.0.1:1/x",
            "STUDIO_BRAIN_HOME": str(tmp_path),
        },
    )
    assert doctor.returncode == 1
    assert "✗ database" in doctor.stdout
    assert "fix:" in doctor.stdout
    assert ":pw@" not in doctor.stdout
