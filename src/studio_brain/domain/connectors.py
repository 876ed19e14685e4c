"""Values every device connector speaks (seed §5): context, commands, responses, health, the error taxonomy."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class ConnectorMode(StrEnum):
    READ_ONLY = "read_only"
    READ_WRITE = "read_write"


class DryRunSupport(StrEnum):
    NATIVE = "native"
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
    UNKNOWN = "UNKNOWN"

    @property
    def retryable(self) -> bool:
        return self in {ErrorKind.TIMEOUT, ErrorKind.UNAVAILABLE}


class HealthStatus(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    DOWN = "down"
    NOT_CONFIGURED = "not_configured"


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


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

    #: the connector action named by the capability registry, e.g. ``switch.set`` or ``vacuum.start``
    action: str
    device_id: str | None = None
    #: device command, e.g. ``on`` / ``off`` / ``app_segment_clean``
    command: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    write: bool = True


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
