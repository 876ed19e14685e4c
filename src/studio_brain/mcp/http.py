"""MCP over streamable HTTP at ``/mcp`` on the running server, authenticated with an agent token.

Every request must carry ``Authorization: Bearer sbat_…`` (an agent token from ``studio-brain gateway
tokens issue``, the same hashed, scoped, expiring, revocable tokens as the HTTP API). The token is
verified before any MCP message is read; without a valid one the answer is a plain 401 and no tool is
listed. The verified agent rides a context variable into the tool handlers of this request. Stateless:
each POST is a complete exchange, so a revoked token stops working on the next request.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette.types import Receive, Scope, Send

from studio_brain import __version__
from studio_brain.bootstrap import Brain
from studio_brain.domain.identity import Principal
from studio_brain.logging import get_logger
from studio_brain.mcp.desk import desk_for

if TYPE_CHECKING:
    # the MCP SDK (~55 MB resident) is imported when the first authenticated /mcp request arrives
    from mcp.server import ServerRequestContext
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

log = get_logger(__name__)

MCP_PATH = "/mcp"
#: the verified agent and the HTTP request id of the request being served
_current: contextvars.ContextVar[tuple[Principal, str] | None] = contextvars.ContextVar(
    "mcp_caller", default=None
)


def _principal_of(ctx: ServerRequestContext[Any, Any]) -> Principal | None:
    current = _current.get()
    return current[0] if current is not None else None


def _session_of(ctx: ServerRequestContext[Any, Any]) -> str:
    # stateless HTTP has no MCP session; the HTTP request id (unique per POST) stands in for it, so two
    # calls that reuse a JSON-RPC id never share a correlation
    current = _current.get()
    return f"mcp:http-{current[1]}" if current is not None else "mcp:http"


class McpEndpoint:
    """The ASGI app behind ``/mcp``: authenticate, then hand the request to the SDK's session manager.

    The SDK and its session manager start on the first authenticated request, not with the web app: most
    servers never serve MCP, and the SDK is a quarter of an idle server's memory (issue 18). The manager
    runs in a task of its own, which enters and leaves its task group; the app's lifespan stops it."""

    def __init__(self) -> None:
        self._brain: Brain | None = None
        self._manager: StreamableHTTPSessionManager | None = None
        self._runner: asyncio.Task[None] | None = None
        self._starting: asyncio.Lock | None = None
        self._stop: asyncio.Event | None = None

    @asynccontextmanager
    async def running(self, brain: Brain) -> AsyncIterator[None]:
        """Serve MCP for ``brain`` while the web app runs (entered from the app's lifespan)."""
        self._brain, self._starting, self._stop = brain, asyncio.Lock(), asyncio.Event()
        try:
            yield
        finally:
            self._brain = None
            runner, self._runner = self._runner, None
            self._stop.set()
            if runner is not None:
                await runner
            self._manager = None

    async def _started(self, brain: Brain) -> StreamableHTTPSessionManager:
        # both set by running()
        assert self._starting is not None
        assert self._stop is not None
        async with self._starting:
            if self._manager is None:
                ready: asyncio.Future[StreamableHTTPSessionManager] = (
                    asyncio.get_running_loop().create_future()
                )
                self._runner = asyncio.create_task(self._run(brain, ready, self._stop))
                self._manager = await ready
            return self._manager

    async def _run(
        self, brain: Brain, ready: asyncio.Future[StreamableHTTPSessionManager], stop: asyncio.Event
    ) -> None:
        try:
            from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

            from studio_brain.mcp.server import build_server

            server = build_server(desk_for(brain), _principal_of, _session_of, version=__version__)
            manager = StreamableHTTPSessionManager(app=server, stateless=True, json_response=True)
            async with manager.run():
                ready.set_result(manager)
                await stop.wait()
        except Exception as err:
            if ready.done():
                raise
            ready.set_exception(err)  # the request that started it fails; the next one tries again
            self._runner = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        brain = self._brain
        if brain is None:
            await _plain(send, 503, "MCP is not running yet")
            return
        principal = await _authenticate(brain, scope)
        if principal is None:
            await _plain(send, 401, "an agent token is required: Authorization: Bearer sbat_…", bearer=True)
            return
        manager = await self._started(brain)
        request_id = str((scope.get("state") or {}).get("request_id") or "unknown")
        token = _current.set((principal, request_id))
        try:
            await manager.handle_request(scope, receive, send)
        finally:
            _current.reset(token)


async def _authenticate(brain: Brain, scope: Scope) -> Principal | None:
    header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        return None
    principal = await brain.gateway.verify_agent_token(raw.strip())
    if principal is None:
        log.info("mcp.auth.refused", path=scope.get("path"))
    return principal


async def _plain(send: Send, status: int, message: str, *, bearer: bool = False) -> None:
    body = json.dumps({"ok": False, "message": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if bearer:
        headers.append((b"www-authenticate", b'Bearer realm="studio-brain"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
