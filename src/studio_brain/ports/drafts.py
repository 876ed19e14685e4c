"""Draft storage: the full store (services) and the add-only sink, the one thing a swarm is given."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from studio_brain.domain.drafts import Draft, DraftKind, DraftOutcome, DraftStatus, Finding


class DraftSink(Protocol):
    """Add-only: a swarm can record findings and nothing else (no review, no approval, no execution)."""

    async def add(self, finding: Finding) -> DraftOutcome: ...


class DraftStore(Protocol):
    async def add(
        self, finding: Finding, *, tenant_id: str, draft_id: str, actor_type: str, actor_id: str, at: datetime
    ) -> DraftOutcome:
        """Insert unless the same finding exists today (DUPLICATE) or its cooldown runs (COOLING_DOWN)."""
        ...

    async def get(self, tenant_id: str, draft_id: str) -> Draft | None: ...

    async def list(self, tenant_id: str, *, kind: DraftKind, limit: int = 30) -> Sequence[Draft]:
        """Newest first."""
        ...

    async def set_status(
        self, tenant_id: str, draft_id: str, *, expected: DraftStatus, to: DraftStatus, at: datetime
    ) -> bool:
        """Compare-and-set the status; False when the draft was not in ``expected`` any more."""
        ...


class ProposalDrafter(Protocol):
    """Drafts a gateway proposal (status ``draft``: a human must submit it). Given to the drafts service,
    never to a swarm."""

    async def draft_proposal(self, *, tenant_id: str, text: str, rationale: str, idempotency_key: str) -> str:
        """The id of the draft proposal (the same one again for a repeated idempotency key)."""
        ...

    async def draft_capability(
        self,
        *,
        tenant_id: str,
        actor_id: str,
        capability_id: str,
        input: dict[str, object],
        rationale: str,
        idempotency_key: str,
    ) -> str:
        """A draft proposal to run ``capability_id`` with ``input`` (the safety watch's switch-off): the
        gateway validates it like any proposal; a person submits and a second person approves, or not."""
        ...
