"""Conditional GETs (issue 18): a version as the ETag, ``If-None-Match`` answered 304, bodies encoded once
per version and kept in a small bounded cache.

Handlers call these after their auth dependency ran, so a matching ETag without credentials is still a
401 (the dependency refuses before the handler is reached); a cache is keyed by whatever scopes the
body (the verified tenant, …) and holds one version per key.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

from fastapi import Request, Response

#: a body that may change: the client asks every time (and gets a 304 while it has not)
REVALIDATE = "private, no-cache"
#: a body that never changes (an audit event)
IMMUTABLE = "private, max-age=86400, immutable"


def etag_headers(tag: str, *, cache_control: str = REVALIDATE) -> dict[str, str]:
    return {"etag": f'"{tag}"', "cache-control": cache_control}


def not_modified(request: Request, headers: dict[str, str]) -> Response | None:
    """A 304 when the request's ``If-None-Match`` names the ETag in ``headers``; None otherwise."""
    etag = headers["etag"]
    if etag in (t.strip() for t in request.headers.get("if-none-match", "").split(",")):
        return Response(status_code=304, headers=headers)
    return None


def json_bytes(body: bytes, headers: dict[str, str]) -> Response:
    return Response(content=body, media_type="application/json", headers=headers)


class EncodedByVersion:
    """Encoded bodies, one version per key and at most ``max_keys`` keys (the least recently used goes).

    ``get`` answers only for the very version asked about, so a newer version is never served an older
    body; ``put`` replaces the key's older version."""

    def __init__(self, max_keys: int) -> None:
        self._max = max_keys
        self._entries: OrderedDict[Hashable, tuple[Hashable, bytes]] = OrderedDict()

    def get(self, key: Hashable, version: Hashable) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] != version:
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: Hashable, version: Hashable, body: bytes) -> None:
        self._entries[key] = (version, body)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
