"""``studio-brain mcp``: the MCP server over stdio, for desktop assistants (docs/agents.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from studio_brain.cli.common import EXIT_USAGE, fail, run, settings_or_exit
from studio_brain.mcp.stdio import serve_stdio

TOKEN_VARIABLE = "STUDIO_BRAIN_AGENT_TOKEN"  # noqa: S105 - the variable's name, not a token


def mcp_command(
    token_file: Annotated[
        Path | None,
        typer.Option("--token-file", help=f"A file holding the agent token (else ${TOKEN_VARIABLE})."),
    ] = None,
) -> None:
    """Serve MCP over stdio as the agent of the given token: read state, propose; never approve or execute."""
    settings = settings_or_exit()
    if token_file is not None:
        try:
            raw = token_file.read_text(encoding="utf-8").strip()
        except OSError as err:
            fail(f"cannot read the token file {token_file}: {err.strerror}", code=EXIT_USAGE)
    else:
        raw = os.environ.get(TOKEN_VARIABLE, "").strip()
    if not raw:
        fail(f"an agent token is required: set {TOKEN_VARIABLE} or pass --token-file", code=EXIT_USAGE)
    run(serve_stdio(settings, raw))


def register(app: typer.Typer) -> None:
    app.command("mcp")(mcp_command)
