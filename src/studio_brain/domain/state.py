"""Stored records of local state: snapshot runs, daily diffs and job runs (what StateStore keeps).

The snapshot's *content* (schema v3.0) is defined in ``domain.snapshot``; here a snapshot is carried
as its JSON document plus the few columns the store indexes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any


class Completeness(StrEnum):
    FULL = "full"
    PARTIAL = "partial"


@dataclass(frozen=True, kw_only=True, slots=True)
class SnapshotVersion:
    """A stored run without its document (``snapshot_hash`` stands for it): what a cached encoding of
    the run is checked against. Two equal versions mean the same published snapshot, whichever database
    they came from; ``tag`` (the id and the hash; runs are immutable) names it in an ETag."""

    id: str
    tenant_id: str
    snapshot_date: date
    generated_at: datetime
    completeness: Completeness
    source: str
    snapshot_hash: str

    @property
    def tag(self) -> str:
        return f"{self.id}.{self.snapshot_hash}"

    @classmethod
    def of(cls, run: SnapshotRun) -> SnapshotVersion:
        return cls(
            id=run.id,
            tenant_id=run.tenant_id,
            snapshot_date=run.snapshot_date,
            generated_at=run.generated_at,
            completeness=run.completeness,
            source=run.source,
            snapshot_hash=run.snapshot_hash,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class SnapshotRun:
    """One computation of StudioState. Immutable once stored."""

    id: str
    tenant_id: str
    snapshot_date: date
    generated_at: datetime
    completeness: Completeness
    source: str
    #: the snapshot document exactly as published (schema v3.0 + tenantId + diagnostics)
    document: dict[str, Any]
    #: sha256 of the canonical document
    snapshot_hash: str


@dataclass(frozen=True, kw_only=True, slots=True)
class SnapshotDiff:
    """Key-level changes between two daily snapshots of one tenant."""

    tenant_id: str
    from_date: date
    to_date: date
    from_run_id: str
    to_run_id: str
    #: dotted key -> {"from": old, "to": new}
    changes: dict[str, dict[str, Any]]
    computed_at: datetime


class JobStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    #: the process running it died (kill -9, host crash): closed on the next start (issue 13)
    ABANDONED = "abandoned"


@dataclass(frozen=True, kw_only=True, slots=True)
class JobRun:
    id: str
    job: str
    tenant_id: str
    status: JobStatus
    started_at: datetime
    finished_at: datetime | None = None
    error: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_ms(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds() * 1000.0


class CloseKind(StrEnum):
    """How a day's close was taken (issue 14): only the first three carry a snapshot."""

    #: read from the cloud just after local midnight, within the on-time grace
    ON_TIME = "on_time"
    #: read later, at the day boundary, with Firestore's ``read_time`` (versions kept 1 h, 7 d with PITR)
    READ_TIME = "read_time"
    #: the brain missed the boundary: the last complete snapshot taken during that local date
    LATE = "late"
    #: nothing of that date can be trusted: no snapshot, never filled with later data
    NOT_CLOSED = "not_closed"


@dataclass(frozen=True, kw_only=True, slots=True)
class DailyClose:
    """The final record of one local day. Written once; a second close of the same day keeps the first."""

    tenant_id: str
    close_date: date
    kind: CloseKind
    #: the snapshot run the close stands for (None when NOT_CLOSED)
    run_id: str | None
    closed_at: datetime
    #: why this kind was chosen, in words (shown on Today and by ``state close``)
    reason: str

    @property
    def closed(self) -> bool:
        return self.kind is not CloseKind.NOT_CLOSED
