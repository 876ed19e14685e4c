"""Audit pages encoded once per chain head (issue 18): the native ``/api/v1/audit`` page and the Portal's
``/api/capabilities/audit`` rows.

The log is append-only and grows in seq order (:class:`~studio_brain.domain.audit.ChainHead`), so a page
of it — one tenant, one query, one shape — can change only when the tenant's head moves. Each read asks
for the head (one indexed query), answers ``If-None-Match`` naming it with a 304, and serves the bytes it
encoded under that head; a moved head reads and encodes the page again. Heads only move forward, so a page
encoded after its head was read (and holding events appended since) is never served once the head names
something older than it holds: every later read finds a newer head.

One cache per app, bound with its brain (another brain's chain reaches the same seq with other events),
bounded by pages and by each body's size (a page of thousands of rows is encoded each time, as before).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Protocol

from fastapi import Request, Response

from studio_brain.domain.audit import ChainHead
from studio_brain.web.conditional import EncodedByVersion, etag_headers, json_bytes, not_modified

#: what a page route's OpenAPI says of its ETag and its 304 (the native page and the Portal's rows)
PAGE_ETAG = "Carries an ETag (the tenant's chain head); `If-None-Match` with it answers 304."
PAGE_NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "not modified: no event was appended since the named head"}
}
#: pages kept (per app); the Portal's cockpit and the native API's first pages are a handful
MAX_PAGES = 32
#: a body larger than this is not kept (a 100-row page is about 50 KB)
MAX_BODY_BYTES = 512 * 1024


class ChainHeads(Protocol):
    """Whatever reads the log's pages and can name its head (the EventStore, the Portal's desk)."""

    async def chain_head(self, tenant_id: str) -> ChainHead | None: ...


def head_tag(head: ChainHead | None) -> str:
    """The ETag of every page read at ``head``: its seq and the start of its hash (which tells two chains,
    or two tenants, apart at the same seq)."""
    return "audit-0" if head is None else f"audit-{head.seq}-{head.hash[:16]}"


class AuditPageCache:
    """Encoded audit pages, one head per page key; see the module's docstring for why that is exact."""

    def __init__(self, *, max_pages: int = MAX_PAGES, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self._pages = EncodedByVersion(max_keys=max_pages)
        self._max_body = max_body_bytes

    async def respond(
        self,
        request: Request,
        events: ChainHeads,
        tenant_id: str,
        page: Hashable,
        encode: Callable[[], Awaitable[bytes]],
    ) -> Response:
        """The page ``page`` of ``tenant_id``'s log: a 304 when the request names the head, the kept bytes
        when they were encoded under this head, else ``encode()``'s (kept when small enough)."""
        head = await events.chain_head(tenant_id)
        headers = etag_headers(head_tag(head))
        if (unchanged := not_modified(request, headers)) is not None:
            return unchanged
        key = (tenant_id, page)
        body = self._pages.get(key, head)
        if body is None:
            body = await encode()
            if len(body) <= self._max_body:
                self._pages.put(key, head, body)
        return json_bytes(body, headers)

    def __len__(self) -> int:
        return len(self._pages)


def audit_pages_of(request: Request) -> AuditPageCache:
    """The app's page cache (``create_app`` binds one with its brain)."""
    cache: AuditPageCache = request.app.state.audit_pages
    return cache
