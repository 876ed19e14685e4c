"""EventStore: the append-only, hash-chained audit log. Nothing else in Studio Brain writes audit rows.

Also the ports the audit service needs around it: where signed checkpoints are kept, who signs them,
how signatures are checked, and where exports are written and read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol

from studio_brain.domain.audit import (
    AuditCheckpoint,
    AuditDraft,
    AuditEvent,
    AuditPage,
    AuditQuery,
    ChainHead,
)
from studio_brain.domain.audit.segments import Segment, SegmentVerdict
from studio_brain.domain.records import Keyring


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

    async def chain_head(self, tenant_id: str) -> ChainHead | None:
        """The seq and hash of the tenant's newest event (None for an empty chain), in one cheap read.
        Heads only move forward, so a page read after its head holds everything up to it (issue 18's
        page cache, ``web/audit_pages.py``)."""
        ...

    async def tenants(self) -> list[str]:
        """Every tenant that has at least one event."""
        ...


class SegmentVerifier(Protocol):
    """Checks segments of one tenant's chain side by side (e.g. one worker process each), every segment
    from the stored hash of the row before it (domain/audit/segments.py says how verdicts are joined)."""

    #: how many segments it checks at once; below 2 the chain is verified in one pass
    workers: int
    #: chains shorter than this are verified in one pass (starting workers would cost more)
    min_events: int

    async def verify_segments(
        self,
        tenant_id: str,
        segments: Sequence[Segment],
        *,
        checkpoints: Sequence[AuditCheckpoint],
        keyring: Keyring | None,
        progress: Callable[[int], None] | None = None,
    ) -> list[SegmentVerdict] | None:
        """One verdict per segment, in order; None when a segment could not be checked (a worker died,
        the database went away): the caller then verifies in one pass, which reports such errors itself.
        ``progress`` is called with the number of events checked so far, across segments."""
        ...


class CheckpointStore(Protocol):
    """Somewhere signed checkpoints are kept (the database, and a file outside it)."""

    #: shown in reports, e.g. ``database`` or the file's path
    name: str

    async def save(self, checkpoint: AuditCheckpoint) -> None:
        """Keep ``checkpoint`` (idempotent for an identical one)."""
        ...

    async def checkpoints(self, tenant_id: str | None = None) -> list[AuditCheckpoint]:
        """Every checkpoint kept (of one tenant, or all), oldest seq first."""
        ...


class CheckpointSigner(Protocol):
    """Holds the private Ed25519 key; signs checkpoint messages."""

    @property
    def public_key(self) -> str:
        """The raw public key, hex."""
        ...

    def sign(self, message: bytes) -> str:
        """The signature of ``message``, hex."""
        ...


class SignatureVerifier(Protocol):
    def verify(self, public_key: str, message: bytes, signature: str) -> bool:
        """True only when ``signature`` (hex) is ``public_key``'s (hex) signature of ``message``."""
        ...


class ExportWriter(Protocol):
    """Receives an export: events in seq order, then the manifest."""

    async def write_event(self, event: AuditEvent) -> None: ...

    async def finish(self, manifest: dict[str, Any]) -> None:
        """Write the manifest and make the export durable."""
        ...


class ExportReader(Protocol):
    """An export written earlier: its manifest and its events, read in constant memory."""

    def manifest(self) -> dict[str, Any]: ...

    def events(self) -> AsyncIterator[AuditEvent]:
        """The exported events in file order; raises DataCorrupted at a line that is not an event."""
        ...
