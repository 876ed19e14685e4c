"""Verifying a chain: :class:`ChainVerifier` recomputes hashes, MACs and links of one tenant's events fed
in ``seq`` order, in constant memory, and names the first break (:class:`BreakKind`) with its ``seq``.

Keyed chains (format 2, docs/audit.md "Keyed chain"): with the brain's :class:`Keyring` every keyed
event's MAC must verify. Unkeyed (format 1) events are accepted only as the chain's prefix written before
the upgrade, and only when something a database writer cannot forge seals them: the first keyed event
(its MAC covers its link to the last unkeyed one) or a signed checkpoint. An unkeyed event after a keyed
one, or an unsealed unkeyed tail, is :attr:`BreakKind.UNKEYED`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from hmac import compare_digest

from studio_brain.domain.audit.chain import event_hash
from studio_brain.domain.audit.checkpoint import AuditCheckpoint
from studio_brain.domain.audit.event import FORMAT_KEYED, FORMAT_UNKEYED, GENESIS_HASH, AuditEvent
from studio_brain.domain.audit.mac import EVENT_MAC_DOMAIN
from studio_brain.domain.errors import InputInvalid
from studio_brain.domain.records import Keyring


class BreakKind(StrEnum):
    """How a chain is broken (the first break found is reported with its seq)."""

    #: a row's content no longer matches its hash, or a row was rewritten with a fresh hash
    MODIFIED = "modified"
    #: a seq is absent (a row was deleted)
    MISSING = "missing"
    #: a row that was never sealed into the chain sits in it
    INSERTED = "inserted"
    #: a genuine row sits at the wrong position
    REORDERED = "reordered"
    #: rows covered by a signed checkpoint are gone from the end of the chain
    TRUNCATED_AFTER_CHECKPOINT = "truncated_after_checkpoint"
    #: a checkpoint's signature does not verify with a trusted key
    BAD_SIGNATURE = "bad_signature"
    #: an unkeyed (format 1) row where only keyed rows may be: after a keyed row, or an unkeyed tail
    #: sealed neither by a keyed row nor by a signed checkpoint (written without the brain's key)
    UNKEYED = "unkeyed"


@dataclass(frozen=True, kw_only=True, slots=True)
class ChainBreak:
    tenant_id: str
    seq: int
    kind: BreakKind
    detail: str


def first_break(breaks: Iterable[ChainBreak | None]) -> ChainBreak | None:
    """The break with the lowest seq (ties: the first given)."""
    found = [b for b in breaks if b is not None]
    return min(found, key=lambda b: b.seq) if found else None


#: how far from its position the verifier looks for the seq a displaced row was sealed at
REORDER_WINDOW = 4096


class ChainVerifier:
    """Feed one tenant's events in ``seq`` order; get the first break. Constant memory, pure.

    Keeps the last two accepted hashes and at most one suspicious row, which is judged when the next
    row (or the end) arrives — enough to tell a modified row from an inserted, missing or moved one.
    ``checkpoints`` must already be signature-checked; the chain must match each one it passes and must
    reach the newest.

    ``keyring``: the brain's MAC keys. With it, keyed rows must carry a valid MAC and unkeyed rows must be
    sealed (module docstring); without it (an export verified elsewhere) MACs cannot be checked and the
    signed checkpoints are the proof. ``unkeyed_tail_ok`` lets an unsealed unkeyed tail pass: only for
    sealing the chain under a checkpoint at the upgrade to keyed events.
    """

    def __init__(
        self,
        tenant_id: str,
        *,
        first_seq: int = 1,
        anchor_hash: str = GENESIS_HASH,
        checkpoints: Sequence[AuditCheckpoint] = (),
        keyring: Keyring | None = None,
        unkeyed_tail_ok: bool = False,
    ) -> None:
        self.tenant_id = tenant_id
        self._expected = first_seq
        self._first_seq = first_seq
        self._prev_hash = anchor_hash
        self._prevprev_hash: str | None = None
        self._pending: AuditEvent | None = None
        self._broken: ChainBreak | None = None
        self._checkpoints = {c.seq: c for c in checkpoints if c.tenant_id == tenant_id}
        self._newest_checkpoint = max(self._checkpoints, default=0)
        self._keyring = keyring
        self._unkeyed_tail_ok = unkeyed_tail_ok
        self._keyed_seen = False
        #: the first seq of unkeyed rows that no keyed row has sealed yet
        self._unsealed_from: int | None = None
        self.checked = 0
        self.last_seq: int | None = None
        self.last_hash: str | None = None
        #: accepted unkeyed (format 1) rows
        self.unkeyed = 0
        #: accepted keyed rows whose MAC verified / that could not be checked (no keyring)
        self.keyed = 0
        self.keyed_unchecked = 0
        #: the keyed row whose MAC sealed the unkeyed prefix, if one did
        self.unkeyed_sealed_by: int | None = None

    @property
    def broken(self) -> ChainBreak | None:
        return self._broken

    @property
    def macs_checked(self) -> bool:
        return self._keyring is not None

    def _break(self, seq: int, kind: BreakKind, detail: str) -> ChainBreak:
        self._broken = ChainBreak(tenant_id=self.tenant_id, seq=seq, kind=kind, detail=detail)
        return self._broken

    def _mac_fine(self, event: AuditEvent) -> bool:
        """The MAC part of "this row is genuine": unkeyed rows have none; without a keyring none is checked."""
        if event.format_version == FORMAT_UNKEYED or self._keyring is None:
            return True
        return self._keyed_mac_ok(event.key_id, event.hash, event.mac)

    def _keyed_mac_ok(self, key_id: object, hash_: object, mac: object) -> bool:
        """The hot path (one HMAC per keyed event): mac_ok, with the key looked up directly."""
        assert self._keyring is not None  # callers check: without a keyring no MAC is checked
        key = self._keyring.keys.get(key_id)  # type: ignore[call-overload]
        if key is None or type(mac) is not str or type(hash_) is not str or not hash_.isascii():
            return False
        return compare_digest(key.mac(EVENT_MAC_DOMAIN + hash_.encode("ascii")), mac)

    def feed(self, event: AuditEvent) -> ChainBreak | None:
        """Check the next event; returns the break once one is known (and keeps returning it)."""
        if self._broken is not None:
            return self._broken
        self.checked += 1
        if self._pending is not None:
            return self._classify(self._pending, event)
        if (
            event.seq == self._expected
            and event.prev_hash == self._prev_hash
            and _hash_or_none(event) == event.hash
            and self._mac_fine(event)
        ):
            return self._accept(event)
        if event.seq > self._expected:
            return self._break(
                self._expected, BreakKind.MISSING, f"seq {self._expected} is absent; next is {event.seq}"
            )
        self._pending = event
        return None

    def finish(self) -> ChainBreak | None:
        """Call after the last event: judges a pending row, checks the newest checkpoint was reached and
        that no unkeyed tail is left unsealed."""
        if self._broken is not None:
            return self._broken
        if self._pending is not None:
            return self._classify(self._pending, None)
        reached = self.last_seq if self.last_seq is not None else self._first_seq - 1
        if self._newest_checkpoint > reached:
            return self._break(
                reached + 1,
                BreakKind.TRUNCATED_AFTER_CHECKPOINT,
                f"the chain ends at seq {reached} but a signed checkpoint covers seq {self._newest_checkpoint}",
            )
        if (
            self._keyring is not None
            and not self._unkeyed_tail_ok
            and self._unsealed_from is not None
            and reached > self._newest_checkpoint
        ):
            first = max(self._unsealed_from, self._newest_checkpoint + 1)
            return self._break(
                first,
                BreakKind.UNKEYED,
                f"seq {first}..{reached} are unkeyed and sealed neither by a keyed event nor by a signed "
                "checkpoint: written without the brain's key (or never sealed at the upgrade: see "
                "docs/audit.md)",
            )
        return None

    def feed_stored(
        self,
        *,
        seq: object,
        prev_hash: object,
        hash_: object,
        computed_hash: str | None,
        format_version: object,
        key_id: object,
        mac: object,
        event: Callable[[], AuditEvent],
    ) -> ChainBreak | None:
        """:meth:`feed` for a row whose hash the caller computed from its stored values
        (:func:`~.chain.canonical_fields_bytes`; None when they cannot be hashed). The common row —
        genuine, in its place — is accepted without building an event; any other is built by ``event``
        and fed, so every break is judged exactly as :meth:`feed` judges it."""
        if (
            self._broken is None
            and self._pending is None
            and type(seq) is int
            and seq == self._expected
            and prev_hash == self._prev_hash
            and computed_hash is not None
            and computed_hash == hash_
            and format_version == FORMAT_KEYED
            and type(format_version) is int
            and self._keyring is not None
            and self._keyed_mac_ok(key_id, computed_hash, mac)
        ):
            self.checked += 1
            return self._accept_sealed(seq, computed_hash, FORMAT_KEYED)
        return self.feed(event())

    def _accept(self, event: AuditEvent) -> ChainBreak | None:
        return self._accept_sealed(event.seq, event.hash, event.format_version)

    def _accept_sealed(self, seq: int, hash_: str, format_version: int) -> ChainBreak | None:
        checkpoint = self._checkpoints.get(seq)
        if checkpoint is not None and checkpoint.hash != hash_:
            return self._break(
                seq, BreakKind.MODIFIED, "the chain differs from a signed checkpoint at this seq"
            )
        if format_version == FORMAT_UNKEYED:
            if self._keyed_seen:
                return self._break(
                    seq,
                    BreakKind.UNKEYED,
                    "an unkeyed row after the chain became keyed: written without the brain's key "
                    "(forged, or a keyed row downgraded)",
                )
            self.unkeyed += 1
            if self._unsealed_from is None:
                self._unsealed_from = seq
        else:
            self._keyed_seen = True
            if self._keyring is not None:
                self.keyed += 1
                if self._unsealed_from is not None:
                    self.unkeyed_sealed_by = seq
                    self._unsealed_from = None
            else:
                self.keyed_unchecked += 1
        self._prevprev_hash = self._prev_hash
        self._prev_hash = hash_
        self._expected = seq + 1
        self.last_seq = seq
        self.last_hash = hash_
        return None

    def _genuine_as(self, event: AuditEvent, seq: int) -> bool:
        """True when ``event`` was sealed (hash, and MAC if keyed) as the row at ``seq``."""
        return _hash_as(event, seq) == event.hash and self._mac_fine(event)

    def _classify(self, row: AuditEvent, after: AuditEvent | None) -> ChainBreak:
        expected = self._expected
        if row.seq < expected:
            return self._break(row.seq, BreakKind.INSERTED, f"a second row claims seq {row.seq}")
        hash_ok = _hash_or_none(row) == row.hash
        mac_fine = self._mac_fine(row)
        self_ok = hash_ok and mac_fine
        link_ok = row.prev_hash == self._prev_hash
        if link_ok and hash_ok and not mac_fine:
            # Re-hashed by someone without the key: forged in, or altered in place.
            if after is None:
                return self._break(
                    expected,
                    BreakKind.INSERTED,
                    "the row at the head is not sealed with the brain's key (forged, or altered and re-hashed)",
                )
            if self._genuine_as(after, expected):
                return self._break(
                    expected, BreakKind.INSERTED, "a row not sealed with the brain's key was inserted here"
                )
            return self._break(
                expected, BreakKind.MODIFIED, "the row's MAC does not verify: altered without the brain's key"
            )
        if link_ok:  # content changed under a kept hash
            return self._break(expected, BreakKind.MODIFIED, "the row's content does not match its hash")
        if self_ok:
            # Sealed for this seq, but it does not link to the row before it.
            if self._prevprev_hash is not None and row.prev_hash == self._prevprev_hash:
                return self._break(
                    expected - 1, BreakKind.INSERTED, "the row before does not belong to the chain"
                )
            if after is not None and (
                after.prev_hash == self._prev_hash or self._genuine_as(after, expected)
            ):
                return self._break(expected, BreakKind.INSERTED, "this row does not belong to the chain")
            if expected > self._first_seq:
                return self._break(
                    expected - 1,
                    BreakKind.MODIFIED,
                    "the row was rewritten with a fresh hash; the next row still links to the original",
                )
            return self._break(expected, BreakKind.MODIFIED, "the row does not link to the chain's anchor")
        if hash_ok and after is not None and self._genuine_as(after, expected):
            # re-hashed without the key, and the next row is the genuine one for this seq
            return self._break(
                expected, BreakKind.INSERTED, "a row not sealed with the brain's key was inserted here"
            )
        sealed_at = _sealed_seq(row, expected) if mac_fine else None
        if sealed_at is None:
            return self._break(expected, BreakKind.MODIFIED, "the row matches neither its hash nor its place")
        if sealed_at == expected - 1 and row.prev_hash == self._prevprev_hash:
            return self._break(
                expected - 1, BreakKind.INSERTED, "a foreign row was inserted and later rows renumbered"
            )
        if sealed_at == expected + 1 and (after is None or after.hash != row.prev_hash):
            return self._break(
                expected,
                BreakKind.MISSING,
                "the row sealed at this seq is gone and later rows were renumbered",
            )
        return self._break(
            expected, BreakKind.REORDERED, f"the row sealed as seq {sealed_at} sits at seq {expected}"
        )


def _hash_or_none(event: AuditEvent) -> str | None:
    try:
        return event_hash(event)
    except (InputInvalid, TypeError, ValueError, AttributeError):
        return None  # a tampered row may hold values that cannot even be hashed


def _hash_as(event: AuditEvent, seq: int) -> str | None:
    if seq < 1:
        return None
    return _hash_or_none(replace(event, seq=seq))


def _sealed_seq(event: AuditEvent, position: int) -> int | None:
    """The seq near ``position`` that ``event`` was sealed with, if any (rows moved by a few places)."""
    for distance in range(1, REORDER_WINDOW + 1):
        for candidate in (position + distance, position - distance):
            if _hash_as(event, candidate) == event.hash:
                return candidate
    return None
