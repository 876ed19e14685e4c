"""Read requests retried once when the database dropped them (issue 13): a GET or HEAD answered 503
because a database connection died under it is run again after a short pause, invisibly to the caller.

Only safe methods are retried (they change nothing), only once, and only for the database's own 503
(the error handler marks it with ``x-studio-brain-retry: database``); ``/readyz`` and every other 503 pass
through untouched. Plain ASGI, like the other middleware, so streamed bodies pass through.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

RETRY_HEADER = b"x-studio-brain-retry"
SAFE_METHODS = frozenset({"GET", "HEAD"})


class ReadRetryMiddleware:
    def __init__(self, app: ASGIApp, *, pause_seconds: float = 0.2) -> None:
        self.app = app
        self._pause = pause_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        dropped = False

        async def first_send(message: Message) -> None:
            nonlocal dropped
            if message["type"] == "http.response.start" and message["status"] == 503:
                headers = dict(message.get("headers") or [])
                dropped = headers.get(RETRY_HEADER) == b"database"
            if not dropped:
                await send(message)

        await self.app(scope, receive, first_send)
        if not dropped:
            return
        await asyncio.sleep(self._pause)
        replayed = False

        async def again() -> Message:
            nonlocal replayed
            if not replayed:  # a safe method's body is empty: hand it out once more
                replayed = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return await receive()

        await self.app(scope, again, send)
