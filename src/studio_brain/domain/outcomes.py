"""What an execution's error means for its outcome: ``failed`` only when the device provably did not act.

Pure (issue 13). Once a write was sent, the device may have acted whatever came back: a 200 with
malformed JSON, JSON served as text/html, a 5xx, a dropped connection or a timeout all leave the outcome
*unknown*, and only an answer that proves a refusal (401/403, an explicit refusal, a path the connector
itself refused before sending) is ``failed``. A read has no side effect: its errors are failures. The
table is :func:`outcome_after_error`; ``tests/unit/test_outcomes.py`` walks every kind × sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from studio_brain.domain.connectors import ErrorKind


class Outcome(StrEnum):
    FAILED = "failed"
    OUTCOME_UNKNOWN = "outcome_unknown"


#: errors that prove the device did not act, whenever they happen
PROVEN_NOT_DONE = frozenset(
    {
        ErrorKind.AUTH,  # 401/403: refused before acting
        ErrorKind.REFUSED,  # the target answered that it did not act
        ErrorKind.READ_ONLY_VIOLATION,  # refused by the connector, nothing sent
        ErrorKind.NOT_ALLOWED,  # refused by the allowlist, nothing sent
        ErrorKind.CIRCUIT_OPEN,  # refused by the breaker, nothing sent
    }
)


def outcome_after_error(kind: ErrorKind, *, sent: bool | None, write: bool) -> Outcome:
    """The outcome of an execution that ended with an error of ``kind``.

    ``sent``: False when the request provably never left (a connect failure, a budget spent before the
    call), True when it did, None when the connector cannot say — then a write counts as sent.
    """
    if not write or sent is False or kind in PROVEN_NOT_DONE:
        return Outcome.FAILED
    return Outcome.OUTCOME_UNKNOWN


@dataclass(frozen=True, kw_only=True, slots=True)
class RecordedOutcome:
    """An execution's outcome as the device reported it, kept in the local journal until the database has
    it: a crash between the device's reply and the database write is recovered from this."""

    tenant_id: str
    proposal_id: str
    execution_key: str
    #: the proposal event to apply: ``succeed`` | ``fail`` | ``lose_track``
    event: str
    #: the proposal fields the event sets (output_hash, result, error)
    changes: dict[str, Any] = field(default_factory=dict)
    recorded_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "tenantId": self.tenant_id,
            "proposalId": self.proposal_id,
            "executionKey": self.execution_key,
            "event": self.event,
            "changes": self.changes,
            "recordedAt": self.recorded_at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RecordedOutcome:
        return cls(
            tenant_id=str(data["tenantId"]),
            proposal_id=str(data["proposalId"]),
            execution_key=str(data["executionKey"]),
            event=str(data["event"]),
            changes=dict(data.get("changes") or {}),
            recorded_at=datetime.fromisoformat(str(data["recordedAt"])),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Observed:
    """What a connector read back about an unknown outcome: whether the commanded effect is in place."""

    done: bool
    #: the state read (its hash becomes the output hash of a reconciled execution)
    data: dict[str, Any]
