"""The MCP server: the SDK's low-level ``Server`` answering tools and resources from the agent desk.

Who is calling comes from the transport (``principal_of``): the Bearer token on HTTP, verified by
``http.py`` before any MCP message is read; the token named at start for stdio. No token, no tools.
Refusals — kill switch, missing scope, invalid input, a secret in the payload, the rate limit — come back
as MCP tool errors (``isError``) whose structured content carries the reason code and the message.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import mcp_types as types
from mcp.server import Server, ServerRequestContext

from studio_brain.domain.errors import (
    InputInvalid,
    NotFound,
    PolicyRefused,
    StudioBrainError,
    Unauthenticated,
)
from studio_brain.domain.identity import Principal
from studio_brain.domain.reasons import ReasonCode
from studio_brain.domain.secrets import redact
from studio_brain.logging import get_logger
from studio_brain.mcp.tools import PROPOSE_PREFIX, ToolSpec, catalogue, propose_tool
from studio_brain.services.agent_desk import AgentDesk, CallContext

log = get_logger(__name__)

SERVER_NAME = "studio-brain"
SNAPSHOT_URI = "studio://state/latest"
REGISTRY_URI = "studio://capabilities"

#: returns the verified agent of this request, or None (then every call is refused)
PrincipalOf = Callable[[ServerRequestContext[Any, Any]], Principal | None]
#: the correlation prefix of this connection, e.g. ``mcp:stdio-<uuid>`` or ``mcp:http``
SessionOf = Callable[[ServerRequestContext[Any, Any]], str]


class Unauthorised(Unauthenticated):
    """No verified agent behind this MCP request (reason code ``AUTH_REQUIRED``; a 401 if it ever reaches HTTP)."""


def build_server(
    desk: AgentDesk,
    principal_of: PrincipalOf,
    session_of: SessionOf,
    *,
    version: str,
    before_call: Callable[[], Awaitable[None]] | None = None,
) -> Server[Any]:
    """``before_call``: run before each tool call (stdio re-verifies its token there)."""

    def caller(ctx: ServerRequestContext[Any, Any]) -> CallContext:
        principal = principal_of(ctx)
        if principal is None:
            raise Unauthorised("an agent token is required")
        request_id = str(ctx.request_id) if ctx.request_id is not None else "-"
        return CallContext(
            principal=principal, correlation=f"{session_of(ctx)}/{request_id}", request_id=f"mcp-{request_id}"
        )

    def tools_for(principal: Principal) -> list[ToolSpec]:
        return catalogue(principal, desk.registry_capabilities())

    def resolve(principal: Principal, name: str) -> ToolSpec | None:
        known = {t.name: t for t in tools_for(principal)}
        if name in known:
            return known[name]
        if name.startswith(PROPOSE_PREFIX):
            # a capability the token may not propose: the gateway refuses it (and audits the attempt)
            capability = next(
                (c for c in desk.registry_capabilities() if name == PROPOSE_PREFIX + c.id), None
            )
            return propose_tool(capability) if capability is not None else None
        return None

    async def on_list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        principal = caller(ctx).principal
        return types.ListToolsResult(
            tools=[
                types.Tool(
                    name=t.name,
                    title=t.title,
                    description=t.description,
                    input_schema=t.input_schema,
                    annotations=types.ToolAnnotations(
                        read_only_hint=t.read_only, destructive_hint=False, open_world_hint=False
                    ),
                )
                for t in tools_for(principal)
            ]
        )

    async def on_call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        if before_call is not None:
            await before_call()
        try:
            call = caller(ctx)
        except Unauthorised as err:
            return _error(err.reason_code, str(err))
        args = dict(params.arguments or {})
        tool = resolve(call.principal, params.name)
        try:
            if tool is None:
                raise NotFound(f"no tool named {params.name!r}; list the tools")
            out = await tool.handler(desk, call, args)
        except PolicyRefused as refused:  # audited where it was decided
            return _error(refused.reason_code, str(refused))
        except (InputInvalid, NotFound) as err:
            message = redact(str(err))
            await desk.record_refusal(call, redact(params.name)[:80], err.reason_code, message)
            return _error(err.reason_code, message)
        except StudioBrainError as err:
            log.warning("mcp.tool.failed", tool=params.name, reason_code=err.reason_code.value)
            return _error(err.reason_code, redact(str(err)))
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=json.dumps(out, default=str))],
            structured_content=out,
        )

    async def on_list_resources(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        caller(ctx)
        return types.ListResourcesResult(
            resources=[
                types.Resource(
                    name="studio-state-latest",
                    title="Today's StudioState snapshot",
                    uri=SNAPSHOT_URI,
                    mime_type="application/json",
                ),
                types.Resource(
                    name="capability-registry",
                    title="Capability registry",
                    uri=REGISTRY_URI,
                    mime_type="application/json",
                ),
            ]
        )

    async def on_read_resource(
        ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        call = caller(ctx)
        uri = str(params.uri)
        if uri == SNAPSHOT_URI:
            body = await desk.latest_state(call)
        elif uri == REGISTRY_URI:
            body = await desk.capabilities(call)
        else:
            raise NotFound(f"no resource {uri}")
        return types.ReadResourceResult(
            contents=[
                types.TextResourceContents(
                    uri=uri, mime_type="application/json", text=json.dumps(body, default=str)
                )
            ]
        )

    return Server(
        SERVER_NAME,
        version=version,
        title="Studio Brain",
        instructions=(
            "Read the pottery studio's state and propose actions. Every proposal waits for a person's "
            "approval in the Studio Brain cockpit; no tool approves or executes."
        ),
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
        on_list_resources=on_list_resources,
        on_read_resource=on_read_resource,
    )


def _error(reason: ReasonCode, message: str) -> types.CallToolResult:
    payload = {"ok": False, "reasonCode": reason.value, "message": message}
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=f"{reason.value}: {message}")],
        structured_content=payload,
        is_error=True,
    )
