"""The audit service: append and query (through the EventStore), verify, sign checkpoints, export.

Verification streams each tenant's chain in constant memory through :class:`ChainVerifier`, checks every
keyed event's MAC with the brain's keyring (kept outside the database), checks the chain against every
checkpoint held in any store (the database *and* the file outside it) whose signature verifies with a
trusted key, and reports the first break per tenant. Verifying an export needs no database
(:func:`verify_export`); given the local keyring and checkpoint file it checks those too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from studio_brain.domain.audit import (
    GENESIS_HASH,
    AuditCheckpoint,
    AuditDraft,
    AuditEvent,
    AuditPage,
    AuditQuery,
    BreakKind,
    ChainBreak,
    ChainVerifier,
    checkpoint_from_json,
    checkpoint_message,
    checkpoint_to_json,
    first_break,
)
from studio_brain.domain.audit.event import FORMAT_UNKEYED
from studio_brain.domain.audit.segments import join_segments, plan_segments
from studio_brain.domain.errors import Conflict, DataCorrupted, InputInvalid
from studio_brain.domain.records import Keyring
from studio_brain.logging import get_logger
from studio_brain.ports.audit import (
    CheckpointSigner,
    CheckpointStore,
    EventStore,
    ExportReader,
    ExportWriter,
    SegmentVerifier,
    SignatureVerifier,
)
from studio_brain.ports.clock import Clock

log = get_logger(__name__)

EXPORT_FORMAT = "studio-brain.audit-export/1"
#: how often (in events) verification reports progress
PROGRESS_EVERY = 10_000

#: called as ``progress(tenant_id, events_checked)``
Progress = Callable[[str, int], None]


@dataclass(frozen=True, kw_only=True, slots=True)
class VerifyReport:
    """The verdict on one tenant's chain."""

    tenant_id: str
    checked: int
    last_seq: int | None
    last_hash: str | None
    #: checkpoints whose signatures verified and that the chain was checked against
    checkpoints_trusted: int
    problem: ChainBreak | None
    #: whether keyed events' MACs were checked (False: no keyring here, e.g. an export verified elsewhere)
    macs_checked: bool = False
    #: keyed events whose MAC verified / that could not be checked
    keyed: int = 0
    keyed_unchecked: int = 0
    #: unkeyed (format 1) events written before the upgrade to the keyed chain
    unkeyed: int = 0
    #: what seals those: the keyed event whose MAC covers the link to the last of them, else None
    unkeyed_sealed_by: int | None = None
    #: how many segments were checked side by side (1: one pass, which judges every broken chain)
    segments: int = 1

    @property
    def intact(self) -> bool:
        return self.problem is None

    def to_json(self) -> dict[str, Any]:
        return {
            "tenantId": self.tenant_id,
            "intact": self.intact,
            "checked": self.checked,
            "lastSeq": self.last_seq,
            "lastHash": self.last_hash,
            "checkpointsTrusted": self.checkpoints_trusted,
            "macsChecked": self.macs_checked,
            "keyed": self.keyed,
            "keyedUnchecked": self.keyed_unchecked,
            "unkeyed": self.unkeyed,
            "unkeyedSealedBy": self.unkeyed_sealed_by,
            "segments": self.segments,
            "break": None
            if self.problem is None
            else {"seq": self.problem.seq, "kind": str(self.problem.kind), "detail": self.problem.detail},
        }


def _dedupe(checkpoints: Iterable[AuditCheckpoint]) -> list[AuditCheckpoint]:
    unique: dict[tuple[str, int, str, str], AuditCheckpoint] = {}
    for c in checkpoints:
        unique.setdefault((c.tenant_id, c.seq, c.hash, c.signature), c)
    return sorted(unique.values(), key=lambda c: (c.tenant_id, c.seq))


def judge_checkpoints(
    checkpoints: Sequence[AuditCheckpoint], verifier: SignatureVerifier, trusted_keys: set[str]
) -> tuple[list[AuditCheckpoint], ChainBreak | None]:
    """(checkpoints whose signature verifies with a trusted key, the first one that does not)."""
    good: list[AuditCheckpoint] = []
    bad: list[ChainBreak] = []
    for c in checkpoints:
        message = checkpoint_message(tenant_id=c.tenant_id, seq=c.seq, hash=c.hash, at=c.at)
        if c.public_key not in trusted_keys:
            bad.append(
                ChainBreak(
                    tenant_id=c.tenant_id,
                    seq=c.seq,
                    kind=BreakKind.BAD_SIGNATURE,
                    detail="the checkpoint names a key that is not trusted",
                )
            )
        elif not verifier.verify(c.public_key, message, c.signature):
            bad.append(
                ChainBreak(
                    tenant_id=c.tenant_id,
                    seq=c.seq,
                    kind=BreakKind.BAD_SIGNATURE,
                    detail="the checkpoint's signature does not verify",
                )
            )
        else:
            good.append(c)
    return good, first_break(bad)


async def verify_chain(
    tenant_id: str,
    events: AsyncIterator[AuditEvent],
    *,
    checkpoints: Sequence[AuditCheckpoint],
    verifier: SignatureVerifier,
    trusted_keys: set[str],
    first_seq: int = 1,
    anchor_hash: str = GENESIS_HASH,
    progress: Progress | None = None,
    keyring: Keyring | None = None,
    unkeyed_tail_ok: bool = False,
) -> VerifyReport:
    """Verify one tenant's chain from ``events`` (in seq order) against ``checkpoints`` (and, with
    ``keyring``, every keyed event's MAC; see :class:`ChainVerifier`)."""
    trusted, signature_break = judge_checkpoints(
        [c for c in checkpoints if c.tenant_id == tenant_id], verifier, trusted_keys
    )
    chain = ChainVerifier(
        tenant_id,
        first_seq=first_seq,
        anchor_hash=anchor_hash,
        checkpoints=trusted,
        keyring=keyring,
        unkeyed_tail_ok=unkeyed_tail_ok,
    )
    feed = chain.feed
    try:
        async for event in events:
            if feed(event) is not None:
                break  # the first break is known; reading on would change nothing
            if progress is not None and chain.checked % PROGRESS_EVERY == 0:
                progress(tenant_id, chain.checked)
    except DataCorrupted as err:
        expected = (chain.last_seq or first_seq - 1) + 1
        corrupted = ChainBreak(
            tenant_id=tenant_id, seq=expected, kind=BreakKind.MODIFIED, detail=f"unreadable record: {err}"
        )
        problem = first_break([chain.broken, corrupted, signature_break])
    else:
        problem = first_break([chain.finish(), signature_break])
    finally:
        closer = getattr(events, "aclose", None)
        if closer is not None:
            await closer()
    if progress is not None:
        progress(tenant_id, chain.checked)
    return VerifyReport(
        tenant_id=tenant_id,
        checked=chain.checked,
        last_seq=chain.last_seq,
        last_hash=chain.last_hash,
        checkpoints_trusted=len(trusted),
        problem=problem,
        macs_checked=chain.macs_checked,
        keyed=chain.keyed,
        keyed_unchecked=chain.keyed_unchecked,
        unkeyed=chain.unkeyed,
        unkeyed_sealed_by=chain.unkeyed_sealed_by,
    )


class AuditService:
    """Everything the rest of Studio Brain does with the audit log goes through here or the EventStore."""

    def __init__(
        self,
        *,
        events: EventStore,
        checkpoint_stores: Sequence[CheckpointStore],
        signer: CheckpointSigner,
        verifier: SignatureVerifier,
        clock: Clock,
        keyring: Keyring | None = None,
        segments: SegmentVerifier | None = None,
    ) -> None:
        if not checkpoint_stores:
            raise ValueError("at least one checkpoint store is required")
        #: the brain's MAC keys (outside the database); None only for stores of unkeyed events (tests)
        self.keyring = keyring
        self.events = events
        self._stores = list(checkpoint_stores)
        self._signer = signer
        self._verifier = verifier
        self._clock = clock
        #: checks long chains in segments side by side (worker processes); None: always one pass
        self._segments = segments

    # --- the EventStore API, for callers that hold the service ----------------------------------

    async def append(self, draft: AuditDraft) -> AuditEvent:
        return await self.events.append(draft)

    async def append_many(self, drafts: Sequence[AuditDraft]) -> list[AuditEvent]:
        return await self.events.append_many(drafts)

    async def query(self, tenant_id: str, query: AuditQuery) -> AuditPage:
        return await self.events.query(tenant_id, query)

    # --- checkpoints ----------------------------------------------------------------------------

    @property
    def public_key(self) -> str:
        return self._signer.public_key

    async def all_checkpoints(self, tenant_id: str | None = None) -> list[AuditCheckpoint]:
        """Every checkpoint held by any store (database and file), deduplicated."""
        found: list[AuditCheckpoint] = []
        for store in self._stores:
            found += await store.checkpoints(tenant_id)
        return _dedupe(found)

    async def checkpoint(self, tenant_id: str, *, seal_unkeyed: bool = False) -> AuditCheckpoint | None:
        """Sign the chain's head and keep the checkpoint in every store; None when the chain is empty.

        The chain from the newest trusted checkpoint to the head is verified first — hashes, links, MACs
        and the keyed-chain rules: a broken chain is never signed (Conflict). Checkpointing an unchanged
        head returns the existing checkpoint. ``seal_unkeyed`` accepts an unkeyed tail not yet sealed by
        a keyed event: only for the upgrade to the keyed chain (:meth:`seal_unkeyed_chains`).
        """
        head = await self.events.head(tenant_id)
        if head is None:
            return None
        trusted, _ = judge_checkpoints(
            await self.all_checkpoints(tenant_id), self._verifier, {self._signer.public_key}
        )
        newest = trusted[-1] if trusted else None
        if newest is not None and newest.seq == head.seq and newest.hash == head.hash:
            await self._keep(newest)  # a store that missed it (e.g. a new checkpoint file) gets it now
            return newest
        start = newest.seq + 1 if newest is not None and newest.seq < head.seq else 1
        anchor = newest.hash if start > 1 and newest is not None else GENESIS_HASH
        report = await verify_chain(
            tenant_id,
            self.events.stream(tenant_id, from_seq=start, to_seq=head.seq),
            checkpoints=[c for c in trusted if c.seq >= start],
            verifier=self._verifier,
            trusted_keys={self._signer.public_key},
            first_seq=start,
            anchor_hash=anchor,
            keyring=self.keyring,
            unkeyed_tail_ok=seal_unkeyed,
        )
        if report.problem is not None:
            raise Conflict(
                f"not signing a broken chain: tenant {tenant_id} is {report.problem.kind} at seq "
                f"{report.problem.seq}; run `studio-brain audit verify`"
            )
        at = self._clock.now()
        message = checkpoint_message(tenant_id=tenant_id, seq=head.seq, hash=head.hash, at=at)
        checkpoint = AuditCheckpoint(
            tenant_id=tenant_id,
            seq=head.seq,
            hash=head.hash,
            at=at,
            signature=self._signer.sign(message),
            public_key=self._signer.public_key,
        )
        await self._keep(checkpoint)
        log.info("audit.checkpoint.signed", tenant_id=tenant_id, seq=head.seq)
        return checkpoint

    async def seal_unkeyed_chains(self) -> list[AuditCheckpoint]:
        """The upgrade to the keyed chain: sign a checkpoint at every chain whose head is still unkeyed.

        Called once, when the brain's MAC keyring is created (bootstrap). From then on unkeyed events are
        accepted only where this checkpoint (or the first keyed event after them) seals them, so a
        database writer cannot add or rewrite unkeyed events later. A chain that does not verify is not
        sealed (logged): ``audit verify`` reports it.
        """
        sealed: list[AuditCheckpoint] = []
        for tenant in await self.events.tenants():
            head = await self.events.head(tenant)
            if head is None or head.format_version != FORMAT_UNKEYED:
                continue
            try:
                checkpoint = await self.checkpoint(tenant, seal_unkeyed=True)
            except Conflict as err:
                log.warning("audit.upgrade.not_sealed", tenant_id=tenant, reason=str(err))
                continue
            if checkpoint is not None:
                log.info("audit.upgrade.sealed", tenant_id=tenant, seq=checkpoint.seq)
                sealed.append(checkpoint)
        return sealed

    async def _keep(self, checkpoint: AuditCheckpoint) -> None:
        for store in self._stores:
            await store.save(checkpoint)

    # --- verification ---------------------------------------------------------------------------

    async def verify(
        self, tenant_id: str | None = None, *, progress: Progress | None = None
    ) -> list[VerifyReport]:
        """Verify one tenant's chain, or every tenant with events or checkpoints."""
        checkpoints = await self.all_checkpoints(tenant_id)
        if tenant_id is not None:
            tenants = [tenant_id]
        else:
            tenants = sorted(set(await self.events.tenants()) | {c.tenant_id for c in checkpoints})
        reports: list[VerifyReport] = []
        for tenant in tenants:
            report = await self._verify_in_segments(tenant, checkpoints, progress)
            if report is None:
                report = await verify_chain(
                    tenant,
                    self.events.stream(tenant),
                    checkpoints=checkpoints,
                    verifier=self._verifier,
                    trusted_keys={self._signer.public_key},
                    progress=progress,
                    keyring=self.keyring,
                )
            if report.problem is not None:
                log.warning(
                    "audit.verify.broken",
                    tenant_id=tenant,
                    seq=report.problem.seq,
                    kind=str(report.problem.kind),
                )
            reports.append(report)
        return reports

    async def _verify_in_segments(
        self, tenant_id: str, checkpoints: Sequence[AuditCheckpoint], progress: Progress | None
    ) -> VerifyReport | None:
        """The verdict of checking a long chain in segments side by side, when the segments prove it
        intact; None when it is short, there is one worker, or the segments found anything at all —
        then one pass judges the chain, naming the first break as it always has."""
        segmenter = self._segments
        if segmenter is None or segmenter.workers < 2:
            return None
        head = await self.events.head(tenant_id)
        plan = plan_segments(
            0 if head is None else head.seq, segmenter.workers, min_events=segmenter.min_events
        )
        if len(plan) < 2:
            return None
        trusted, signature_break = judge_checkpoints(
            [c for c in checkpoints if c.tenant_id == tenant_id], self._verifier, {self._signer.public_key}
        )
        log.info("audit.verify.segments", tenant_id=tenant_id, segments=len(plan))
        verdicts = await segmenter.verify_segments(
            tenant_id,
            plan,
            checkpoints=trusted,
            keyring=self.keyring,
            progress=None if progress is None else (lambda checked: progress(tenant_id, checked)),
        )
        joined = None if verdicts is None else join_segments(verdicts)
        if joined is None:
            log.info("audit.verify.one_pass", tenant_id=tenant_id, reason="the segments did not join")
            return None
        if progress is not None:
            progress(tenant_id, joined.checked)
        return VerifyReport(
            tenant_id=tenant_id,
            checked=joined.checked,
            last_seq=joined.last_seq,
            last_hash=joined.last_hash,
            checkpoints_trusted=len(trusted),
            problem=signature_break,
            macs_checked=self.keyring is not None,
            keyed=joined.keyed,
            keyed_unchecked=joined.keyed_unchecked,
            segments=len(plan),
        )

    async def count_hint(self, tenant_id: str) -> int:
        """Roughly how many events a verify of ``tenant_id`` will read (the head's seq), for progress bars."""
        head = await self.events.head(tenant_id)
        return 0 if head is None else head.seq

    # --- export ---------------------------------------------------------------------------------

    async def export(
        self, writer: ExportWriter, tenant_id: str, *, from_seq: int = 1, to_seq: int | None = None
    ) -> dict[str, Any]:
        """Write ``tenant_id``'s events in [from_seq, to_seq] and a manifest; returns the manifest."""
        if from_seq < 1 or (to_seq is not None and to_seq < from_seq):
            raise InputInvalid("export range: need 1 <= --from-seq <= --to-seq")
        first: AuditEvent | None = None
        last: AuditEvent | None = None
        rows = 0
        async for event in self.events.stream(tenant_id, from_seq=from_seq, to_seq=to_seq):
            await writer.write_event(event)
            first = first or event
            last = event
            rows += 1
        checkpoints = [
            c
            for c in await self.all_checkpoints(tenant_id)
            if c.seq >= from_seq and (to_seq is None or c.seq <= to_seq)
        ]
        manifest: dict[str, Any] = {
            "format": EXPORT_FORMAT,
            "tenantId": tenant_id,
            "fromSeq": from_seq,
            "toSeq": to_seq,
            "rowCount": rows,
            "first": None
            if first is None
            else {"seq": first.seq, "hash": first.hash, "prevHash": first.prev_hash},
            "last": None if last is None else {"seq": last.seq, "hash": last.hash},
            "checkpoints": [checkpoint_to_json(c) for c in checkpoints],
            "publicKey": self._signer.public_key,
            "exportedAt": self._clock.now().isoformat(),
        }
        await writer.finish(manifest)
        log.info("audit.exported", tenant_id=tenant_id, rows=rows, from_seq=from_seq, to_seq=to_seq)
        return manifest


def _manifest_int(manifest: dict[str, Any], key: str) -> int:
    value = manifest.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputInvalid(f"the export manifest's {key!r} is not an integer")
    return value


def _covered_by_export(manifest: dict[str, Any], checkpoint: AuditCheckpoint, from_seq: int) -> bool:
    """Whether an export must agree with ``checkpoint`` from this installation's checkpoint file: in its
    range (``toSeq``), or — a whole-chain export — signed before the export was written (a checkpoint
    taken later may cover rows appended after the export)."""
    if checkpoint.seq < from_seq:
        return False
    to_seq = manifest.get("toSeq")
    if isinstance(to_seq, int) and not isinstance(to_seq, bool):
        return checkpoint.seq <= to_seq
    try:
        exported_at = datetime.fromisoformat(str(manifest.get("exportedAt")))
    except ValueError:
        return True  # no readable export time: every checkpoint counts
    if exported_at.tzinfo is None:
        exported_at = exported_at.replace(tzinfo=UTC)
    return checkpoint.at <= exported_at


async def verify_export(
    reader: ExportReader,
    verifier: SignatureVerifier,
    *,
    trusted_keys: set[str] | None = None,
    progress: Progress | None = None,
    keyring: Keyring | None = None,
    outside_checkpoints: Sequence[AuditCheckpoint] = (),
) -> VerifyReport:
    """Verify an export with no database. ``trusted_keys`` None trusts the manifest's own public key.

    ``keyring``: this installation's MAC keys, when the export is verified where it was made (then every
    keyed event's MAC is checked); ``outside_checkpoints``: checkpoints from this installation's checkpoint
    file, checked as well as the manifest's (an edited manifest cannot drop them).
    """
    manifest = reader.manifest()
    if manifest.get("format") != EXPORT_FORMAT:
        raise InputInvalid(f"not a Studio Brain audit export (format {manifest.get('format')!r})")
    tenant_id = manifest.get("tenantId")
    if not isinstance(tenant_id, str):
        raise InputInvalid("the export manifest has no tenantId")
    from_seq = _manifest_int(manifest, "fromSeq")
    row_count = _manifest_int(manifest, "rowCount")
    raw_checkpoints = manifest.get("checkpoints")
    if not isinstance(raw_checkpoints, list):
        raise InputInvalid("the export manifest has no checkpoints list")
    checkpoints = _dedupe(
        [checkpoint_from_json(c) for c in raw_checkpoints]
        + [c for c in outside_checkpoints if _covered_by_export(manifest, c, from_seq)]
    )
    keys = trusted_keys if trusted_keys is not None else {str(manifest.get("publicKey"))}
    anchor = GENESIS_HASH
    first = manifest.get("first")
    if from_seq > 1 and isinstance(first, dict) and isinstance(first.get("prevHash"), str):
        anchor = first["prevHash"]  # a partial export is anchored on its first row's predecessor
    report = await verify_chain(
        tenant_id,
        reader.events(),
        checkpoints=checkpoints,
        verifier=verifier,
        trusted_keys=keys,
        first_seq=from_seq,
        anchor_hash=anchor,
        progress=progress,
        keyring=keyring,
    )
    if report.problem is None and report.checked != row_count:
        reached = report.last_seq if report.last_seq is not None else from_seq - 1
        report = replace(
            report,
            problem=ChainBreak(
                tenant_id=tenant_id,
                seq=reached + 1 if report.checked < row_count else reached,
                kind=BreakKind.MISSING if report.checked < row_count else BreakKind.INSERTED,
                detail=f"the manifest lists {row_count} rows but the file holds {report.checked}",
            ),
        )
    return report
