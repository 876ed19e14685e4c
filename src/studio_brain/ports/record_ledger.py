"""The record ledger port: marks a database writer cannot roll back (domain/record_ledger.py says why)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from studio_brain.domain.record_ledger import LedgerMark, LedgerView


class RecordLedger(Protocol):
    """Append-only marks kept outside the database; read on every use of a guarded record, so cheap."""

    def view(self) -> LedgerView:
        """Every mark so far, including those another process of this brain has written."""
        ...

    async def mark(self, marks: Sequence[LedgerMark]) -> None:
        """Add marks durably (call after the database commit of the write they guard)."""
        ...
