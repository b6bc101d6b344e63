"""retry: try again on the failures you name, within a bounded number of attempts and time.

The wrapper's success path is one `try` around the call plus one clock read (for
the total deadline); classification, backoff and events run only after a failure.
A zero wait retries at once, without a sleep call (which costs 60–95 µs on Linux).
"""

from __future__ import annotations

import functools
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ParamSpec, TypeVar, cast

from medic.clock import Clock, system_clock
from medic.errors import InvalidInput
from medic.events import RetryAttempted
from medic.policies._backoff import Backoff, exponential
from medic.policies._core import (
    Emitter,
    Listener,
    Matcher,
    OnSpec,
    Publisher,
    check_positive,
    is_async,
    monotonic_of,
    test_mode,
)
from medic.taxonomy import Kind

__all__ = ["Retry", "retry"]

P = ParamSpec("P")
R = TypeVar("R")

_MAX_ATTEMPTS = 1_000


class Retry:
    """An immutable retry policy; one instance may guard any number of functions and threads."""

    __slots__ = (
        "_emitter",
        "_mono",
        "_rng",
        "attempts",
        "backoff",
        "clock",
        "deadline",
        "honour_retry_after",
        "matcher",
        "name",
        "per_kind",
    )

    def __init__(
        self,
        *,
        on: OnSpec,
        attempts: int = 3,
        deadline: float = 30.0,
        backoff: Backoff | None = None,
        per_kind: Mapping[Kind, Backoff] | None = None,
        honour_retry_after: bool = True,
        name: str = "retry",
        clock: Clock = system_clock,
        rng: random.Random | None = None,
        bus: Publisher | None = None,
        listeners: tuple[Listener, ...] = (),
        metrics: bool = True,
    ) -> None:
        if isinstance(attempts, bool) or not isinstance(attempts, int):
            raise InvalidInput(f"retry(attempts) must be an int, got {attempts!r}")
        if not 1 <= attempts <= _MAX_ATTEMPTS:
            raise InvalidInput(f"retry(attempts) must be within 1..{_MAX_ATTEMPTS}, got {attempts}")
        self.matcher = Matcher(on, need_retryable=True, what="retry")
        self.attempts = attempts
        self.deadline = check_positive("retry(deadline)", deadline)
        self.backoff: Backoff = backoff if backoff is not None else exponential()
        self.per_kind: dict[Kind, Backoff] = dict(per_kind or {})
        self.honour_retry_after = honour_retry_after
        self.name = name
        self.clock = clock
        self._mono = monotonic_of(clock)
        self._rng = rng if rng is not None else random.Random()
        self._emitter = Emitter(bus=bus, listeners=listeners, metrics=metrics)

    def __repr__(self) -> str:
        return (
            f"retry(name={self.name!r}, on={self.matcher!r}, attempts={self.attempts}, "
            f"deadline={self.deadline}, backoff={self.backoff!r})"
        )

    def _next_wait(self, exc: Exception, attempt: int, start: float, previous: float) -> float:
        """Seconds to wait before attempt+1, or -1.0 to give up (let `exc` through)."""
        found = self.matcher.match(exc)
        if found is None:
            return -1.0
        limit = (
            self.attempts if test_mode.attempts is None else min(self.attempts, test_mode.attempts)
        )
        wait = -1.0
        if attempt < limit:
            wait = self.per_kind.get(found.kind, self.backoff).delay(attempt, previous, self._rng)
            if self.honour_retry_after and found.retry_after is not None:
                wait = max(wait, found.retry_after)
            # In test mode the wait is skipped, so it cannot overrun the deadline.
            if not test_mode.no_waits and self._mono() - start + wait > self.deadline:
                wait = -1.0
        emitter = self._emitter
        if emitter.wants_events:
            emitter.emit(
                RetryAttempted(
                    self.name,
                    attempt,
                    type(exc).__qualname__,
                    str(exc)[:500],
                    found.kind,
                    max(wait, 0.0),
                    wait >= 0.0,
                )
            )
        else:
            emitter.count(self.name, "RetryAttempted")
        return wait

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate `fn` (sync or async); the result keeps `fn`'s signature for type checkers."""
        if is_async(fn):
            return cast(Callable[P, R], self._wrap_async(cast(Callable[..., Awaitable[Any]], fn)))
        mono = self._mono
        again = self._sync_again

        @functools.wraps(fn)
        def retrying(*args: P.args, **kwargs: P.kwargs) -> R:
            start = mono()
            try:
                return fn(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - BaseException (cancellation) always passes
                exc = e
            return again(fn, args, kwargs, exc, start)

        return retrying

    def _sync_again(
        self, fn: Callable[..., R], args: Any, kwargs: Any, exc: Exception, start: float
    ) -> R:
        attempt, wait = 1, 0.0
        sleep = self.clock.sleep
        while True:
            wait = self._next_wait(exc, attempt, start, wait)
            if wait < 0.0:
                raise exc
            if wait > 0.0 and not test_mode.no_waits:
                sleep(wait)
            attempt += 1
            try:
                return fn(*args, **kwargs)
            except Exception as e:  # noqa: BLE001
                exc = e

    def _wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        mono = self._mono
        again = self._async_again

        @functools.wraps(fn)
        async def retrying(*args: Any, **kwargs: Any) -> Any:
            start = mono()
            try:
                return await fn(*args, **kwargs)
            except Exception as e:  # noqa: BLE001
                exc = e
            return await again(fn, args, kwargs, exc, start)

        return retrying

    async def _async_again(
        self,
        fn: Callable[..., Awaitable[Any]],
        args: Any,
        kwargs: Any,
        exc: Exception,
        start: float,
    ) -> Any:
        attempt, wait = 1, 0.0
        asleep = self.clock.asleep
        while True:
            wait = self._next_wait(exc, attempt, start, wait)
            if wait < 0.0:
                raise exc
            if wait > 0.0 and not test_mode.no_waits:
                await asleep(wait)
            attempt += 1
            try:
                return await fn(*args, **kwargs)
            except Exception as e:  # noqa: BLE001
                exc = e

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run `fn(*args, **kwargs)` under this policy (the wrapper form; sync)."""
        return self(fn)(*args, **kwargs)

    async def acall(self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Await `fn(*args, **kwargs)` under this policy (the wrapper form; async)."""
        wrapped = cast(Callable[P, Awaitable[R]], self._wrap_async(fn))
        return await wrapped(*args, **kwargs)


def retry(
    *,
    on: OnSpec,
    attempts: int = 3,
    deadline: float = 30.0,
    backoff: Backoff | None = None,
    per_kind: Mapping[Kind, Backoff] | None = None,
    honour_retry_after: bool = True,
    name: str = "retry",
    clock: Clock = system_clock,
    rng: random.Random | None = None,
    bus: Publisher | None = None,
    listeners: tuple[Listener, ...] = (),
    metrics: bool = True,
) -> Retry:
    """Retry the failures named by `on=` (exception types, or taxonomy kinds when retryable).

    Defaults are bounded: 3 attempts, 30 s in total, exponential backoff from
    0.1 s capped at 10 s. A wait that would pass the deadline ends the retries and
    lets the last error through. A ``Retry-After`` on the failure lengthens the wait.
    """
    return Retry(
        on=on,
        attempts=attempts,
        deadline=deadline,
        backoff=backoff,
        per_kind=per_kind,
        honour_retry_after=honour_retry_after,
        name=name,
        clock=clock,
        rng=rng,
        bus=bus,
        listeners=listeners,
        metrics=metrics,
    )
