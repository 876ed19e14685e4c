"""Values every device connector speaks (seed §5): context, commands, responses, health, the error
taxonomy, the write allowlist and the circuit-breaker state machine (as a transition table)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from studio_brain.domain.attestation import ApprovalClaims
from studio_brain.domain.errors import ConnectorError, InputInvalid


class ConnectorMode(StrEnum):
    READ_ONLY = "read_only"
    READ_WRITE = "read_write"


class DryRunSupport(StrEnum):
    #: the device API itself can validate a command without acting
    NATIVE = "native"
    #: the connector validates and describes the request it would send, and sends nothing
    SIMULATED = "simulated"
    UNSUPPORTED = "unsupported"


class ErrorKind(StrEnum):
    """The one connector error taxonomy; ``retryable`` says whether a read may be tried again."""

    AUTH = "AUTH"
    TIMEOUT = "TIMEOUT"
    UNAVAILABLE = "UNAVAILABLE"
    BAD_RESPONSE = "BAD_RESPONSE"
    READ_ONLY_VIOLATION = "READ_ONLY_VIOLATION"
    NOT_ALLOWED = "NOT_ALLOWED"
    CIRCUIT_OPEN = "CIRCUIT_OPEN"
    #: the target answered that it did not act (e.g. a Function's 400/404/429 with its reason): proven
    REFUSED = "REFUSED"
    UNKNOWN = "UNKNOWN"

    @property
    def retryable(self) -> bool:
        return self in {ErrorKind.TIMEOUT, ErrorKind.UNAVAILABLE}

    @property
    def trips_breaker(self) -> bool:
        """Failures that say the device (not us, not the caller) is unwell count towards opening."""
        return self in {ErrorKind.TIMEOUT, ErrorKind.UNAVAILABLE, ErrorKind.BAD_RESPONSE}


def connector_error(kind: ErrorKind, message: str, *, sent: bool | None = None) -> ConnectorError:
    """A ConnectorError whose ``retryable`` follows the taxonomy (use ``raise connector_error(...) from err``);
    ``sent`` says whether the request reached the device (see domain/outcomes.py)."""
    return ConnectorError(kind.value, message, retryable=kind.retryable, sent=sent)


def error_kind(err: ConnectorError) -> ErrorKind:
    try:
        return ErrorKind(err.kind)
    except ValueError:
        return ErrorKind.UNKNOWN


class HealthStatus(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    DOWN = "down"
    NOT_CONFIGURED = "not_configured"


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerEvent(StrEnum):
    SUCCESS = "success"
    #: a failure while below the threshold (closed) — stays closed
    FAILURE = "failure"
    #: the failure that reaches the threshold (closed), or any failure of the half-open trial
    TRIP = "trip"
    #: the open window has elapsed
    WINDOW_ELAPSED = "window_elapsed"


#: the circuit breaker as a transition table: (state, event) -> next state; pairs not listed are no-ops
BREAKER_TRANSITIONS: dict[tuple[BreakerState, BreakerEvent], BreakerState] = {
    (BreakerState.CLOSED, BreakerEvent.SUCCESS): BreakerState.CLOSED,
    (BreakerState.CLOSED, BreakerEvent.FAILURE): BreakerState.CLOSED,
    (BreakerState.CLOSED, BreakerEvent.TRIP): BreakerState.OPEN,
    (BreakerState.OPEN, BreakerEvent.WINDOW_ELAPSED): BreakerState.HALF_OPEN,
    # a call that started before the breaker opened may still finish; it does not close it
    (BreakerState.OPEN, BreakerEvent.SUCCESS): BreakerState.OPEN,
    (BreakerState.OPEN, BreakerEvent.FAILURE): BreakerState.OPEN,
    (BreakerState.OPEN, BreakerEvent.TRIP): BreakerState.OPEN,
    (BreakerState.HALF_OPEN, BreakerEvent.SUCCESS): BreakerState.CLOSED,
    (BreakerState.HALF_OPEN, BreakerEvent.FAILURE): BreakerState.OPEN,
    (BreakerState.HALF_OPEN, BreakerEvent.TRIP): BreakerState.OPEN,
}


def breaker_next(state: BreakerState, event: BreakerEvent) -> BreakerState:
    return BREAKER_TRANSITIONS.get((state, event), state)


def breaker_window(*, base_seconds: float, max_seconds: float, consecutive_opens: int) -> float:
    """How long the breaker stays open: doubles with each consecutive opening, capped."""
    return float(min(max_seconds, base_seconds * 2 ** max(0, consecutive_opens - 1)))


@dataclass(frozen=True, kw_only=True, slots=True)
class WriteAllowlist:
    """The strict set of (device, command) pairs a connector may ever send. Empty = no writes at all."""

    pairs: frozenset[tuple[str, str]] = frozenset()

    def allows(self, device_id: str, command: str) -> bool:
        return (device_id, command) in self.pairs

    @classmethod
    def parse(cls, entries: Iterable[str]) -> WriteAllowlist:
        """From ``device:command`` entries (``21:on``, ``vacuum.roborock_s7:start``)."""
        pairs: set[tuple[str, str]] = set()
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            device, sep, command = entry.rpartition(":")
            if not sep or not device.strip() or not command.strip():
                raise InputInvalid(f"allowlist entry {entry!r} is not device:command")
            pairs.add((device.strip(), command.strip()))
        return cls(pairs=frozenset(pairs))

    def entries(self) -> list[str]:
        return sorted(f"{device}:{command}" for device, command in self.pairs)


@dataclass(frozen=True, kw_only=True, slots=True)
class ConnectorContext:
    """Carried by every call: who asked, how long it may take, whether to really act."""

    request_id: str
    #: the deadline as a budget in seconds for the whole call, retries included
    timeout_seconds: float
    idempotency_key: str | None = None
    dry_run: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class ConnectorCommand:
    """A request to act (or, with ``write=False``, a parametrised read) on one device."""

    #: the connector action named by the capability registry, e.g. ``switch.set`` or ``clean.start``
    action: str
    device_id: str | None = None
    #: device command, e.g. ``on`` / ``off`` / ``app_segment_clean``
    command: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    write: bool = True
    #: for a write of an approved proposal: who approved what (cloud writes send it as an attestation);
    #: not part of :meth:`as_input` — it describes the authority, not the request
    approval: ApprovalClaims | None = None

    def as_input(self) -> dict[str, Any]:
        """The canonical request, the thing ``input_hash`` is computed over (never a secret)."""
        return {
            "action": self.action,
            "deviceId": self.device_id,
            "command": self.command,
            "args": self.args,
            "write": self.write,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class ConnectorResponse:
    request_id: str
    #: sha256 of the canonical request (command / read input), never of secrets
    input_hash: str
    #: sha256 of the canonical normalised output
    output_hash: str
    data: dict[str, Any]
    dry_run: bool = False
    latency_ms: float = 0.0


@dataclass(frozen=True, kw_only=True, slots=True)
class ConnectorHealth:
    connector_id: str
    status: HealthStatus
    request_id: str
    checked_at: datetime
    latency_ms: float | None = None
    breaker: BreakerState = BreakerState.CLOSED
    detail: str = ""
    #: the taxonomy kind of the failure when ``status`` is down
    error_kind: ErrorKind | None = None
    mode: ConnectorMode | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "connector": self.connector_id,
            "status": self.status.value,
            "requestId": self.request_id,
            "checkedAt": self.checked_at.isoformat(),
            "latencyMs": None if self.latency_ms is None else round(self.latency_ms, 2),
            "breaker": self.breaker.value,
            "detail": self.detail,
            "errorKind": None if self.error_kind is None else self.error_kind.value,
            "mode": None if self.mode is None else self.mode.value,
        }


def classify_health(*, latency_ms: float, degraded_after_ms: float, breaker: BreakerState) -> HealthStatus:
    """A probe that answered: healthy, or degraded when slow or while the breaker is still testing."""
    if breaker is not BreakerState.CLOSED or latency_ms > degraded_after_ms:
        return HealthStatus.DEGRADED
    return HealthStatus.HEALTHY
