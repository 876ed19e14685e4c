"""Rebuild (seed §6): reconstruct the local StudioState from audit-log replay plus a fresh cloud read.

Daily closes (issue 14) come back from their ``studio_state.closed`` events, each only when its run was
restored; a close already in the store stands. Past days cannot be re-read from the cloud, so every
``studio_state.computed`` event carries its
snapshot document; replay checks each document against the event's ``output_hash`` (a document that does
not hash to what the tamper-evident log recorded is skipped and reported, never restored), wipes the
tenant's snapshots and diffs, restores every run, recomputes the diffs between consecutive daily
snapshots, and finally takes a fresh snapshot from the cloud when a source is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import pairwise

from studio_brain.domain.audit import AuditEvent
from studio_brain.domain.errors import CloudReadError
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.state import CloseKind, Completeness, DailyClose, SnapshotRun
from studio_brain.logging import get_logger
from studio_brain.ports.audit import EventStore
from studio_brain.ports.state import StateStore
from studio_brain.services.state import CLOSED_ACTION, COMPUTED_ACTION, StateService

log = get_logger(__name__)


@dataclass(frozen=True, kw_only=True, slots=True)
class RebuildReport:
    events_replayed: int
    runs_restored: int
    diffs_rebuilt: int
    #: "event seq N: reason" for every computed event that could not be restored
    skipped: list[str] = field(default_factory=list)
    fresh_run: SnapshotRun | None = None
    cloud_error: str | None = None
    #: daily closes put back from their ``studio_state.closed`` events (closes already present stand)
    closes_restored: int = 0


def run_from_event(event: AuditEvent) -> SnapshotRun:
    """The snapshot run a ``studio_state.computed`` event recorded; ValueError when it cannot be trusted."""
    meta = event.metadata
    document = meta.get("document")
    if not isinstance(document, dict):
        raise ValueError("the event carries no snapshot document")
    if sha256_hex(document) != event.output_hash:
        raise ValueError("the document does not hash to the event's output_hash")
    try:
        return SnapshotRun(
            id=str(meta["runId"]),
            tenant_id=event.tenant_id,
            snapshot_date=date.fromisoformat(str(meta["snapshotDate"])),
            generated_at=datetime.fromisoformat(str(document["generatedAt"])),
            completeness=Completeness(str(meta["completeness"])),
            source=str(meta["source"]),
            document=document,
            snapshot_hash=event.output_hash,
        )
    except (KeyError, ValueError) as err:
        raise ValueError(f"the event's metadata is incomplete ({err})") from err


def close_from_event(event: AuditEvent) -> DailyClose:
    """The daily close a ``studio_state.closed`` event recorded; ValueError when it is incomplete."""
    meta = event.metadata
    try:
        run_id = meta.get("runId")
        return DailyClose(
            tenant_id=event.tenant_id,
            close_date=date.fromisoformat(str(meta["closeDate"])),
            kind=CloseKind(str(meta["kind"])),
            run_id=None if run_id is None else str(run_id),
            closed_at=event.at,
            reason=str(meta.get("reason") or event.rationale),
        )
    except (KeyError, ValueError) as err:
        raise ValueError(f"the close event's metadata is incomplete ({err})") from err


class RebuildService:
    def __init__(self, *, state: StateService, store: StateStore, events: EventStore) -> None:
        self._state = state
        self._store = store
        self._events = events

    async def rebuild(self, *, refresh_source: str | None = None) -> RebuildReport:
        tenant = self._state.tenant_id
        runs: dict[str, SnapshotRun] = {}
        closes: list[DailyClose] = []
        skipped: list[str] = []
        replayed = 0
        async for event in self._events.stream(tenant):
            if event.action == CLOSED_ACTION:
                try:
                    closes.append(close_from_event(event))
                except ValueError as err:
                    skipped.append(f"event seq {event.seq}: {err}")
                continue
            if event.action != COMPUTED_ACTION:
                continue
            replayed += 1
            try:
                run = run_from_event(event)
            except ValueError as err:
                skipped.append(f"event seq {event.seq}: {err}")
                continue
            runs.setdefault(run.id, run)

        # Everything is read and checked before anything is deleted.
        await self._store.wipe(tenant)
        for run in runs.values():
            await self._store.save_run(run)
        diffs = 0
        if runs:
            first = min(r.snapshot_date for r in runs.values())
            last = max(r.snapshot_date for r in runs.values())
            dailies = await self._store.history(tenant, first, last)
            for old, new in pairwise(dailies):
                await self._state.save_diff(old, new)
                diffs += 1
        restored_closes = 0
        for close in closes:
            if close.run_id is not None and close.run_id not in runs:
                skipped.append(f"close of {close.close_date}: its run {close.run_id} was not restored")
                continue
            # closes are final: one already in the store (the first close) stands
            if await self._store.get_close(tenant, close.close_date) is None:
                await self._store.record_close(close)
                restored_closes += 1
        log.info(
            "studio_state.rebuilt", tenant_id=tenant, events=replayed, runs=len(runs), skipped=len(skipped)
        )

        fresh: SnapshotRun | None = None
        cloud_error: str | None = None
        if refresh_source is not None:
            try:
                fresh = await self._state.compute(refresh_source)
            except CloudReadError as err:
                cloud_error = err.message
        return RebuildReport(
            events_replayed=replayed,
            runs_restored=len(runs),
            diffs_rebuilt=diffs,
            skipped=skipped,
            fresh_run=fresh,
            cloud_error=cloud_error,
            closes_restored=restored_closes,
        )
