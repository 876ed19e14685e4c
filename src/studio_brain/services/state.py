"""StudioState use cases: compute a snapshot from a cloud source, store it, audit it, diff it, show history.

Every computation is stored as an immutable run; the day's snapshot is the latest *complete* run of that
date, and each complete run refreshes the diffs with its neighbouring daily snapshots. Each computation
appends one ``studio_state.computed`` audit event that carries the full snapshot document, so the local
state can be rebuilt by replaying the log (``services.rebuild``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from studio_brain.domain.audit import ActorType, ApprovalState, AuditDraft
from studio_brain.domain.errors import CloudReadError, InputInvalid, NotFound
from studio_brain.domain.rules import RuleTable
from studio_brain.domain.snapshot import FinanceSummary, build_snapshot, diff_documents, snapshot_date_at
from studio_brain.domain.state import Completeness, SnapshotDiff, SnapshotRun
from studio_brain.logging import get_logger
from studio_brain.ports.audit import EventStore
from studio_brain.ports.clock import Clock, IdFactory
from studio_brain.ports.cloud import CloudReader, FinanceReader
from studio_brain.ports.state import StateStore

COMPUTED_ACTION = "studio_state.computed"
ACTOR_ID = "studio-brain"
#: how far back "the previous daily snapshot" is looked for when diffing
DIFF_LOOKBACK_DAYS = 366
MAX_HISTORY_DAYS = 3660

log = get_logger("studio_brain.state")


class StateService:
    """Computes and serves StudioState for one tenant."""

    def __init__(
        self,
        *,
        tenant_id: str,
        table: RuleTable,
        store: StateStore,
        events: EventStore | None,
        clock: Clock,
        ids: IdFactory,
        zone: tzinfo,
        sources: Mapping[str, CloudReader],
        default_source: str,
        finance: FinanceReader | None = None,
    ) -> None:
        if default_source not in sources:
            raise ValueError(f"default source {default_source!r} is not one of {sorted(sources)}")
        self.tenant_id = tenant_id
        self.table = table
        self._store = store
        self._events = events
        self._clock = clock
        self._ids = ids
        self._zone = zone
        self._sources = dict(sources)
        self.default_source = default_source
        self._finance = finance

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(sorted(self._sources))

    def source(self, name: str | None = None) -> CloudReader:
        chosen = name or self.default_source
        if chosen not in self._sources:
            raise InputInvalid(f"unknown source {chosen!r}; choose one of {', '.join(self.sources)}")
        return self._sources[chosen]

    def set_default_source(self, name: str) -> None:
        """Make ``name`` the source of computations that do not name one (``studio-brain demo`` uses demo)."""
        self.source(name)
        self.default_source = name

    def today(self) -> date:
        return snapshot_date_at(self._clock.now(), self._zone)

    # --- computing ---------------------------------------------------------------------------------
    async def compute(
        self,
        source: str | None = None,
        *,
        reader: CloudReader | None = None,
        at: datetime | None = None,
        correlation_id: str | None = None,
    ) -> SnapshotRun:
        """Read the cloud, build the snapshot, audit it, store it, refresh diffs. Returns the stored run.

        ``reader`` overrides the named source (the demo history pins a reader to a past day); ``at`` is
        the generation time (default: now), which also decides the snapshot date in the studio's zone.
        A source that cannot be read at all raises CloudReadError and nothing is stored.
        """
        cloud = reader or self.source(source)
        generated_at = at or self._clock.now()
        read = await cloud.read(self.table)
        finance, warnings = await self._finance_summary(cloud.source)
        snapshot = build_snapshot(
            table=self.table,
            read=read,
            tenant_id=self.tenant_id,
            snapshot_date=snapshot_date_at(generated_at, self._zone),
            generated_at=generated_at,
            finance=finance,
            warnings=warnings,
        )
        run = SnapshotRun(
            id=self._ids.new_id(),
            tenant_id=self.tenant_id,
            snapshot_date=snapshot_date_at(generated_at, self._zone),
            generated_at=generated_at,
            completeness=snapshot.completeness,
            source=cloud.source,
            document=snapshot.document,
            snapshot_hash=snapshot.snapshot_hash,
        )
        # The audit event goes first: the log is what a rebuild replays, so a run that is stored must
        # always be in it (a logged run whose save then failed is simply restored by the next rebuild).
        await self._audit(run, correlation_id or run.id)
        await self._store.save_run(run)
        if run.completeness is Completeness.FULL:
            await self.refresh_diffs_around(run.snapshot_date)
        log.info(
            "studio_state.computed",
            tenant_id=self.tenant_id,
            run_id=run.id,
            snapshot_date=run.snapshot_date.isoformat(),
            source=run.source,
            completeness=run.completeness.value,
        )
        return run

    async def _finance_summary(self, source: str) -> tuple[FinanceSummary | None, tuple[str, ...]]:
        # The Functions endpoint reads the real studio; it never overrides demo numbers.
        if self._finance is None or source != "firestore":
            return None, ()
        try:
            return await self._finance.finance_summary(), ()
        except CloudReadError as err:
            log.warning("studio_state.finance_fallback", tenant_id=self.tenant_id, reason=err.message)
            return None, (
                f"finance read endpoint failed, Firestore finance rules used instead: {err.message}",
            )

    async def _audit(self, run: SnapshotRun, correlation_id: str) -> None:
        if self._events is None:
            return
        await self._events.append(
            AuditDraft(
                tenant_id=self.tenant_id,
                actor_type=ActorType.SYSTEM,
                actor_id=ACTOR_ID,
                action=COMPUTED_ACTION,
                target="studio_state",
                rationale=f"{run.completeness.value} snapshot computed from {run.source}",
                approval_state=ApprovalState.NOT_APPLICABLE,
                input_hash=self.table.hash,
                output_hash=run.snapshot_hash,
                request_id=run.id,
                correlation_id=correlation_id,
                metadata={
                    "runId": run.id,
                    "snapshotDate": run.snapshot_date.isoformat(),
                    "generatedAt": run.document["generatedAt"],
                    "source": run.source,
                    "completeness": run.completeness.value,
                    "ruleTable": self.table.definition(),
                    # what replay needs: past days cannot be re-read from the cloud
                    "document": run.document,
                },
            )
        )

    async def refresh_diffs_around(self, day: date) -> list[SnapshotDiff]:
        """Store the diffs (previous daily snapshot → ``day``) and (``day`` → next daily snapshot)."""
        current = await self._store.daily_snapshot(self.tenant_id, day)
        if current is None:
            return []
        saved = []
        before = await self._store.history(
            self.tenant_id, day - timedelta(days=DIFF_LOOKBACK_DAYS), day - timedelta(days=1)
        )
        if before:
            saved.append(await self.save_diff(before[-1], current))
        after = await self._store.history(
            self.tenant_id, day + timedelta(days=1), day + timedelta(days=DIFF_LOOKBACK_DAYS)
        )
        if after:
            saved.append(await self.save_diff(current, after[0]))
        return saved

    async def save_diff(self, old: SnapshotRun, new: SnapshotRun) -> SnapshotDiff:
        diff = SnapshotDiff(
            tenant_id=self.tenant_id,
            from_date=old.snapshot_date,
            to_date=new.snapshot_date,
            from_run_id=old.id,
            to_run_id=new.id,
            changes=diff_documents(old.document, new.document),
            computed_at=self._clock.now(),
        )
        await self._store.save_diff(diff)
        return diff

    async def backfill(self, days: int, reader_for: Callable[[date], CloudReader]) -> list[SnapshotRun]:
        """Compute the daily snapshots of the ``days`` days before today and of today, skipping any day
        that already has one (so a restarted demo never duplicates its history). Oldest first."""
        today = self.today()
        computed = []
        for offset in range(days, -1, -1):
            day = today - timedelta(days=offset)
            if await self._store.daily_snapshot(self.tenant_id, day) is not None:
                continue
            end_of_day = datetime.combine(day, time(23, 59, 59), tzinfo=self._zone)
            at = min(self._clock.now(), end_of_day.astimezone(UTC))
            computed.append(await self.compute(reader=reader_for(day), at=at))
        return computed

    # --- reading -----------------------------------------------------------------------------------
    async def show(self, day: date | None = None) -> SnapshotRun:
        """The daily snapshot of ``day`` (default: the newest one)."""
        if day is None:
            run = await self._store.latest_snapshot(self.tenant_id)
            if run is None:
                raise NotFound("no complete snapshot yet: run `studio-brain snapshot` first")
            return run
        run = await self._store.daily_snapshot(self.tenant_id, day)
        if run is None:
            raise NotFound(f"no complete snapshot for {day.isoformat()}")
        return run

    async def diff(self, from_day: date, to_day: date) -> SnapshotDiff:
        """The stored diff between two daily snapshots, computed (and stored) on first request."""
        if from_day >= to_day:
            raise InputInvalid(f"--from ({from_day}) must be before --to ({to_day})")
        old = await self.show(from_day)
        new = await self.show(to_day)
        stored = await self._store.get_diff(self.tenant_id, from_day, to_day)
        if stored is not None and (stored.from_run_id, stored.to_run_id) == (old.id, new.id):
            return stored
        return await self.save_diff(old, new)

    async def history(self, days: int, *, end: date | None = None) -> Sequence[SnapshotRun]:
        """Daily snapshots of the ``days`` days ending ``end`` (default today), oldest first."""
        if not 1 <= days <= MAX_HISTORY_DAYS:
            raise InputInvalid(f"--days must be between 1 and {MAX_HISTORY_DAYS}, got {days}")
        last = end or self.today()
        return await self._store.history(self.tenant_id, last - timedelta(days=days - 1), last)
