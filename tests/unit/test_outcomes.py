"""The outcome decision table (issue 13, item 3): every connector error kind × before/after send × write.

Fault: a 200 with malformed JSON, or JSON served as text/html, was recorded ``failed`` though the device
had acted (3 of 3); after a write was sent, BAD_RESPONSE and UNAVAILABLE mean the outcome is unknown.
"""

from __future__ import annotations

import pytest

from studio_brain.domain.connectors import ErrorKind
from studio_brain.domain.outcomes import PROVEN_NOT_DONE, Outcome, outcome_after_error

FAILED, UNKNOWN = Outcome.FAILED, Outcome.OUTCOME_UNKNOWN

#: kind -> (never sent, sent, the connector cannot say) for a write
WRITE_TABLE = {
    ErrorKind.AUTH: (FAILED, FAILED, FAILED),
    ErrorKind.TIMEOUT: (FAILED, UNKNOWN, UNKNOWN),
    ErrorKind.UNAVAILABLE: (FAILED, UNKNOWN, UNKNOWN),
    ErrorKind.BAD_RESPONSE: (FAILED, UNKNOWN, UNKNOWN),
    ErrorKind.READ_ONLY_VIOLATION: (FAILED, FAILED, FAILED),
    ErrorKind.NOT_ALLOWED: (FAILED, FAILED, FAILED),
    ErrorKind.CIRCUIT_OPEN: (FAILED, FAILED, FAILED),
    ErrorKind.REFUSED: (FAILED, FAILED, FAILED),
    ErrorKind.UNKNOWN: (FAILED, UNKNOWN, UNKNOWN),
}


def test_the_table_covers_every_error_kind() -> None:
    assert set(WRITE_TABLE) == set(ErrorKind)


@pytest.mark.parametrize("kind", list(ErrorKind))
@pytest.mark.parametrize(("sent", "column"), [(False, 0), (True, 1), (None, 2)])
def test_a_write_is_failed_only_when_the_device_provably_did_not_act(
    kind: ErrorKind, sent: bool | None, column: int
) -> None:
    assert outcome_after_error(kind, sent=sent, write=True) is WRITE_TABLE[kind][column]


@pytest.mark.parametrize("kind", list(ErrorKind))
@pytest.mark.parametrize("sent", [False, True, None])
def test_a_read_has_no_side_effect_so_its_errors_are_failures(kind: ErrorKind, sent: bool | None) -> None:
    assert outcome_after_error(kind, sent=sent, write=False) is FAILED


def test_malformed_answers_and_5xx_after_a_send_are_unknown_not_failed() -> None:
    for kind in (ErrorKind.BAD_RESPONSE, ErrorKind.UNAVAILABLE):
        assert kind not in PROVEN_NOT_DONE
        assert outcome_after_error(kind, sent=True, write=True) is UNKNOWN
