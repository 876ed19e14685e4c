"""EventStore: the append-only, hash-chained audit log. Nothing else in Studio Brain writes audit rows."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from studio_brain.domain.audit import AuditDraft, AuditEvent, AuditPage, AuditQuery


class EventStore(Protocol):
    async def append(self, draft: AuditDraft) -> AuditEvent:
        """Seal and store one event at the head of its tenant's chain; returns it as stored."""
        ...

    async def append_many(self, drafts: Sequence[AuditDraft]) -> list[AuditEvent]:
        """Seal and store several events in one transaction, in order."""
        ...

    async def query(self, tenant_id: str, query: AuditQuery) -> AuditPage: ...

    def stream(
        self, tenant_id: str, *, from_seq: int = 1, to_seq: int | None = None
    ) -> AsyncIterator[AuditEvent]:
        """Every event in seq order, in constant memory (server-side cursor)."""
        ...

    async def head(self, tenant_id: str) -> AuditEvent | None:
        """The newest event of the tenant's chain."""
        ...

    async def tenants(self) -> list[str]:
        """Every tenant that has at least one event."""
        ...
