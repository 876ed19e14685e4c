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
