"""The circuit breaker: closed → open after N failures → half-open after an exponential window."""

from __future__ import annotations

import pytest

from studio_brain.adapters.connectors.breaker import CircuitBreaker
from studio_brain.domain.connectors import (
    BREAKER_TRANSITIONS,
    BreakerEvent,
    BreakerState,
    ErrorKind,
    breaker_next,
    breaker_window,
)
from studio_brain.domain.errors import ConnectorError
from tests.fakes import FakeClock


def make(clock: FakeClock, *, failures: int = 3, window: float = 10.0, cap: float = 35.0) -> CircuitBreaker:
    return CircuitBreaker(
        name="t", clock=clock, failure_threshold=failures, window_seconds=window, max_window_seconds=cap
    )


def trip(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        breaker.before_call()
        breaker.record_failure(ErrorKind.UNAVAILABLE)


def test_the_transition_table_covers_every_state_and_event() -> None:
    assert {(s, e) for s in BreakerState for e in BreakerEvent} - set(BREAKER_TRANSITIONS) == {
        (BreakerState.CLOSED, BreakerEvent.WINDOW_ELAPSED),
        (BreakerState.HALF_OPEN, BreakerEvent.WINDOW_ELAPSED),
    }
    assert breaker_next(BreakerState.CLOSED, BreakerEvent.WINDOW_ELAPSED) is BreakerState.CLOSED


def test_the_window_doubles_with_each_consecutive_opening_up_to_the_cap() -> None:
    windows = [breaker_window(base_seconds=10, max_seconds=35, consecutive_opens=n) for n in (1, 2, 3, 4)]
    assert windows == [10, 20, 35, 35]


def test_the_breaker_stays_closed_below_the_threshold() -> None:
    breaker = make(FakeClock())
    trip(breaker, 2)
    assert breaker.state is BreakerState.CLOSED
    breaker.before_call()  # still lets calls through


def test_a_success_resets_the_failure_count() -> None:
    breaker = make(FakeClock())
    trip(breaker, 2)
    breaker.before_call()
    breaker.record_success()
    trip(breaker, 2)
    assert breaker.state is BreakerState.CLOSED


def test_n_consecutive_failures_open_it_and_an_open_breaker_refuses_calls() -> None:
    breaker = make(FakeClock())
    trip(breaker, 3)
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(ConnectorError) as caught:
        breaker.before_call()
    assert caught.value.kind == ErrorKind.CIRCUIT_OPEN
    assert caught.value.retryable is False


def test_after_its_window_it_lets_exactly_one_trial_through() -> None:
    clock = FakeClock()
    breaker = make(clock)
    trip(breaker, 3)
    clock.advance(9.9)
    assert breaker.state is BreakerState.OPEN
    assert breaker.snapshot().retry_in_seconds == pytest.approx(0.1)
    clock.advance(0.1)
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.before_call()
    with pytest.raises(ConnectorError):
        breaker.before_call()  # a second caller waits for the trial's verdict
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.snapshot().consecutive_opens == 0


def test_a_failed_trial_reopens_it_for_a_longer_window() -> None:
    clock = FakeClock()
    breaker = make(clock)
    trip(breaker, 3)
    clock.advance(10)
    trip(breaker, 1)
    assert breaker.state is BreakerState.OPEN
    clock.advance(19)
    assert breaker.state is BreakerState.OPEN
    clock.advance(1)
    assert breaker.state is BreakerState.HALF_OPEN


@pytest.mark.parametrize("kind", [ErrorKind.AUTH, ErrorKind.NOT_ALLOWED, ErrorKind.READ_ONLY_VIOLATION])
def test_failures_that_say_nothing_about_the_device_do_not_open_it(kind: ErrorKind) -> None:
    breaker = make(FakeClock(), failures=1)
    breaker.before_call()
    breaker.record_failure(kind)
    assert breaker.state is BreakerState.CLOSED


def test_a_cancelled_trial_frees_the_half_open_slot() -> None:
    clock = FakeClock()
    breaker = make(clock, failures=1)
    trip(breaker, 1)
    clock.advance(10)
    breaker.before_call()
    breaker.release_trial()
    breaker.before_call()  # another caller may now try


def test_a_threshold_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        make(FakeClock(), failures=0)
