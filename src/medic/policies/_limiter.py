"""RateLimiter: how many calls per period, per key, in O(1) time and memory per key.

Two algorithms, both constant-size per key (unlike a log of timestamps, whose
cost grows with the window):

- ``token-bucket``: `limit` tokens per `period`, refilled continuously, bursts
  up to `burst` (default `limit`); kept as GCRA, one float per key.
- ``sliding-window``: the sliding-window counter (this window's count plus the
  previous window's, weighted by how much of it still overlaps).

Keys are bounded by `max_keys`: past it, the oldest key is forgotten, which
can only make the limiter more lenient for that key, never stricter.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Literal, ParamSpec, TypeVar, cast

from medic.clock import Clock, system_clock
from medic.errors import InvalidInput
from medic.events import CallRejected
from medic.policies._core import (
    Emitter,
    Listener,
    Publisher,
    RateLimited,
    check_positive,
    is_async,
    monotonic_of,
)

__all__ = ["Algorithm", "RateLimiter"]

P = ParamSpec("P")
R = TypeVar("R")
Algorithm = Literal["token-bucket", "sliding-window"]


class RateLimiter:
    """`limit` calls per `period` seconds per key; `acquire()` answers at once, never waits."""

    __slots__ = (
        "_emitter",
        "_mono",
        "_rate",
        "_state",
        "_tat",
        "_token",
        "acquire",
        "algorithm",
        "burst",
        "clock",
        "key",
        "limit",
        "max_keys",
        "name",
        "period",
        "rejected",
    )

    def __init__(
        self,
        *,
        limit: int,
        period: float = 1.0,
        algorithm: Algorithm = "token-bucket",
        burst: int | None = None,
        max_keys: int = 1_000_000,
        key: Callable[..., str] | None = None,
        name: str = "rate-limiter",
        clock: Clock = system_clock,
        bus: Publisher | None = None,
        listeners: tuple[Listener, ...] = (),
        metrics: bool = True,
    ) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInput(f"RateLimiter: limit must be an int >= 1, got {limit!r}")
        if algorithm not in ("token-bucket", "sliding-window"):
            raise InvalidInput(f"RateLimiter: unknown algorithm {algorithm!r}")
        if max_keys < 1:
            raise InvalidInput("RateLimiter: max_keys must be >= 1")
        self.limit = limit
        self.period = check_positive("RateLimiter: period", period)
        self.algorithm = algorithm
        self.burst = limit if burst is None else burst
        if self.burst < 1:
            raise InvalidInput("RateLimiter: burst must be >= 1")
        self.max_keys = max_keys
        self.key = key
        self.name = name
        self.clock = clock
        self.rejected = 0
        self._mono = monotonic_of(clock)
        self._rate = limit / self.period
        # The decision lock is one token in a deque: `pop` takes it and `append` gives it
        # back, both atomic (documented thread-safe) and a third of the cost of a
        # threading.Lock's acquire and release, which is most of a decision's budget.
        self._token: deque[None] = deque([None])
        self._state: dict[str, list[float]] = {}
        self._tat: dict[str, float] = {}
        self._emitter = Emitter(bus=bus, listeners=listeners, metrics=metrics)
        self.acquire: Callable[..., bool] = (
            self._bucket() if algorithm == "token-bucket" else self._sliding()
        )

    def __repr__(self) -> str:
        return (
            f"RateLimiter(name={self.name!r}, {self.limit}/{self.period}s, "
            f"algorithm={self.algorithm!r}, keys={len(self)})"
        )

    def __len__(self) -> int:
        return len(self._tat) + len(self._state)

    def _bucket(self) -> Callable[..., bool]:
        # The token bucket as GCRA: one float per key (the theoretical arrival time of
        # the next call), so a decision is one dict lookup and one float, and half a
        # million keys cost no more cache misses per decision than one key.
        state, mono, take, give = self._tat, self._mono, self._token.pop, self._token.append
        get, wait_turn = state.get, self._wait_turn
        interval = self.period / self.limit
        # A hair of slack so that float rounding never refuses the last token of a burst.
        tolerance, max_keys = self.burst * interval * (1 + 1e-9), self.max_keys

        def acquire(key: str = "", cost: float = 1.0) -> bool:
            """Take `cost` tokens for `key` if there are enough; never waits."""
            now = mono()
            try:
                take()
            except IndexError:
                wait_turn()
            try:
                tat = get(key, now)
                step = cost * interval
                if tat <= now:  # a full bucket (or a new key, whose `tat` is `now` itself)
                    if tat is now and len(state) >= max_keys:
                        del state[next(iter(state))]
                    if step <= tolerance:
                        state[key] = now + step
                        return True
                    return False
                tat += step
                if tat - now <= tolerance:
                    state[key] = tat
                    return True
                return False
            finally:
                give(None)

        return acquire

    def _sliding(self) -> Callable[..., bool]:
        state, mono, take, give = self._state, self._mono, self._token.pop, self._token.append
        get, wait_turn = state.get, self._wait_turn
        period, limit, max_keys = self.period, float(self.limit), self.max_keys

        def acquire(key: str = "", cost: float = 1.0) -> bool:
            """Count `cost` calls for `key` if the sliding window has room; never waits."""
            # An entry is [end of its current window, previous count, current count], in
            # periods. Keeping the end rather than the start spares a decision the floor
            # division and a subtraction: the previous window's weight is `end - position`.
            position = mono() / period
            try:
                take()
            except IndexError:
                wait_turn()
            try:
                entry = get(key)
                if entry is None:
                    if len(state) >= max_keys:
                        del state[next(iter(state))]
                    state[key] = entry = [position // 1.0 + 1.0, 0.0, 0.0]
                elif position >= entry[0]:
                    end = position // 1.0 + 1.0
                    entry[1] = entry[2] if entry[0] == end - 1.0 else 0.0
                    entry[2] = 0.0
                    entry[0] = end
                current = entry[2] + cost
                if entry[1] * (entry[0] - position) + current <= limit:
                    entry[2] = current
                    return True
                return False
            finally:
                give(None)

        return acquire

    def _wait_turn(self) -> None:
        """Take the decision token from a thread that the GIL switched away mid-decision.

        The holder needs only a few bytecodes more, so the wait yields the GIL
        (`sleep(0)`) until the token is back rather than parking on a lock.
        """
        take = self._token.pop
        while True:
            time.sleep(0)
            try:
                take()
                return
            except IndexError:
                pass

    def retry_after(self, key: str = "", cost: float = 1.0) -> float:
        """Seconds until `cost` could pass for `key` (an estimate for sliding windows)."""
        now = self._mono()
        with self._held():
            if self.algorithm == "token-bucket":
                tat = self._tat.get(key)
                if tat is None:
                    return 0.0
                interval = self.period / self.limit
                return max(0.0, max(tat, now) + cost * interval - now - self.burst * interval)
            entry = self._state.get(key)
            if entry is None:
                return 0.0
            return max(0.0, entry[0] * self.period - now)

    @contextlib.contextmanager
    def _held(self) -> Iterator[None]:
        try:
            self._token.pop()
        except IndexError:
            self._wait_turn()
        try:
            yield
        finally:
            self._token.append(None)

    def _limited(self, key: str) -> RateLimited:
        self.rejected += 1
        wait = self.retry_after(key)
        self._emitter.emit(CallRejected(self.name, "rate-limited", wait))
        return RateLimited.make(
            f"rate limit {self.name!r} reached for key {key!r}", policy=self.name, retry_after=wait
        )

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate `fn`: a call over the limit raises RateLimited (with `retry_after`)."""
        acquire, keyfn, limited = self.acquire, self.key, self._limited
        if is_async(fn):
            afn = cast(Callable[..., Awaitable[Any]], fn)

            @functools.wraps(fn)
            async def alimited(*args: Any, **kwargs: Any) -> Any:
                k = keyfn(*args, **kwargs) if keyfn is not None else ""
                if not acquire(k):
                    raise limited(k)
                return await afn(*args, **kwargs)

            return cast(Callable[P, R], alimited)

        @functools.wraps(fn)
        def rate_limited(*args: P.args, **kwargs: P.kwargs) -> R:
            k = keyfn(*args, **kwargs) if keyfn is not None else ""
            if not acquire(k):
                raise limited(k)
            return fn(*args, **kwargs)

        return rate_limited

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self(fn)(*args, **kwargs)

    async def acall(self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        wrapped = cast(Callable[P, Awaitable[R]], self(fn))
        return await wrapped(*args, **kwargs)
