"""Policy events become tracker signals: a breaker's outage is one incident, opened and resolved."""

from __future__ import annotations

from typing import Any

import pytest

from medic.events import (
    Action,
    CallRejected,
    CallTimedOut,
    CircuitHalfOpened,
    PolicyEvent,
    RetryAttempted,
    policy_signal,
)
from medic.policies import CircuitBreaker, CircuitOpen, constant, retry
from medic.taxonomy import Kind
from medic.testing import EventCapture, FakeClock


def test_breaker_outage_is_one_incident_in_the_tracker(medic_tracker: Any) -> None:
    """Opening triggers an incident keyed by the breaker; closing resolves that same incident."""
    clock = FakeClock()
    capture = EventCapture()
    breaker = CircuitBreaker(
        name="payments", failure_threshold=2, reset_timeout=5, clock=clock, listeners=(capture,)
    )

    @breaker
    def charge(ok: bool) -> str:
        if not ok:
            raise ConnectionError("gateway down")
        return "charged"

    for _ in range(2):
        with pytest.raises(ConnectionError):
            charge(False)
    with pytest.raises(CircuitOpen):
        charge(True)
    clock.advance(5)
    assert charge(True) == "charged"
    signals = [s for e in capture.events if (s := policy_signal(e, service="shop")) is not None]
    assert [s.action for s in signals] == [Action.TRIGGER, Action.RESOLVE]
    medic_tracker.record(signals[0])
    assert medic_tracker.open_incident("circuit:shop:payments") is not None
    medic_tracker.record(signals[1])
    assert medic_tracker.open_incident("circuit:shop:payments") is None


def test_exhausted_retries_and_timeouts_are_signals_but_progress_is_not() -> None:
    """Only giving up and timing out are failures worth recording."""
    capture = EventCapture()
    with pytest.raises(ConnectionError):
        retry(on=ConnectionError, attempts=2, backoff=constant(0), listeners=(capture,))(
            lambda: (_ for _ in ()).throw(ConnectionError("refused"))
        )()
    first, last = capture.of_type(RetryAttempted)
    assert policy_signal(first, service="s") is None
    given_up = policy_signal(last, service="s")
    assert given_up is not None
    assert given_up.kind is Kind.CONNECTION
    assert given_up.exception is not None
    assert given_up.exception.type == "ConnectionError"
    timed_out = policy_signal(CallTimedOut("db", 2.0), service="s")
    assert timed_out is not None
    assert timed_out.kind is Kind.TIMEOUT
    quiet: list[PolicyEvent] = [CircuitHalfOpened("b", 1), CallRejected("b", "circuit-open")]
    assert [policy_signal(e, service="s") for e in quiet] == [None, None]
