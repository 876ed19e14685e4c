"""Refusal windows (issue 12 item 8): the first refusal is audited at once, the rest of its window as one
counted row — so a caller cannot flood the audit log, and no refusal goes uncounted."""

from __future__ import annotations

from studio_brain.domain.audit import ActorType, ApprovalState, AuditDraft
from studio_brain.services.refusal_windows import SAMPLES, RefusalWindows
from tests.fakes import FakeClock


def refusal(actor: str = "notes-bot") -> AuditDraft:
    return AuditDraft(
        tenant_id="studio-a",
        actor_type=ActorType.AGENT,
        actor_id=actor,
        action="capability.decision.refused",
        target="gateway",
        rationale="needs scope proposals:create",
        approval_state=ApprovalState.REJECTED,
        input_hash="0" * 64,
        request_id="r1",
        correlation_id="r1",
        metadata={"reasonCode": "SCOPE_MISSING"},
    )


def test_the_first_refusal_of_a_window_is_written_at_once_with_a_count_of_one() -> None:
    windows = RefusalWindows(FakeClock())
    first, due = windows.admit("k", refusal())
    assert first is not None
    assert first.metadata["count"] == 1
    assert first.metadata["reasonCode"] == "SCOPE_MISSING"
    assert due == []


def test_the_rest_of_a_window_become_one_row_with_their_count_when_the_window_closes() -> None:
    clock = FakeClock()
    windows = RefusalWindows(clock)
    windows.admit("k", refusal(), sample="p-0")
    for n in range(1, 50):
        first, due = windows.admit("k", refusal(), sample=f"p-{n}")
        assert first is None
        assert due == []
    clock.advance(61)
    first, (aggregated,) = windows.admit("other", refusal("another-bot"))
    assert first is not None  # another caller's first refusal: its own row
    assert aggregated.metadata["count"] == 49
    assert aggregated.metadata["aggregated"] is True
    assert len(aggregated.metadata["samples"]) == SAMPLES
    assert "49 more like it" in aggregated.rationale


def test_draining_writes_the_open_counts_and_forgets_windows_without_any() -> None:
    windows = RefusalWindows(FakeClock())
    windows.admit("lone", refusal("lone-bot"))
    windows.admit("busy", refusal())
    windows.admit("busy", refusal())
    (row,) = windows.drain()
    assert (row.actor_id, row.metadata["count"]) == ("notes-bot", 1)
    assert windows.drain() == []
    first, _ = windows.admit("busy", refusal())
    assert first is not None  # a new window after the drain
