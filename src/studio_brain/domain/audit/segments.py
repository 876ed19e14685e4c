"""Verifying a long chain side by side: how it is cut into segments (:func:`plan_segments`) and when the
verdicts of segments checked on their own add up to the verdict on the whole chain (:func:`join_segments`).

Each segment is checked by a :class:`~.verify.ChainVerifier` of its own, from an *anchor*: the stored hash
of the row just before it, which that segment does not check — the segment before it does. So the joined
verdict holds only when every segment is clean, every segment ends exactly where the next one's anchor was
read, and the anchors equal the hashes their predecessors accepted. Anything else (a break, a gap at a
seam, a moved or rewritten anchor row, an unkeyed row, whose rules span the whole chain) is not judged
here: the caller verifies the whole chain in one pass, which names the first break exactly as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from studio_brain.domain.audit.event import GENESIS_HASH
from studio_brain.domain.audit.verify import ChainBreak

#: below this many events one pass is quicker than starting worker processes
PARALLEL_MIN_EVENTS = 100_000


@dataclass(frozen=True, kw_only=True, slots=True)
class Segment:
    """The rows ``first_seq``..``last_seq`` of one tenant's chain; ``last_seq`` None: to its end."""

    first_seq: int
    last_seq: int | None

    def holds(self, seq: int) -> bool:
        return seq >= self.first_seq and (self.last_seq is None or seq <= self.last_seq)


@dataclass(frozen=True, kw_only=True, slots=True)
class SegmentVerdict:
    """What one segment's verifier found, from the anchor it read."""

    segment: Segment
    #: the stored hash of the row at ``first_seq - 1`` (the genesis hash for the first segment), None
    #: when that row was not found
    anchor_hash: str | None
    checked: int
    last_seq: int | None
    last_hash: str | None
    keyed: int
    keyed_unchecked: int
    unkeyed: int
    problem: ChainBreak | None


@dataclass(frozen=True, kw_only=True, slots=True)
class JoinedVerdict:
    """The whole chain's counts when every segment is clean and the seams hold."""

    checked: int
    last_seq: int
    last_hash: str
    keyed: int
    keyed_unchecked: int


def plan_segments(head_seq: int, workers: int, *, min_events: int = PARALLEL_MIN_EVENTS) -> list[Segment]:
    """``workers`` segments of about equal length up to ``head_seq``, the last one open-ended (rows
    appended while verifying are checked too, as one pass would); one segment when the chain is too
    short to be worth splitting or there is one worker."""
    if workers < 2 or head_seq < max(min_events, 2):
        return [Segment(first_seq=1, last_seq=None)]
    count = min(workers, head_seq)
    bounds = [1 + head_seq * i // count for i in range(count)] + [head_seq + 1]
    segments = [Segment(first_seq=bounds[i], last_seq=bounds[i + 1] - 1) for i in range(count - 1)]
    return [*segments, Segment(first_seq=bounds[count - 1], last_seq=None)]


def join_segments(verdicts: Sequence[SegmentVerdict]) -> JoinedVerdict | None:
    """The chain's counts when the segments' verdicts prove it intact; None when they do not (then one
    pass over the whole chain must judge it)."""
    if not verdicts or verdicts[0].segment.first_seq != 1 or verdicts[0].anchor_hash != GENESIS_HASH:
        return None
    seam: tuple[int, str] | None = None  # (last seq, last hash) accepted by the segment before
    for verdict in verdicts:
        if verdict.problem is not None or verdict.unkeyed or verdict.checked == 0:
            return None
        if verdict.last_seq is None or verdict.last_hash is None:
            return None
        end = verdict.segment.last_seq
        if end is not None and verdict.last_seq != end:
            return None  # rows missing at the segment's end: the next anchor is not what was checked
        if seam is not None and (verdict.segment.first_seq, verdict.anchor_hash) != (seam[0] + 1, seam[1]):
            return None
        seam = (verdict.last_seq, verdict.last_hash)
    assert seam is not None  # verdicts is not empty
    last_seq, last_hash = seam
    return JoinedVerdict(
        checked=sum(v.checked for v in verdicts),
        last_seq=last_seq,
        last_hash=last_hash,
        keyed=sum(v.keyed for v in verdicts),
        keyed_unchecked=sum(v.keyed_unchecked for v in verdicts),
    )
