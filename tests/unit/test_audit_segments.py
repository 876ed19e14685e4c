"""Cutting a chain into segments and joining their verdicts: only clean segments with whole seams join."""

from __future__ import annotations

from dataclasses import replace

import pytest

from studio_brain.domain.audit import GENESIS_HASH, BreakKind, ChainBreak
from studio_brain.domain.audit.segments import (
    JoinedVerdict,
    Segment,
    SegmentVerdict,
    join_segments,
    plan_segments,
)


def h(n: int) -> str:
    return f"{n:064x}"


def clean(first: int, last: int, *, open_end: bool = False) -> SegmentVerdict:
    """The verdict of a segment whose rows first..last all verified; its anchor is row first-1's hash."""
    return SegmentVerdict(
        segment=Segment(first_seq=first, last_seq=None if open_end else last),
        anchor_hash=GENESIS_HASH if first == 1 else h(first - 1),
        checked=last - first + 1,
        last_seq=last,
        last_hash=h(last),
        keyed=last - first + 1,
        keyed_unchecked=0,
        unkeyed=0,
        problem=None,
    )


THREE = [clean(1, 100), clean(101, 200), clean(201, 305, open_end=True)]


def test_a_short_chain_or_a_single_worker_is_one_pass() -> None:
    assert plan_segments(99_999, 4) == [Segment(first_seq=1, last_seq=None)]
    assert plan_segments(1_000_000, 1) == [Segment(first_seq=1, last_seq=None)]
    assert plan_segments(0, 4, min_events=0) == [Segment(first_seq=1, last_seq=None)]


def test_a_long_chain_is_cut_into_contiguous_segments_the_last_open_ended() -> None:
    plan = plan_segments(1_000_000, 3)
    assert plan == [
        Segment(first_seq=1, last_seq=333_333),
        Segment(first_seq=333_334, last_seq=666_666),
        Segment(first_seq=666_667, last_seq=None),
    ]


def test_never_more_segments_than_events() -> None:
    assert len(plan_segments(3, 8, min_events=2)) == 3


def test_clean_segments_with_whole_seams_join_into_the_chains_counts() -> None:
    assert join_segments(THREE) == JoinedVerdict(
        checked=305, last_seq=305, last_hash=h(305), keyed=305, keyed_unchecked=0
    )


@pytest.mark.parametrize(
    ("why", "spoil"),
    [
        (
            "a segment found a break",
            lambda v: replace(
                v[1],
                problem=ChainBreak(tenant_id="t", seq=150, kind=BreakKind.MODIFIED, detail="x"),
            ),
        ),
        ("a segment ended short of its range (rows gone at a seam)", lambda v: replace(v[1], last_seq=199)),
        (
            "the anchor read is not the hash the segment before accepted",
            lambda v: replace(v[2], anchor_hash=h(7)),
        ),
        ("the anchor row was not found", lambda v: replace(v[2], anchor_hash=None)),
        ("unkeyed rows, whose rules span the chain", lambda v: replace(v[0], unkeyed=3)),
        ("an empty segment", lambda v: replace(v[2], checked=0, last_seq=None, last_hash=None)),
        ("the first segment does not start at the genesis", lambda v: replace(v[0], anchor_hash=h(9))),
    ],
)
def test_the_verdicts_do_not_join_when(why: str, spoil: object) -> None:
    spoilt = spoil(THREE)  # type: ignore[operator]
    verdicts = [spoilt if v.segment == spoilt.segment else v for v in THREE]
    assert join_segments(verdicts) is None, why


def test_segments_out_of_order_do_not_join() -> None:
    assert join_segments([THREE[1], THREE[0], THREE[2]]) is None
    assert join_segments([]) is None
