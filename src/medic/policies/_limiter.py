"""RateLimiter: how many calls per period, per key, in O(1) time and memory per key.

Two algorithms, both constant-size per key (unlike a log of timestamps, whose
cost grows with the window):

- ``token-bucket``: `limit` tokens per `period`, refilled continuously, bursts
  up to `burst` (default `limit`).
- ``sliding-window``: the sliding-window counter (this window's count plus the
  previous window's, weighted by how much of it still overlaps).

Keys are bounded by `max_keys`: past it, the oldest key is forgotten, which
can only make the limiter more lenient for that key, never stricter.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Awaitable, Callable
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
        "_lock",
        "_mono",
        "_rate",
        "_state",
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
        self._lock = threading.Lock()
        self._state: dict[str, list[float]] = {}
        self._emitter = Emitter(bus=bus, listeners=listeners, metrics=metrics)
        self.acquire: Callable[..., bool] = (
            self._bucket() if algorithm == "token-bucket" else self._sliding()
        )

    def __repr__(self) -> str:
        return (
            f"RateLimiter(name={self.name!r}, {self.limit}/{self.period}s, "
            f"algorithm={self.algorithm!r}, keys={len(self._state)})"
        )

    def __len__(self) -> int:
        return len(self._state)

    def _bucket(self) -> Callable[..., bool]:
        state, lock, mono, rate = self._state, self._lock, self._mono, self._rate
        cap, max_keys = float(self.burst), self.max_keys

        def acquire(key: str = "", cost: float = 1.0) -> bool:
            """Take `cost` tokens for `key` if there are enough; never waits."""
            now = mono()
            with lock:
                entry = state.get(key)
                if entry is None:
                    if len(state) >= max_keys:
                        del state[next(iter(state))]
                    state[key] = entry = [cap, now]
                tokens = entry[0] + (now - entry[1]) * rate
                if tokens > cap:
                    tokens = cap
                entry[1] = now
                if tokens >= cost:
                    entry[0] = tokens - cost
                    return True
                entry[0] = tokens
                return False

        return acquire

    def _sliding(self) -> Callable[..., bool]:
        state, lock, mono = self._state, self._lock, self._mono
        period, limit, max_keys = self.period, float(self.limit), self.max_keys

        def acquire(key: str = "", cost: float = 1.0) -> bool:
            """Count `cost` calls for `key` if the sliding window has room; never waits."""
            position = mono() / period
            epoch = float(int(position))
            with lock:
                entry = state.get(key)
                if entry is None:
                    if len(state) >= max_keys:
                        del state[next(iter(state))]
                    state[key] = entry = [epoch, 0.0, 0.0]
                if entry[0] != epoch:
                    entry[1] = entry[2] if entry[0] == epoch - 1.0 else 0.0
                    entry[2] = 0.0
                    entry[0] = epoch
                if entry[1] * (1.0 - (position - epoch)) + entry[2] + cost <= limit:
                    entry[2] += cost
                    return True
                return False

        return acquire

    def retry_after(self, key: str = "", cost: float = 1.0) -> float:
        """Seconds until `cost` could pass for `key` (an estimate for sliding windows)."""
        with self._lock:
            entry = self._state.get(key)
            if entry is None:
                return 0.0
            if self.algorithm == "token-bucket":
                tokens = min(float(self.burst), entry[0] + (self._mono() - entry[1]) * self._rate)
                return max(0.0, (cost - tokens) / self._rate)
            return max(0.0, (entry[0] + 1.0) * self.period - self._mono())

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
