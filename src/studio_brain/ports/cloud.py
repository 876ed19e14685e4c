"""CloudReader and FinanceReader: where StudioState's numbers come from (Firestore, the demo studio, Functions)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from studio_brain.domain.rules import RuleTable
from studio_brain.domain.snapshot import CloudRead, FinanceSummary


class CloudReader(Protocol):
    """Counts every rule of a table, plus one total per collection the table reads.

    A query that fails or times out comes back with ``count=None`` and its status; the read as a whole
    raises ``CloudReadError`` only when the source cannot be used at all (unreachable, no credentials),
    so that nothing misleading is stored.
    """

    @property
    def source(self) -> str:
        """Short name recorded on the snapshot run (``firestore``, ``demo``)."""
        ...

    async def read(self, table: RuleTable) -> CloudRead: ...


@runtime_checkable
class PointInTimeReader(Protocol):
    """A CloudReader that can also count as of a past instant (Firestore ``read_time``).

    Used by the daily close to read the day boundary after the fact; raises ``CloudReadError`` when the
    source no longer keeps versions that old.
    """

    @property
    def source(self) -> str: ...

    async def read(self, table: RuleTable) -> CloudRead: ...

    async def read_as_of(self, table: RuleTable, at: datetime) -> CloudRead: ...


class FinanceReader(Protocol):
    """The optional Cloud Functions finance read endpoint. Raises ``CloudReadError`` on any failure."""

    async def finance_summary(self) -> FinanceSummary: ...
