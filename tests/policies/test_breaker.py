"""CircuitBreaker: tripping, half-open trials, windows, and no lock across the call."""

from __future__ import annotations

import contextlib
import functools
import threading
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from medic.errors import IllegalTransition, InvalidInput
from medic.events import CallRejected, CircuitClosed, CircuitHalfOpened, CircuitOpened
from medic.policies import ALLOWED, BreakerState, CircuitBreaker, CircuitOpen
from medic.taxonomy import Kind, classify
from medic.testing import EventCapture, FakeClock


def ok() -> str:
    return "ok"


def boom() -> str:
    raise ConnectionError("down")


def fail(breaker: CircuitBreaker, times: int = 1) -> None:
    guarded = breaker(boom)
    for _ in range(times):
        with pytest.raises(ConnectionError):
            guarded()


def test_trips_after_consecutive_failures_and_fails_fast() -> None:
    """N consecutive failures open it; then calls are refused without running."""
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=10, clock=clock)
    fail(breaker, 2)
    assert breaker(ok)() == "ok"  # a success resets the count
    fail(breaker, 3)
    assert breaker.state is BreakerState.OPEN
    ran = []
    with pytest.raises(CircuitOpen) as caught:
        breaker(lambda: ran.append(1))()
    assert ran == []
    assert caught.value.policy == "breaker"
    assert caught.value.retry_after == pytest.approx(10)
    assert classify(caught.value).kind is Kind.DEPENDENCY
    assert breaker.rejected == 1


def test_half_open_admits_exactly_n_trials_and_needs_m_successes() -> None:
    """After the open period, exactly N trials pass; M successes close it."""
    clock = FakeClock()
    capture = EventCapture()
    breaker = CircuitBreaker(
        failure_threshold=1,
        reset_timeout=5,
        half_open_trials=3,
        success_threshold=2,
        clock=clock,
        listeners=(capture,),
    )
    fail(breaker)
    clock.advance(5)
    gens = [breaker._admit() for _ in range(3)]
    assert breaker.state is BreakerState.HALF_OPEN
    with pytest.raises(CircuitOpen):
        breaker._admit()
    breaker._record(gens[0], 0)
    assert breaker.state is BreakerState.HALF_OPEN
    breaker._record(gens[1], 0)
    assert breaker.state is BreakerState.CLOSED
    assert capture.names() == [
        "CircuitOpened",
        "CircuitHalfOpened",
        "CallRejected",
        "CircuitClosed",
    ]


def test_a_failed_trial_reopens() -> None:
    """One failure in half-open goes straight back to open."""
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=5, clock=clock)
    fail(breaker)
    clock.advance(5)
    fail(breaker)
    assert breaker.state is BreakerState.OPEN


def test_stale_outcomes_are_ignored() -> None:
    """A call admitted before the breaker opened cannot close it afterwards."""
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=5, clock=clock)
    old_gen = breaker._gen
    fail(breaker)
    clock.advance(5)
    breaker._admit()
    breaker._record(old_gen, 0)
    assert breaker.state is BreakerState.HALF_OPEN


def test_failure_rate_over_count_window_with_minimum_calls() -> None:
    """The rate trips only once the window has the minimum number of calls."""
    breaker = CircuitBreaker(
        failure_threshold=None, failure_rate=0.5, window=10, minimum_calls=4, clock=FakeClock()
    )
    guarded_ok = breaker(ok)
    fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED  # 2 calls < minimum
    guarded_ok()
    assert breaker.state is BreakerState.CLOSED  # 2/3, still under the minimum
    fail(breaker)
    assert breaker.state is BreakerState.OPEN  # 3/4 >= 50 %


def test_failure_rate_over_time_window_forgets_old_calls() -> None:
    """Failures older than the time window no longer count."""
    clock = FakeClock()
    breaker = CircuitBreaker(
        failure_threshold=None, failure_rate=0.5, window_seconds=10, minimum_calls=3, clock=clock
    )
    fail(breaker, 2)
    clock.advance(11)
    fail(breaker)
    assert breaker.state is BreakerState.CLOSED
    fail(breaker)
    breaker(ok)()
    assert breaker.state is BreakerState.CLOSED  # 2 of 3 failed, but a success never trips
    fail(breaker)
    assert breaker.state is BreakerState.OPEN


def test_slow_calls_trip_the_breaker() -> None:
    """Successful but slow calls count toward the slow-call rate."""
    clock = FakeClock()
    breaker = CircuitBreaker(
        failure_threshold=None,
        slow_call_rate=0.5,
        slow_call_duration=1.0,
        window=4,
        minimum_calls=2,
        clock=clock,
    )

    @breaker
    def slow() -> str:
        clock.advance(2)
        return "late"

    assert slow() == "late"
    assert breaker.state is BreakerState.CLOSED
    assert slow() == "late"
    assert breaker.state is BreakerState.OPEN


def test_ignored_errors_do_not_count() -> None:
    """With on=, other errors pass through and count as answers, not failures."""
    breaker = CircuitBreaker(failure_threshold=1, on=ConnectionError, clock=FakeClock())

    @breaker
    def bad_input() -> None:
        raise ValueError("caller's fault")

    with pytest.raises(ValueError, match="caller"):
        bad_input()
    assert breaker.state is BreakerState.CLOSED


def test_arguments_reach_the_function_whatever_its_signature() -> None:
    """Positional, keyword, defaulted and wrapped callables all get what the caller passed."""
    breaker = CircuitBreaker(failure_threshold=1)

    def positional(a: int, b: int, /, *rest: int) -> tuple[int, ...]:
        return (a, b, *rest)

    def keywords(a: int, *, b: int = 2, **more: int) -> tuple[Any, ...]:
        return a, b, more

    def takes_any(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        return args, kwargs

    @functools.wraps(ok)  # reports ok's empty signature, yet accepts keywords
    def wrapper(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        return args, kwargs

    assert breaker(positional)(1, 2, 3) == (1, 2, 3)
    assert breaker(keywords)(1) == (1, 2, {})
    assert breaker(keywords)(a=1, b=3, c=4) == (1, 3, {"c": 4})
    assert breaker(takes_any)(1, x=2) == ((1,), {"x": 2})
    assert breaker(wrapper)(x=1) == ((), {"x": 1})
    assert breaker.call(keywords, 1, b=5) == (1, 5, {})
    assert breaker.state is BreakerState.CLOSED


def test_a_keyword_a_parameterless_function_cannot_take_raises_type_error() -> None:
    """The wrapper refuses it as Python would; the breaker goes on guarding."""
    breaker = CircuitBreaker()
    with pytest.raises(TypeError):
        breaker(ok)(unexpected=1)  # type: ignore[call-arg]
    assert breaker(ok)() == "ok"


def test_configuration_is_validated() -> None:
    """Inconsistent settings are refused with a message naming the breaker."""
    with pytest.raises(InvalidInput, match="success_threshold"):
        CircuitBreaker(half_open_trials=1, success_threshold=2)
    with pytest.raises(InvalidInput, match="window"):
        CircuitBreaker(failure_rate=0.5)
    with pytest.raises(InvalidInput):
        CircuitBreaker(failure_rate=1.5, window=10)
    with pytest.raises(InvalidInput):
        CircuitBreaker(failure_threshold=None)
    with pytest.raises(InvalidInput):
        CircuitBreaker(reset_timeout=0)


def test_illegal_transition_raises() -> None:
    """The ALLOWED table is enforced: closed cannot go straight to half-open."""
    breaker = CircuitBreaker()
    with breaker._lock, pytest.raises(IllegalTransition):
        breaker._move(BreakerState.HALF_OPEN)
    assert ALLOWED[BreakerState.OPEN] == {BreakerState.HALF_OPEN}


def test_no_lock_is_held_while_the_protected_call_runs() -> None:
    """Eight threads are inside the protected call at the same time (a barrier proves it)."""
    breaker = CircuitBreaker()
    barrier = threading.Barrier(8, timeout=10)

    @breaker
    def meet() -> int:
        return barrier.wait()

    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(meet())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert sorted(results) == list(range(8))


def test_concurrent_failures_are_all_counted() -> None:
    """Counting under threads loses nothing: 8×50 failures with a threshold above them."""
    breaker = CircuitBreaker(failure_threshold=10_000, clock=FakeClock())
    guarded = breaker(boom)

    def hammer() -> None:
        for _ in range(50):
            with contextlib.suppress(ConnectionError):
                guarded()

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert breaker.consecutive_failures == 400


async def test_async_breaker_trips_and_rejects() -> None:
    """The same breaker guards coroutines."""
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=2, clock=clock)

    @breaker
    async def down() -> None:
        raise ConnectionError

    for _ in range(2):
        with pytest.raises(ConnectionError):
            await down()
    with pytest.raises(CircuitOpen):
        await down()

    async def up() -> str:
        return "ok"

    clock.advance(30)
    assert await breaker.acall(up) == "ok"
    assert breaker.state is BreakerState.CLOSED


def test_events_on_the_bus() -> None:
    """Transitions and rejections reach a medic.bus.Bus."""
    from medic.bus import Bus

    bus = Bus()
    sub = bus.subscribe(CircuitOpened, CallRejected, CircuitHalfOpened, CircuitClosed)
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=1, clock=clock, bus=bus)
    fail(breaker)
    with pytest.raises(CircuitOpen):
        breaker(ok)()
    clock.advance(1)
    breaker(ok)()
    assert [type(e).__name__ for e in sub.drain()] == [
        "CircuitOpened",
        "CallRejected",
        "CircuitHalfOpened",
        "CircuitClosed",
    ]


class BreakerMachine(RuleBasedStateMachine):
    """Random calls, failures, time and trial outcomes against the breaker's invariants."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.trials = 3
        self.capture = EventCapture()
        self.breaker = CircuitBreaker(
            failure_threshold=2,
            failure_rate=0.5,
            window=6,
            minimum_calls=4,
            reset_timeout=5,
            half_open_trials=self.trials,
            success_threshold=2,
            clock=self.clock,
            listeners=(self._observe,),
        )
        self.history: list[BreakerState] = [BreakerState.CLOSED]
        self.in_flight: list[int] = []
        self.admitted_in_half_open = 0

    def _observe(self, event: Any) -> None:
        self.capture(event)
        state = self.breaker.state
        if state is not self.history[-1]:
            self.history.append(state)
            if state is BreakerState.HALF_OPEN:
                self.admitted_in_half_open = 0

    @rule(success=st.booleans())
    def call(self, success: bool) -> None:
        try:
            gen = (
                self.breaker._admit()
                if self.breaker.state is not BreakerState.CLOSED
                else self.breaker._gen
            )
        except CircuitOpen:
            return
        if self.breaker.state is BreakerState.HALF_OPEN:
            self.admitted_in_half_open += 1
        self.breaker._record(gen, 0 if success else 1)

    @rule()
    def start_call(self) -> None:
        try:
            gen = (
                self.breaker._admit()
                if self.breaker.state is not BreakerState.CLOSED
                else self.breaker._gen
            )
        except CircuitOpen:
            return
        if self.breaker.state is BreakerState.HALF_OPEN:
            self.admitted_in_half_open += 1
        self.in_flight.append(gen)

    @precondition(lambda self: bool(self.in_flight))
    @rule(success=st.booleans(), cancelled=st.booleans())
    def finish_call(self, success: bool, cancelled: bool) -> None:
        gen = self.in_flight.pop(0)
        if cancelled:
            self.breaker._abandoned(gen)
            if self.breaker.state is BreakerState.HALF_OPEN and gen == self.breaker._gen:
                self.admitted_in_half_open -= 1
        else:
            self.breaker._record(gen, 0 if success else 1)

    @rule(seconds=st.floats(min_value=0, max_value=8))
    def wait(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @invariant()
    def never_open_to_closed(self) -> None:
        for before, after in zip(self.history, self.history[1:], strict=False):
            assert after in ALLOWED[before], f"{before} -> {after}"

    @invariant()
    def half_open_admits_at_most_n(self) -> None:
        if self.breaker.state is BreakerState.HALF_OPEN:
            assert 0 <= self.admitted_in_half_open <= self.trials
            assert self.breaker._trials_left == self.trials - self.admitted_in_half_open


BreakerMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestBreakerMachine = BreakerMachine.TestCase
