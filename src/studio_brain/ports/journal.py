"""The execution journal: outcomes the device reported, kept on local disk until the database has them."""

from __future__ import annotations

from typing import Protocol

from studio_brain.domain.outcomes import RecordedOutcome


class ExecutionJournal(Protocol):
    async def record(self, outcome: RecordedOutcome) -> None:
        """Keep ``outcome`` durably (fsynced) before the database write is attempted."""
        ...

    async def forget(self, proposal_id: str) -> None:
        """The database has the outcome of ``proposal_id``: drop it (no error when absent)."""
        ...

    async def pending(self) -> list[RecordedOutcome]:
        """Every outcome not yet known to be in the database, oldest first."""
        ...
