"""EventStore in memory: the same sealing, validation and paging rules as PostgreSQL, for tests and demos.

Passes ``tests/contract/test_event_store.py`` like the real store. ``at`` comes from the injected clock
(microsecond precision, like PostgreSQL); appends are serialised by one asyncio lock.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from studio_brain.domain.audit import (
    GENESIS_HASH,
    AuditCheckpoint,
    AuditDraft,
    AuditEvent,
    AuditPage,
    AuditQuery,
    ChainHead,
    check_query,
    matches,
    seal,
)
from studio_brain.domain.errors import InputInvalid
from studio_brain.domain.records import Keyring
from studio_brain.ports.clock import Clock, IdFactory


def _copy(event: AuditEvent) -> AuditEvent:
    # Events are frozen, but metadata is a dict: hand out copies so callers cannot edit the log.
    return copy.deepcopy(event)


class InMemoryEventStore:
    def __init__(self, clock: Clock, ids: IdFactory, keyring: Keyring | None = None) -> None:
        self._clock = clock
        self._ids = ids
        #: with the brain's keyring new events are keyed (format 2), as in the PostgreSQL store
        self._key = None if keyring is None else keyring.current
        self._chains: dict[str, list[AuditEvent]] = {}
        self._lock = asyncio.Lock()

    def _now(self) -> datetime:
        now = self._clock.now()
        if now.tzinfo is None:
            raise InputInvalid("the clock returned a naive datetime")
        return now

    def _seal_all(self, drafts: Sequence[AuditDraft]) -> list[AuditEvent]:
        heads: dict[str, tuple[int, str]] = {}
        sealed: list[AuditEvent] = []
        for draft in drafts:
            tenant = draft.tenant_id
            if tenant not in heads:
                chain = self._chains.get(tenant, [])
                heads[tenant] = (chain[-1].seq, chain[-1].hash) if chain else (0, GENESIS_HASH)
            seq, prev_hash = heads[tenant]
            event = seal(
                draft,
                event_id=self._ids.new_id(),
                seq=seq + 1,
                at=self._now(),
                prev_hash=prev_hash,
                key=self._key,
            )
            heads[event.tenant_id] = (event.seq, event.hash)
            sealed.append(event)
        return sealed

    async def append(self, draft: AuditDraft) -> AuditEvent:
        return (await self.append_many([draft]))[0]

    async def append_many(self, drafts: Sequence[AuditDraft]) -> list[AuditEvent]:
        async with self._lock:
            sealed = self._seal_all(list(drafts))  # all or nothing: validate and seal before storing
            for event in sealed:
                self._chains.setdefault(event.tenant_id, []).append(_copy(event))
        return sealed

    async def query(self, tenant_id: str, query: AuditQuery) -> AuditPage:
        check_query(query)
        chain = self._chains.get(tenant_id, [])
        if query.newest_first:
            candidates = (e for e in reversed(chain) if query.before_seq is None or e.seq < query.before_seq)
        else:
            candidates = (e for e in chain if query.after_seq is None or e.seq > query.after_seq)
        found: list[AuditEvent] = []
        for event in candidates:
            if matches(event, query):
                found.append(_copy(event))
                if len(found) > query.limit:
                    break
        more = len(found) > query.limit
        events = found[: query.limit]
        return AuditPage(events=events, next_cursor=events[-1].seq if more else None)

    async def stream(
        self, tenant_id: str, *, from_seq: int = 1, to_seq: int | None = None
    ) -> AsyncIterator[AuditEvent]:
        chain = self._chains.get(tenant_id, [])
        index = 0
        while index < len(chain):  # by index: appends during the stream are not skipped or repeated
            event = chain[index]
            index += 1
            if event.seq < from_seq:
                continue
            if to_seq is not None and event.seq > to_seq:
                return
            yield _copy(event)

    async def head(self, tenant_id: str) -> AuditEvent | None:
        chain = self._chains.get(tenant_id)
        return _copy(chain[-1]) if chain else None

    async def chain_head(self, tenant_id: str) -> ChainHead | None:
        chain = self._chains.get(tenant_id)
        return ChainHead(seq=chain[-1].seq, hash=chain[-1].hash) if chain else None

    async def tenants(self) -> list[str]:
        return sorted(t for t, chain in self._chains.items() if chain)


class InMemoryCheckpointStore:
    """Checkpoints in a list (tests and demos)."""

    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self._kept: list[AuditCheckpoint] = []

    async def save(self, checkpoint: AuditCheckpoint) -> None:
        if checkpoint not in self._kept:
            self._kept.append(checkpoint)

    async def checkpoints(self, tenant_id: str | None = None) -> list[AuditCheckpoint]:
        kept = [c for c in self._kept if tenant_id is None or c.tenant_id == tenant_id]
        return sorted(kept, key=lambda c: (c.tenant_id, c.seq))
