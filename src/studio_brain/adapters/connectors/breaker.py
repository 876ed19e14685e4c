"""The circuit breaker every connector wraps its device calls in (closed → open → half-open).

The transitions are the domain's table (:data:`BREAKER_TRANSITIONS`); this class adds the counters and
the clock. The clock is injected so tests move time instead of sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass

from studio_brain.domain.connectors import (
    BreakerEvent,
    BreakerState,
    ErrorKind,
    breaker_next,
    breaker_window,
    connector_error,
)
from studio_brain.logging import get_logger
from studio_brain.ports import Clock

log = get_logger(__name__)


@dataclass(frozen=True, kw_only=True, slots=True)
class BreakerSnapshot:
    state: BreakerState
    consecutive_failures: int
    consecutive_opens: int
    #: seconds until an open breaker lets a trial call through (0 when not open)
    retry_in_seconds: float


class CircuitBreaker:
    """Opens after ``failure_threshold`` consecutive failures; after an exponential window lets one
    trial call through (half-open); the trial's success closes it, its failure re-opens it for longer."""

    def __init__(
        self,
        *,
        name: str,
        clock: Clock,
        failure_threshold: int = 3,
        window_seconds: float = 30.0,
        max_window_seconds: float = 600.0,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self._name = name
        self._clock = clock
        self._threshold = failure_threshold
        self._base_window = window_seconds
        self._max_window = max_window_seconds
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opens = 0
        self._opened_at = 0.0
        self._trial_in_flight = False

    def _window(self) -> float:
        return breaker_window(
            base_seconds=self._base_window, max_seconds=self._max_window, consecutive_opens=self._opens
        )

    def _apply(self, event: BreakerEvent) -> None:
        before = self._state
        self._state = breaker_next(before, event)
        if before is not self._state:
            if self._state is BreakerState.OPEN:
                self._opens += 1
                self._opened_at = self._clock.monotonic()
                log.warning(
                    "connector.breaker.opened",
                    connector=self._name,
                    failures=self._failures,
                    window_seconds=self._window(),
                )
            elif self._state is BreakerState.CLOSED:
                self._opens = 0
                log.info("connector.breaker.closed", connector=self._name)
            else:
                log.info("connector.breaker.half_open", connector=self._name)

    @property
    def state(self) -> BreakerState:
        """The current state; an open breaker whose window has elapsed reads as half-open."""
        if self._state is BreakerState.OPEN and self._clock.monotonic() - self._opened_at >= self._window():
            self._apply(BreakerEvent.WINDOW_ELAPSED)
        return self._state

    def snapshot(self) -> BreakerSnapshot:
        state = self.state
        retry_in = (
            max(0.0, self._window() - (self._clock.monotonic() - self._opened_at))
            if state is BreakerState.OPEN
            else 0.0
        )
        return BreakerSnapshot(
            state=state,
            consecutive_failures=self._failures,
            consecutive_opens=self._opens,
            retry_in_seconds=retry_in,
        )

    def before_call(self) -> None:
        """Raise CIRCUIT_OPEN unless a call may go out now (closed, or the one half-open trial)."""
        state = self.state
        if state is BreakerState.OPEN or (state is BreakerState.HALF_OPEN and self._trial_in_flight):
            retry_in = self.snapshot().retry_in_seconds
            raise connector_error(
                ErrorKind.CIRCUIT_OPEN,
                f"{self._name}: circuit open after {self._failures} consecutive failures; "
                f"next trial in {retry_in:.1f}s",
            )
        if state is BreakerState.HALF_OPEN:
            self._trial_in_flight = True

    def record_success(self) -> None:
        self._trial_in_flight = False
        self._failures = 0
        self._apply(BreakerEvent.SUCCESS)

    def record_failure(self, kind: ErrorKind) -> None:
        """Count a failed call. Only device-side failures count (AUTH or NOT_ALLOWED say nothing
        about the device's health), but any failure ends a half-open trial."""
        self._trial_in_flight = False
        if not kind.trips_breaker:
            # the device answered (e.g. 401): nothing to count; a half-open breaker lets the next call try
            return
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or self._failures >= self._threshold:
            self._apply(BreakerEvent.TRIP)
        else:
            self._apply(BreakerEvent.FAILURE)

    def release_trial(self) -> None:
        """A half-open trial ended without a verdict (e.g. cancelled): let another call try."""
        self._trial_in_flight = False
