"""retry: what is retried, how long it waits, and what gets through at the end."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from medic.errors import InvalidInput
from medic.events import RetryAttempted
from medic.policies import CircuitOpen, constant, exponential, retry
from medic.taxonomy import Kind
from medic.testing import EventCapture, FakeClock, policy_test_mode


class Flaky:
    """Fails `failures` times with `error`, then returns 'ok'."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or ConnectionError("down")
        self.calls = 0

    def __call__(self, *args: Any) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


def test_on_is_required_and_validated() -> None:
    """No retry-everything default; BaseException types are refused."""
    with pytest.raises(TypeError):
        retry()  # type: ignore[call-arg]
    with pytest.raises(InvalidInput, match="always propagate"):
        retry(on=KeyboardInterrupt)
    with pytest.raises(InvalidInput):
        retry(on=())
    with pytest.raises(InvalidInput):
        retry(on=ConnectionError, attempts=0)
    with pytest.raises(InvalidInput):
        retry(on=ConnectionError, deadline=-1)
    with pytest.raises(InvalidInput):
        retry(on="ConnectionError")  # type: ignore[arg-type]


def test_retries_then_succeeds_with_waits_from_the_fake_clock() -> None:
    """Waits follow the backoff curve and go through the injected clock."""
    clock = FakeClock()
    flaky = Flaky(2)
    policy = retry(on=ConnectionError, attempts=3, backoff=constant(0.5), clock=clock)
    assert policy(flaky)() == "ok"
    assert flaky.calls == 3
    assert clock.sleeps == [0.5, 0.5]


def test_exponential_timing_under_fake_clock() -> None:
    """Without jitter, waits double from the initial value up to the cap."""
    clock = FakeClock()
    flaky = Flaky(5)
    backoff = exponential(initial=1, multiplier=2, cap=5, jitter=0)
    policy = retry(on=ConnectionError, attempts=6, deadline=100, backoff=backoff, clock=clock)
    assert policy(flaky)() == "ok"
    assert clock.sleeps == [1, 2, 4, 5, 5]


def test_zero_wait_never_sleeps() -> None:
    """A zero wait retries at once: the clock's sleep is never called."""
    clock = FakeClock()
    assert retry(on=ConnectionError, backoff=constant(0), clock=clock)(Flaky(2))() == "ok"
    assert clock.sleeps == []


def test_last_real_error_gets_through() -> None:
    """When attempts run out, the last error itself propagates (not a wrapper)."""
    errors = [ConnectionError("first"), ConnectionError("second"), ConnectionError("last")]
    calls = iter(errors)

    def always() -> None:
        raise next(calls)

    with pytest.raises(ConnectionError) as caught:
        retry(on=ConnectionError, backoff=constant(0))(always)()
    assert caught.value is errors[-1]


def test_errors_not_named_are_not_retried() -> None:
    """A failure outside on= propagates after one attempt."""
    flaky = Flaky(1, ValueError("bad"))
    with pytest.raises(ValueError, match="bad"):
        retry(on=ConnectionError, backoff=constant(0))(flaky)()
    assert flaky.calls == 1


def test_kinds_retry_only_retryable_failures() -> None:
    """on=Kind retries failures of that kind the taxonomy marks retryable."""
    flaky = Flaky(1, TimeoutError())
    assert retry(on=Kind.TIMEOUT, backoff=constant(0))(flaky)() == "ok"
    full = Flaky(1, OSError(28, "No space left on device"))
    with pytest.raises(OSError, match="No space"):
        retry(on=Kind.RESOURCE, backoff=constant(0))(full)()
    assert full.calls == 1


def test_deadline_stops_retries_before_a_wait_would_pass_it() -> None:
    """A wait that would end after the total deadline is not taken."""
    clock = FakeClock()
    flaky = Flaky(10)
    policy = retry(
        on=ConnectionError, attempts=10, deadline=2.0, backoff=constant(0.9), clock=clock
    )
    with pytest.raises(ConnectionError):
        policy(flaky)()
    assert clock.sleeps == [0.9, 0.9]
    assert flaky.calls == 3


def test_retry_after_lengthens_the_wait() -> None:
    """A failure carrying retry_after is waited out (within the deadline)."""
    clock = FakeClock()
    opened = CircuitOpen.make("open", policy="b", retry_after=3.0)
    flaky = Flaky(1, opened)
    policy = retry(on=CircuitOpen, backoff=constant(0.1), deadline=10, clock=clock)
    assert policy(flaky)() == "ok"
    assert clock.sleeps == [3.0]
    ignoring = retry(on=CircuitOpen, backoff=constant(0.1), honour_retry_after=False, clock=clock)
    clock.sleeps.clear()
    assert ignoring(Flaky(1, opened))() == "ok"
    assert clock.sleeps == [0.1]


def test_per_kind_backoff() -> None:
    """Each failure kind can have its own curve."""
    clock = FakeClock()
    errors = iter([TimeoutError(), ConnectionError()])

    def fn() -> str:
        for err in errors:
            raise err
        return "ok"

    policy = retry(
        on=[Kind.TIMEOUT, Kind.CONNECTION],
        backoff=constant(1),
        per_kind={Kind.TIMEOUT: constant(7)},
        clock=clock,
    )
    assert policy(fn)() == "ok"
    assert clock.sleeps == [7, 1]


def test_events_report_each_failed_attempt() -> None:
    """Each failed attempt is one RetryAttempted event; the last says it gave up."""
    capture = EventCapture()
    policy = retry(on=ConnectionError, attempts=2, backoff=constant(0), listeners=(capture,))
    with pytest.raises(ConnectionError):
        policy(Flaky(5))()
    events = capture.of_type(RetryAttempted)
    assert [(e.attempt, e.will_retry) for e in events] == [(1, True), (2, False)]
    assert events[0].kind is Kind.CONNECTION
    assert events[0].error_type == "ConnectionError"


def test_test_mode_skips_waits_and_caps_attempts() -> None:
    """policy_test_mode: no waits, and at most the given attempts."""
    clock = FakeClock()
    policy = retry(on=ConnectionError, attempts=5, backoff=constant(100), clock=clock)
    with policy_test_mode(attempts=2):
        flaky = Flaky(5)
        with pytest.raises(ConnectionError):
            policy(flaky)()
        assert flaky.calls == 2
    assert clock.sleeps == []


def test_seeded_jitter_is_reproducible() -> None:
    """The injected Random makes jittered waits the same on every run."""

    def waits(seed: int) -> list[float]:
        clock = FakeClock()
        policy = retry(
            on=ConnectionError,
            attempts=4,
            backoff=exponential(jitter=0.5),
            clock=clock,
            rng=random.Random(seed),
        )
        policy(Flaky(3))()
        return clock.sleeps

    assert waits(7) == waits(7)


def test_signature_and_metadata_survive_decoration() -> None:
    """functools.wraps keeps the name and docstring; call() is the wrapper form."""

    @retry(on=ConnectionError)
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    assert add(1, 2) == 3
    assert add.__name__ == "add"
    assert add.__doc__ == "Add."
    assert retry(on=ConnectionError).call(add, 2, 3) == 5
    assert "attempts=3" in repr(retry(on=ConnectionError))


async def test_async_retry_with_fake_clock() -> None:
    """Async functions retry the same way, waiting through clock.asleep."""
    clock = FakeClock()
    calls = 0

    @retry(on=ConnectionError, backoff=constant(2), clock=clock)
    async def fetch() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError
        await asyncio.sleep(0)
        return "ok"

    assert await fetch() == "ok"
    assert clock.sleeps == [2, 2]
    assert await retry(on=ConnectionError).acall(fetch) == "ok"
