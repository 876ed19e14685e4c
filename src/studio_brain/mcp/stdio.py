"""MCP over stdio: ``studio-brain mcp`` for desktop assistants, as the agent whose token it was given.

The token comes from ``STUDIO_BRAIN_AGENT_TOKEN`` or a file (``--token-file``, read once at start; keep
it 0600). It is verified before the protocol starts — a wrong, expired or revoked token ends the process
with one line on stderr and exit code 1 — and again on every tool call, so revoking it stops the agent
mid-session. Stdout carries only the protocol; every log line goes to stderr.
"""

from __future__ import annotations

import uuid
from typing import Any

from mcp.server import ServerRequestContext
from mcp.server.stdio import stdio_server

from studio_brain import __version__
from studio_brain.bootstrap import open_brain
from studio_brain.domain.errors import Unauthenticated
from studio_brain.domain.identity import Principal
from studio_brain.domain.reasons import ReasonCode
from studio_brain.logging import get_logger
from studio_brain.mcp.desk import desk_for
from studio_brain.mcp.server import build_server
from studio_brain.settings import Settings

log = get_logger(__name__)


async def serve_stdio(settings: Settings, raw_token: str) -> None:
    async with open_brain(settings) as brain:
        principal = await brain.gateway.verify_agent_token(raw_token)
        if principal is None:
            raise Unauthenticated(
                "the agent token is not valid (unknown, expired or revoked)",
                reason_code=ReasonCode.AUTH_TOKEN_INVALID,
            )
        session = f"mcp:stdio-{uuid.uuid4().hex[:12]}"
        current: dict[str, Principal | None] = {"agent": principal}
        desk = desk_for(brain)

        def principal_of(ctx: ServerRequestContext[Any, Any]) -> Principal | None:
            return current["agent"]

        async def still_valid() -> None:
            current["agent"] = await brain.gateway.verify_agent_token(raw_token)

        server = build_server(
            desk, principal_of, lambda ctx: session, version=__version__, before_call=still_valid
        )
        log.info("mcp.stdio.started", agent=principal.actor_id, session=session)
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())
