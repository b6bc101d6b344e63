"""Cancellation, KeyboardInterrupt and SystemExit pass through every policy untouched."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from medic.policies import (
    BreakerState,
    Bulkhead,
    CircuitBreaker,
    RateLimiter,
    constant,
    failover,
    fallback,
    pipeline,
    retry,
    timeout,
)
from medic.testing import EventCapture, FakeClock


def _policies(capture: EventCapture) -> dict[str, Callable[[], Any]]:
    clock = FakeClock()
    return {
        "retry": lambda: retry(on=Exception, attempts=5, clock=clock, listeners=(capture,)),
        "breaker": lambda: CircuitBreaker(failure_threshold=1, clock=clock, listeners=(capture,)),
        "fallback": lambda: fallback(value="swallowed", listeners=(capture,)),
        "failover": lambda: failover(lambda: "alternative", failure_threshold=1),
        "bulkhead": lambda: Bulkhead(max_concurrent=1),
        "limiter": lambda: RateLimiter(limit=100),
        "pipeline": lambda: pipeline(
            fallback(value="swallowed"),
            retry(on=Exception, attempts=5, clock=clock),
            CircuitBreaker(failure_threshold=1, clock=clock),
            Bulkhead(max_concurrent=1),
        ),
    }


NAMES = ["retry", "breaker", "fallback", "failover", "bulkhead", "limiter", "pipeline"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("error", [KeyboardInterrupt, SystemExit])
def test_sync_interrupts_propagate_once(name: str, error: type[BaseException]) -> None:
    """The interrupt reaches the caller after exactly one call; nothing is retried or recorded."""
    capture = EventCapture()
    policy = _policies(capture)[name]()
    calls = 0

    def interrupted() -> str:
        nonlocal calls
        calls += 1
        raise error

    with pytest.raises(error):
        policy(interrupted)()
    assert calls == 1
    assert capture.events == []
    if isinstance(policy, CircuitBreaker):
        assert policy.state is BreakerState.CLOSED
    if isinstance(policy, Bulkhead):
        assert policy.active == 0


@pytest.mark.parametrize("name", [*NAMES, "timeout"])
async def test_async_cancellation_propagates(name: str) -> None:
    """Cancelling the caller's task cancels the guarded call; no retry, fallback or count."""
    capture = EventCapture()
    factories = _policies(capture)
    factories["timeout"] = lambda: timeout(10)
    policy = factories[name]()
    started = asyncio.Event()
    calls = 0

    async def slow() -> str:
        nonlocal calls
        calls += 1
        started.set()
        await asyncio.sleep(10)
        return "done"

    if name == "failover":

        async def alt() -> str:
            return "alternative"

        policy = failover(alt, failure_threshold=1)
    task = asyncio.create_task(policy(slow)())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls == 1
    assert capture.events == []
    if isinstance(policy, CircuitBreaker):
        assert policy.state is BreakerState.CLOSED
    if isinstance(policy, Bulkhead):
        assert policy.active == 0


async def test_cancelled_half_open_trial_is_given_back() -> None:
    """A trial call cancelled mid-flight returns its permit, so half-open does not stall."""
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=1, half_open_trials=1, clock=clock)

    @breaker
    async def down() -> None:
        raise ConnectionError

    with pytest.raises(ConnectionError):
        await down()
    clock.advance(1)
    started = asyncio.Event()

    @breaker
    async def hang() -> None:
        started.set()
        await asyncio.sleep(10)

    task = asyncio.create_task(hang())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    @breaker
    async def up() -> str:
        return "ok"

    assert await up() == "ok"
    assert breaker.state is BreakerState.CLOSED


async def test_cancellation_during_a_retry_wait_propagates() -> None:
    """A task cancelled while retry waits between attempts ends at once with CancelledError."""
    calls = 0

    @retry(on=ConnectionError, attempts=5, backoff=constant(5))
    async def down() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError

    task = asyncio.create_task(down())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls == 1
