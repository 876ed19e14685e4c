"""The Portal's five statuses tell the truth about executing, failed and unknown outcomes (issue 13, item 9).

Fault: the Portal showed ``executing`` and ``outcome_unknown`` as "approved" with nothing more, and
``failed`` as "rejected" (nobody rejected it: it was approved and the device call failed).
"""

from __future__ import annotations

import pytest

from studio_brain.domain.proposals import Status

PORTAL = {"draft", "pending_approval", "approved", "rejected", "executed"}


def test_a_failed_execution_is_not_shown_as_rejected() -> None:
    assert Status.FAILED.portal_status == "approved"
    assert Status.FAILED.portal_note is not None
    assert "execution failed" in Status.FAILED.portal_note
    assert "did not happen" in Status.FAILED.portal_note


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (Status.EXECUTING, "running on the device now"),
        (Status.OUTCOME_UNKNOWN, "may have acted"),
        (Status.FAILED, "did not happen"),
    ],
)
def test_what_the_nearest_portal_status_leaves_out_is_said_in_words(status: Status, words: str) -> None:
    assert status.portal_status in PORTAL
    assert status.portal_note is not None
    assert words in status.portal_note


@pytest.mark.parametrize("status", list(Status))
def test_only_a_real_execution_reads_as_executed_and_only_a_decision_against_it_as_rejected(
    status: Status,
) -> None:
    assert (status.portal_status == "executed") == (status is Status.EXECUTED)
    if status.portal_status == "rejected":
        assert status in {Status.REJECTED, Status.EXPIRED, Status.CANCELLED}
    # a status the Portal shows as-is needs no note; every other one carries one (except plain rejected)
    if status.value == status.portal_status or status is Status.REJECTED:
        assert status.portal_note is None
    else:
        assert status.portal_note
