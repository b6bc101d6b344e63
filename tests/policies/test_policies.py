"""timeout, fallback, failover, bulkhead, rate limiter, bounded queue and pipeline."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from typing import Literal

import pytest

from medic.errors import InvalidInput
from medic.events import CallRejected, CallTimedOut, FallbackUsed
from medic.policies import (
    BoundedQueue,
    Bulkhead,
    BulkheadFull,
    CircuitBreaker,
    CircuitOpen,
    PolicyTimeout,
    QueueFull,
    RateLimited,
    RateLimiter,
    constant,
    failover,
    fallback,
    pipeline,
    retry,
    timeout,
)
from medic.taxonomy import Kind
from medic.testing import EventCapture, FakeClock

# -- timeout ---------------------------------------------------------------------------


async def test_async_timeout_cancels_and_raises_policy_timeout() -> None:
    """An async call past its timeout is cancelled; PolicyTimeout is also a TimeoutError."""
    capture = EventCapture()
    cancelled = asyncio.Event()

    @timeout(0.05, listeners=(capture,))
    async def hang() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(TimeoutError) as caught:
        await hang()
    assert isinstance(caught.value, PolicyTimeout)
    assert cancelled.is_set()
    assert capture.of_type(CallTimedOut)[0].seconds == 0.05


async def test_async_timeout_lets_the_calls_own_timeout_error_through() -> None:
    """A TimeoutError raised by the call itself is not reported as the policy's."""
    capture = EventCapture()

    @timeout(5, listeners=(capture,))
    async def own() -> None:
        raise TimeoutError("mine")

    with pytest.raises(TimeoutError, match="mine") as caught:
        await own()
    assert not isinstance(caught.value, PolicyTimeout)
    assert capture.events == []


def test_sync_timeout_stops_waiting_and_keeps_context() -> None:
    """A sync call runs in a worker; the caller stops waiting at the deadline."""
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    var.set("caller")
    release = threading.Event()

    @timeout(0.05)
    def stuck() -> str:
        release.wait(5)
        return var.get()

    started = time.monotonic()
    with pytest.raises(PolicyTimeout):
        stuck()
    assert time.monotonic() - started < 2
    release.set()
    assert timeout(5)(lambda: var.get())() == "caller"


# -- fallback --------------------------------------------------------------------------


def test_fallback_value_handler_and_per_kind() -> None:
    """A value, a function of the error, or an answer per kind; others propagate."""
    capture = EventCapture()

    def down() -> str:
        raise ConnectionError("down")

    assert fallback(value="cached", listeners=(capture,))(down)() == "cached"
    assert fallback(handler=lambda e: f"saw {e}")(down)() == "saw down"
    per_kind = fallback(per_kind={Kind.CONNECTION: "offline"}, on=Kind.CONNECTION)
    assert per_kind(down)() == "offline"
    with pytest.raises(ValueError, match="bad"):
        fallback(value=1, on=ConnectionError)(lambda: (_ for _ in ()).throw(ValueError("bad")))()
    assert capture.of_type(FallbackUsed)[0].kind is Kind.CONNECTION
    with pytest.raises(InvalidInput):
        fallback()


async def test_async_fallback_awaits_an_async_handler() -> None:
    """An async handler's answer is awaited."""

    async def down() -> str:
        raise ConnectionError

    async def rescue(exc: Exception) -> str:
        return "rescued"

    assert await fallback(handler=rescue)(down)() == "rescued"


# -- failover --------------------------------------------------------------------------


def test_failover_skips_a_failing_alternative_until_it_recovers() -> None:
    """Primary fails → secondary answers; after the threshold the primary is not even tried."""
    clock = FakeClock()
    primary_calls = 0
    primary_up = False

    def secondary() -> str:
        return "secondary"

    @failover(secondary, failure_threshold=2, reset_timeout=10, clock=clock)
    def primary() -> str:
        nonlocal primary_calls
        primary_calls += 1
        if not primary_up:
            raise ConnectionError
        return "primary"

    assert [primary() for _ in range(4)] == ["secondary"] * 4
    assert primary_calls == 2
    primary_up = True
    clock.advance(10)
    assert primary() == "primary"
    assert primary.breakers[0].state.value == "closed"  # type: ignore[attr-defined]


def test_failover_lets_the_last_real_error_through() -> None:
    """When every alternative fails, the last real error propagates, not CircuitOpen."""

    def b() -> str:
        raise TimeoutError("b")

    @failover(b)
    def a() -> str:
        raise ConnectionError("a")

    with pytest.raises(TimeoutError, match="b"):
        a()


def test_sync_and_async_cannot_be_mixed() -> None:
    """An async answer for a sync call (or mixed alternatives) is refused when decorating."""

    async def rescue(exc: Exception) -> str:
        return "never awaited"

    with pytest.raises(InvalidInput, match="async fallback"):
        fallback(handler=rescue)(lambda: "x")

    async def alt() -> str:
        return "alt"

    with pytest.raises(InvalidInput, match="mix"):
        failover(alt)(lambda: "primary")


# -- bulkhead --------------------------------------------------------------------------


def test_bulkhead_limits_concurrency_and_rejects_without_wait() -> None:
    """With max_wait=0 the (N+1)th concurrent call is refused at once."""
    bulkhead = Bulkhead(max_concurrent=2)
    inside = threading.Barrier(3, timeout=5)
    leave = threading.Event()

    @bulkhead
    def work() -> None:
        inside.wait()
        leave.wait(5)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    inside.wait()
    assert bulkhead.active == 2
    with pytest.raises(BulkheadFull):
        bulkhead(lambda: None)()
    leave.set()
    for t in threads:
        t.join(5)
    assert bulkhead.active == 0
    assert bulkhead.rejected == 1


def test_bulkhead_waiter_gets_a_freed_slot_and_wait_is_bounded() -> None:
    """A waiter gets the slot when one frees; a wait past max_wait is refused."""
    bulkhead = Bulkhead(max_concurrent=1, max_wait=2.0, max_waiting=1)
    bulkhead.acquire()
    threading.Timer(0.05, bulkhead.release).start()
    bulkhead.acquire()  # waits for the timer's release
    assert bulkhead.active == 1
    short = Bulkhead(max_concurrent=1, max_wait=0.05)
    short.acquire()
    with pytest.raises(BulkheadFull):
        short.acquire()
    assert short.waiting == 0


async def test_async_bulkhead_queues_tasks() -> None:
    """Tasks wait on the loop for a slot; at most N run at once."""
    bulkhead = Bulkhead(max_concurrent=2, max_wait=5, max_waiting=10)
    running = peak = 0

    @bulkhead
    async def work() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1

    await asyncio.gather(*(work() for _ in range(8)))
    assert peak == 2
    assert bulkhead.active == 0


async def test_async_bulkhead_wait_is_bounded() -> None:
    """A task waiting past max_wait gets BulkheadFull and leaves no waiter behind."""
    bulkhead = Bulkhead(max_concurrent=1, max_wait=0.05, max_waiting=1)
    await bulkhead.aacquire()
    with pytest.raises(BulkheadFull):
        await bulkhead.aacquire()
    assert bulkhead.waiting == 0
    bulkhead.release()
    await bulkhead.aacquire()
    assert bulkhead.active == 1


# -- rate limiter ----------------------------------------------------------------------


def test_token_bucket_refills_with_time() -> None:
    """`limit` per period; tokens come back as the fake clock moves."""
    clock = FakeClock()
    limiter = RateLimiter(limit=3, period=1.0, clock=clock)
    assert [limiter.acquire("k") for _ in range(4)] == [True, True, True, False]
    assert limiter.retry_after("k") == pytest.approx(1 / 3)
    clock.advance(1 / 3)
    assert limiter.acquire("k")
    assert limiter.acquire("other")


def test_sliding_window_weights_the_previous_window() -> None:
    """The previous window's count still weighs in proportionally."""
    clock = FakeClock(monotonic=100.0)
    limiter = RateLimiter(limit=10, period=10.0, algorithm="sliding-window", clock=clock)
    assert sum(limiter.acquire() for _ in range(12)) == 10
    clock.advance(15)  # halfway into the next window: 10 * 0.5 still counted
    assert sum(limiter.acquire() for _ in range(10)) == 5


@pytest.mark.parametrize("algorithm", ["token-bucket", "sliding-window"])
def test_limiter_admits_exactly_its_limit_across_threads(
    algorithm: Literal["token-bucket", "sliding-window"],
) -> None:
    """Eight threads racing on one key are admitted exactly `limit` times, no more.

    The clock stands still, so no token comes back; a tiny switch interval makes
    the GIL change hands inside decisions, where a lost update would over-admit.
    """
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    limiter = RateLimiter(limit=20_000, period=3600.0, algorithm=algorithm, clock=FakeClock())
    admitted = [0] * 8
    start = threading.Barrier(8)

    def hammer(i: int) -> None:
        start.wait()
        admitted[i] = sum(limiter.acquire("k") for _ in range(5000))

    try:
        threads = [threading.Thread(target=hammer, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(previous)
    assert sum(admitted) == 20_000


def test_limiter_keys_are_bounded_and_decorator_raises_rate_limited() -> None:
    """Past max_keys the oldest key is forgotten; the decorator raises RateLimited."""
    capture = EventCapture()
    limiter = RateLimiter(
        limit=1, max_keys=100, key=lambda user: user, clock=FakeClock(), listeners=(capture,)
    )
    for i in range(1000):
        limiter.acquire(str(i))
    assert len(limiter) == 100

    @limiter
    def handle(user: str) -> str:
        return user

    assert handle("alice") == "alice"
    with pytest.raises(RateLimited) as caught:
        handle("alice")
    assert caught.value.retry_after == pytest.approx(1.0)
    assert capture.of_type(CallRejected)[0].reason == "rate-limited"


# -- bounded queue ---------------------------------------------------------------------


def test_queue_overflow_policies_count_what_they_drop() -> None:
    """drop-newest refuses, drop-oldest evicts, block times out with QueueFull."""
    newest = BoundedQueue[int](maxsize=2, overflow="drop-newest")
    assert [newest.put(i) for i in range(3)] == [True, True, False]
    assert (newest.get(), newest.get(), newest.dropped) == (0, 1, 1)
    oldest = BoundedQueue[int](maxsize=2, overflow="drop-oldest")
    for i in range(3):
        oldest.put(i)
    assert (oldest.get(), oldest.get(), oldest.dropped) == (1, 2, 1)
    blocking = BoundedQueue[int](maxsize=1, put_timeout=0.02)
    blocking.put(1)
    with pytest.raises(QueueFull):
        blocking.put(2)
    assert blocking.rejected == 1
    assert len(blocking) == 1
    with pytest.raises(InvalidInput):
        BoundedQueue[int](maxsize=0)


def test_blocking_queue_is_back_pressure_between_threads() -> None:
    """A producer blocked on a full queue continues as soon as a consumer takes one."""
    queue = BoundedQueue[int](maxsize=1, put_timeout=5)
    queue.put(0)
    threading.Timer(0.05, queue.get).start()
    assert queue.put(1) is True
    assert queue.get(timeout=1) == 1


async def test_async_queue_producer_and_consumer() -> None:
    """aput/aget move items between tasks with back-pressure."""
    queue = BoundedQueue[int](maxsize=2, put_timeout=5)

    async def produce() -> None:
        for i in range(20):
            await queue.aput(i)

    got: list[int] = []

    async def consume() -> None:
        for _ in range(20):
            got.append(await queue.aget(timeout=5))

    await asyncio.gather(produce(), consume())
    assert got == list(range(20))
    assert len(queue) == 0
    with pytest.raises(TimeoutError):
        await queue.aget(timeout=0.01)


async def test_async_put_on_a_full_blocking_queue_times_out() -> None:
    """aput waits on the loop, then refuses with QueueFull once put_timeout passes."""
    queue = BoundedQueue[int](maxsize=1, put_timeout=0.05)
    await queue.aput(1)
    with pytest.raises(QueueFull):
        await queue.aput(2)
    assert queue.rejected == 1
    assert await queue.aget(timeout=1) == 1


# -- pipeline --------------------------------------------------------------------------


def test_pipeline_order_first_is_outermost() -> None:
    """fallback outside retry outside breaker: retries run first, then the fallback answers."""
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=10, clock=clock)
    calls = 0

    def down() -> str:
        nonlocal calls
        calls += 1
        raise ConnectionError

    protected = pipeline(
        fallback(value="fallback"),
        retry(on=ConnectionError, attempts=3, backoff=constant(0), clock=clock),
        breaker,
    )(down)
    assert protected() == "fallback"
    assert calls == 3
    assert breaker.consecutive_failures == 3
    assert "retry(" in repr(pipeline(retry(on=ConnectionError)))


def test_retry_waits_out_an_open_breaker_in_a_pipeline() -> None:
    """retry(on=CircuitOpen) outside a breaker waits its retry_after, then the trial succeeds."""
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=4, clock=clock)
    up = False

    def dep() -> str:
        if not up:
            raise ConnectionError
        return "ok"

    protected = pipeline(
        retry(on=[CircuitOpen], attempts=2, backoff=constant(0.1), clock=clock), breaker
    )(dep)
    with pytest.raises(ConnectionError):
        protected()
    up = True
    assert protected() == "ok"
    assert clock.sleeps == [pytest.approx(4.0)]


async def test_async_pipeline_with_every_async_policy() -> None:
    """timeout + retry + breaker + bulkhead compose over a coroutine."""
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError
        return "ok"

    protected = pipeline(
        timeout(5),
        retry(on=ConnectionError, backoff=constant(0)),
        CircuitBreaker(),
        Bulkhead(max_concurrent=4),
    )(flaky)
    assert await protected() == "ok"


def test_limiter_lock_survives_an_unhashable_key() -> None:
    """A bad key raises TypeError and leaves the limiter usable (the lock is released)."""
    limiter = RateLimiter(limit=5, clock=FakeClock())
    with pytest.raises(TypeError):
        limiter.acquire(["not", "hashable"])  # type: ignore[arg-type]
    assert limiter.acquire("fine")
