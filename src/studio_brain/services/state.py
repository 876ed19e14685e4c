"""StudioState use cases: compute a snapshot from a cloud source, store it, audit it, diff it, show history.

Every computation is stored as an immutable run; the day's snapshot is the latest *complete* run of that
date, and each complete run refreshes the diffs with its neighbouring daily snapshots. Each computation
appends one ``studio_state.computed`` audit event that carries the full snapshot document, so the local
state can be rebuilt by replaying the log (``services.rebuild``).

The daily close (issue 14) is final: :meth:`StateService.close_day` records one close per local date and
never replaces it. It reads the cloud at the day boundary (Firestore ``read_time``), or just after it
(within the on-time grace); a brain that missed the boundary takes the last complete snapshot of that date
(``late``), else records the day as ``not_closed`` — never a close filled with the next day's data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from studio_brain.domain.audit import ActorType, ApprovalState, AuditDraft
from studio_brain.domain.errors import CloudReadError, InputInvalid, NotFound
from studio_brain.domain.hashing import sha256_hex
from studio_brain.domain.rules import RuleTable
from studio_brain.domain.snapshot import FinanceSummary, build_snapshot, diff_documents, snapshot_date_at
from studio_brain.domain.state import CloseKind, Completeness, DailyClose, SnapshotDiff, SnapshotRun
from studio_brain.logging import get_logger
from studio_brain.ports.audit import EventStore
from studio_brain.ports.clock import Clock, IdFactory
from studio_brain.ports.cloud import CloudReader, FinanceReader, PointInTimeReader
from studio_brain.ports.state import StateStore

COMPUTED_ACTION = "studio_state.computed"
CLOSED_ACTION = "studio_state.closed"
#: a close read from the cloud this long after local midnight still counts as on time
DEFAULT_CLOSE_GRACE = timedelta(minutes=30)
#: how long Firestore keeps old versions for ``read_time`` (1 hour by default; 7 days with PITR)
DEFAULT_VERSION_RETENTION = timedelta(hours=1)
ACTOR_ID = "studio-brain"
#: how far back "the previous daily snapshot" is looked for when diffing
DIFF_LOOKBACK_DAYS = 366
MAX_HISTORY_DAYS = 3660

log = get_logger(__name__)


@dataclass(frozen=True, kw_only=True, slots=True)
class SinceYesterday:
    """Today's newest snapshot against yesterday's close: what "since yesterday" means everywhere."""

    yesterday: date
    latest: SnapshotRun | None
    #: the run compared against: the close's run, or (no close recorded) yesterday's daily snapshot
    baseline: SnapshotRun | None
    close: DailyClose | None
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def basis(self) -> str:
        """In words, what the comparison is against."""
        day = self.yesterday.isoformat()
        if self.close is not None and not self.close.closed:
            return f"{day} was not closed ({self.close.reason})"
        if self.close is not None:
            return f"the close of {day}" + (" (late)" if self.close.kind is CloseKind.LATE else "")
        if self.baseline is not None:
            return f"the last snapshot of {day} (not closed yet)"
        return f"nothing: no snapshot of {day}"


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
        close_grace: timedelta = DEFAULT_CLOSE_GRACE,
        version_retention: timedelta = DEFAULT_VERSION_RETENTION,
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
        self._close_grace = close_grace
        self._version_retention = version_retention

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
        as_of: datetime | None = None,
    ) -> SnapshotRun:
        """Read the cloud, build the snapshot, audit it, store it, refresh diffs. Returns the stored run.

        ``reader`` overrides the named source (the demo history pins a reader to a past day); ``at`` is
        the generation time (default: now), which also decides the snapshot date in the studio's zone;
        ``as_of`` reads the cloud as it was then (a PointInTimeReader only).
        A source that cannot be read at all raises CloudReadError and nothing is stored.
        """
        cloud = reader or self.source(source)
        generated_at = at or self._clock.now()
        if as_of is None:
            read = await cloud.read(self.table)
        elif isinstance(cloud, PointInTimeReader):
            read = await cloud.read_as_of(self.table, as_of)
        else:
            raise InputInvalid(f"the {cloud.source} source cannot read the past")
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

    # --- the daily close ---------------------------------------------------------------------------
    def boundary_after(self, day: date) -> datetime:
        """The local midnight that ends ``day`` (as an aware datetime in the studio's zone)."""
        return datetime.combine(day + timedelta(days=1), time.min, tzinfo=self._zone)

    async def close_day(self, day: date, *, correlation_id: str | None = None) -> DailyClose:
        """Close ``day`` once and for all; a day already closed returns its close unchanged."""
        existing = await self._store.get_close(self.tenant_id, day)
        if existing is not None:
            return existing
        boundary = self.boundary_after(day)
        now = self._clock.now()
        if now < boundary:
            raise InputInvalid(f"{day.isoformat()} is not over yet in {self._zone}: it cannot be closed")
        late_by = now - boundary
        last_instant = boundary - timedelta(microseconds=1)
        cloud = self.source()
        why_not: list[str] = []
        if isinstance(cloud, PointInTimeReader) and late_by <= self._version_retention:
            try:
                run = await self.compute(at=last_instant, as_of=boundary, correlation_id=correlation_id)
            except CloudReadError as err:
                why_not.append(f"the read at the day boundary failed: {err.message}")
            else:
                if run.completeness is Completeness.FULL:
                    return await self._record_close(
                        day,
                        CloseKind.READ_TIME,
                        run.id,
                        f"read as of {_local(boundary)} with read_time, {_duration(late_by)} later",
                        correlation_id,
                    )
                why_not.append("the read at the day boundary was partial")
        if late_by <= self._close_grace:
            try:
                run = await self.compute(at=last_instant, correlation_id=correlation_id)
            except CloudReadError as err:
                why_not.append(f"the cloud could not be read: {err.message}")
            else:
                if run.completeness is Completeness.FULL:
                    return await self._record_close(
                        day,
                        CloseKind.ON_TIME,
                        run.id,
                        f"read {_duration(late_by)} after midnight",
                        correlation_id,
                    )
                why_not.append("the read after midnight was partial")
        else:
            why_not.append(f"the brain missed midnight by {_duration(late_by)}")
        last = await self._store.daily_snapshot(self.tenant_id, day)
        if last is not None and last.generated_at <= boundary:
            return await self._record_close(
                day,
                CloseKind.LATE,
                last.id,
                f"{'; '.join(why_not)}: taken from the last complete snapshot of {day.isoformat()}, "
                f"computed {_local(last.generated_at.astimezone(self._zone))}",
                correlation_id,
            )
        return await self._record_close(
            day,
            CloseKind.NOT_CLOSED,
            None,
            f"{'; '.join(why_not)}, and there is no complete snapshot of {day.isoformat()}",
            correlation_id,
        )

    async def _record_close(
        self, day: date, kind: CloseKind, run_id: str | None, reason: str, correlation_id: str | None
    ) -> DailyClose:
        wanted = DailyClose(
            tenant_id=self.tenant_id,
            close_date=day,
            kind=kind,
            run_id=run_id,
            closed_at=self._clock.now(),
            reason=reason,
        )
        stored = await self._store.record_close(wanted)
        if stored != wanted:
            # another brain closed the day between our check and our insert: its close stands
            return stored
        if self._events is not None:
            await self._events.append(
                AuditDraft(
                    tenant_id=self.tenant_id,
                    actor_type=ActorType.SYSTEM,
                    actor_id=ACTOR_ID,
                    action=CLOSED_ACTION,
                    target="studio_state",
                    rationale=f"{day.isoformat()} {kind.value}: {reason}",
                    approval_state=ApprovalState.NOT_APPLICABLE,
                    input_hash=sha256_hex({"closeDate": day.isoformat(), "kind": kind.value}),
                    output_hash=sha256_hex({"runId": run_id, "reason": reason}),
                    request_id=run_id or f"close:{day.isoformat()}",
                    correlation_id=correlation_id or run_id or f"close:{day.isoformat()}",
                    # what a rebuild needs to put the close back (services.rebuild)
                    metadata={
                        "closeDate": day.isoformat(),
                        "kind": kind.value,
                        "runId": run_id,
                        "reason": reason,
                    },
                )
            )
        log.info("studio_state.closed", close_date=day.isoformat(), kind=kind.value, run_id=run_id)
        return stored

    async def close_of(self, day: date) -> DailyClose | None:
        return await self._store.get_close(self.tenant_id, day)

    async def since_yesterday(self) -> SinceYesterday:
        """The newest snapshot compared with the close of the day before it (yesterday's, when today has a
        snapshot; yesterday's snapshot until that day is closed)."""
        latest = await self._store.latest_snapshot(self.tenant_id)
        yesterday = (latest.snapshot_date if latest is not None else self.today()) - timedelta(days=1)
        close = await self._store.get_close(self.tenant_id, yesterday)
        baseline: SnapshotRun | None
        if close is None:
            baseline = await self._store.daily_snapshot(self.tenant_id, yesterday)
        elif close.run_id is not None:
            baseline = await self._store.get_run(self.tenant_id, close.run_id)
        else:
            baseline = None
        changes: dict[str, dict[str, Any]] = {}
        if latest is not None and baseline is not None and latest.id != baseline.id:
            changes = diff_documents(baseline.document, latest.document)
        return SinceYesterday(
            yesterday=yesterday, latest=latest, baseline=baseline, close=close, changes=changes
        )

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


def _local(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M %Z").strip()


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} days"
