"""The audit page cache (issue 18, web/audit_pages.py) on its own: a page per tenant and key, kept for its
head only, and a body over the size bound encoded every time."""

from __future__ import annotations

from fastapi import Request

from studio_brain.domain.audit import ChainHead
from studio_brain.web.audit_pages import AuditPageCache, head_tag


class Heads:
    def __init__(self) -> None:
        self.heads: dict[str, ChainHead | None] = {}

    async def chain_head(self, tenant_id: str) -> ChainHead | None:
        return self.heads.get(tenant_id)


def request(*headers: tuple[bytes, bytes]) -> Request:
    return Request(
        {"type": "http", "method": "GET", "path": "/", "query_string": b"", "headers": list(headers)}
    )


class Encoder:
    def __init__(self, body: bytes) -> None:
        self.body, self.calls = body, 0

    async def __call__(self) -> bytes:
        self.calls += 1
        return self.body


async def test_a_page_is_encoded_once_per_head_and_again_when_the_head_moves() -> None:
    heads, cache, encode = Heads(), AuditPageCache(), Encoder(b'{"ok":true}')
    heads.heads["a"] = ChainHead(seq=1, hash="1" * 64)
    for _ in range(3):
        assert (await cache.respond(request(), heads, "a", "page", encode)).body == b'{"ok":true}'
    assert encode.calls == 1
    heads.heads["a"] = ChainHead(seq=2, hash="2" * 64)
    await cache.respond(request(), heads, "a", "page", encode)
    assert encode.calls == 2


async def test_two_tenants_at_the_same_head_keep_their_own_pages() -> None:
    heads, cache = Heads(), AuditPageCache()
    heads.heads["a"] = heads.heads["b"] = ChainHead(seq=1, hash="1" * 64)
    await cache.respond(request(), heads, "a", "page", Encoder(b"a"))
    answer = await cache.respond(request(), heads, "b", "page", Encoder(b"b"))
    assert answer.body == b"b"


async def test_a_body_over_the_bound_is_encoded_every_time() -> None:
    heads, cache, encode = Heads(), AuditPageCache(max_body_bytes=4), Encoder(b"12345")
    heads.heads["a"] = ChainHead(seq=1, hash="1" * 64)
    await cache.respond(request(), heads, "a", "page", encode)
    await cache.respond(request(), heads, "a", "page", encode)
    assert encode.calls == 2
    assert len(cache) == 0


async def test_an_empty_chain_has_a_tag_and_a_named_head_answers_304() -> None:
    heads, cache, encode = Heads(), AuditPageCache(), Encoder(b"[]")
    empty = await cache.respond(request(), heads, "a", "page", encode)
    assert empty.headers["etag"] == '"audit-0"'
    heads.heads["a"] = ChainHead(seq=7, hash="ab" * 32)
    assert head_tag(heads.heads["a"]) == "audit-7-abababababababab"
    named = request((b"if-none-match", b'"x", "audit-7-abababababababab"'))
    assert (await cache.respond(named, heads, "a", "page", encode)).status_code == 304
    assert encode.calls == 1
