"""``studio-brain mcp``: the MCP server over stdio, for desktop assistants (docs/agents.md)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from studio_brain.bootstrap import Brain
from studio_brain.cli.common import EXIT_USAGE, fail, run, settings_or_exit
from studio_brain.domain.identity import AuthMethod, CredentialKind, PersonStatus
from studio_brain.mcp.http import MCP_PATH

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
    # the MCP SDK (about 20 MB resident) is imported by this command alone, not by every `studio-brain`
    # process: `serve` imports this module too, and would otherwise hold the SDK for its whole life
    from studio_brain.mcp.stdio import serve_stdio

    run(serve_stdio(settings, raw))


#: what the demo's agent may do: read the studio, propose notes and a kiln switch-off (never approve)
DEMO_AGENT_SCOPES = (
    "state:read",
    "capabilities:read",
    "proposals:read",
    "capability:studio.note.append:propose",
    "capability:hubitat.switch.set:propose",
)
DEMO_TOKEN_FILE = "demo-agent-token"  # noqa: S105 - a file name


async def demo_agent_lines(brain: Brain, owner_name: str) -> list[str]:
    """Mint the demo's agent token (issued by the demo owner, 7 days), keep it 0600 in the home, and say
    how an MCP client connects over HTTP and stdio. The demo is a local setup run by the machine's
    operator, so the owner's signature on the token is the demo's, recorded as such in the audit row."""
    owner = next(
        (
            p
            for p in await brain.identity.persons()
            if p.display_name == owner_name and p.status is not PersonStatus.REMOVED
        ),
        None,
    )
    if owner is None:
        return []
    principal = owner.principal(via=AuthMethod.CLI, kind=CredentialKind.SYSTEM, credential_id="demo-setup")
    issued = await brain.gateway.issue_agent_token(
        principal,
        agent_id="demo-assistant",
        scopes=list(DEMO_AGENT_SCOPES),
        lifetime=timedelta(days=7),
        reason="the demo's MCP assistant: reads the studio and proposes",
    )
    path = brain.settings.home / DEMO_TOKEN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(issued.raw + "\n", encoding="utf-8")
    url = f"{brain.settings.cockpit_url}{MCP_PATH}"
    return [
        f"  agent (MCP): token {issued.raw}  (demo-assistant, 7 days; also in {path})",
        f"  MCP (HTTP) : {url}  with the header  Authorization: Bearer <token>",
        f"  MCP (stdio): STUDIO_BRAIN_HOME={brain.settings.home} studio-brain mcp --token-file {path}",
    ]


def register(app: typer.Typer) -> None:
    app.command("mcp")(mcp_command)
