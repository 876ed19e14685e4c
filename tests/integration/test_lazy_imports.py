"""A started server holds only what it uses (issue 18: idle memory): the MCP SDK, Alembic/SQLAlchemy,
the WebAuthn library and Apprise are imported by their first use, not by start-up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.postgres

HEAVY = ("mcp", "mcp_types", "alembic", "sqlalchemy", "webauthn", "apprise", "google.cloud.firestore")

_SCRIPT = """
import asyncio, sys
from studio_brain.settings import load_settings
from studio_brain.web.app import create_app

app = create_app(settings=load_settings())

async def main() -> None:
    async with app.router.lifespan_context(app):
        print("loaded:", ",".join(m for m in sys.argv[1:] if m in sys.modules))

asyncio.run(main())
"""


def test_a_started_server_has_not_imported_what_it_has_not_used(database_url: str, tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "STUDIO_BRAIN_HOME": str(tmp_path),
        "STUDIO_BRAIN_DATABASE_URL": database_url,  # already at head: no migration to run
        "STUDIO_BRAIN_SCHEDULER_ENABLED": "false",
        "STUDIO_BRAIN_LOG_LEVEL": "warning",
    }
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, *HEAVY], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    # the log lines of start-up share stdout; the script's own line is the last
    assert done.stdout.strip().splitlines()[-1] == "loaded:", done.stdout


def test_the_command_line_that_serve_runs_in_has_not_imported_the_heavy_libraries() -> None:
    # `studio-brain serve` is the CLI's process: whatever the CLI imports for its other commands (the MCP
    # stdio server, the demo devices) stays resident in the server for its whole life
    probe = "import sys, studio_brain.cli; print(','.join(m for m in sys.argv[1:] if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", probe, *HEAVY],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"imported at start-up: {done.stdout.strip()}"
