"""Backoff and rate limits for deliveries, timed by the injected clock.

Small on purpose: until `medic.policies` lands these are the alerts' own; the
shapes (an immutable policy, mutable state apart) match what policies will offer
so the swap is local to this module.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

from medic.clock import Clock
from medic.errors import ConfigError

__all__ = ["RateLimit", "RetryPolicy", "TokenBucket"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently one delivery is retried.

    The n-th wait (n from 1) is `initial * factor**(n-1)`, capped at `max_delay`,
    then shrunk by up to `jitter` of itself so that many agents do not retry in step.
    """

    attempts: int = 3
    initial: float = 1.0
    factor: float = 2.0
    max_delay: float = 30.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if not 1 <= self.attempts <= 20:
            raise ConfigError(f"retry attempts must be 1..20, got {self.attempts}")
        if self.initial < 0 or self.factor < 1 or self.max_delay < 0:
            raise ConfigError("retry delays must be ≥ 0 and the factor ≥ 1")
        if not 0 <= self.jitter <= 1:
            raise ConfigError(f"retry jitter must be within 0..1, got {self.jitter}")

    def delay(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number `retry` (1 is the first retry)."""
        base = min(self.initial * self.factor ** max(retry - 1, 0), self.max_delay)
        return base * (1.0 - self.jitter * rng.random())


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `burst` notices at once, refilled at `per_minute` a minute."""

    per_minute: float = 30.0
    burst: int = 10

    def __post_init__(self) -> None:
        if self.per_minute <= 0 or self.burst < 1:
            raise ConfigError("a rate limit needs per_minute > 0 and burst ≥ 1")


class TokenBucket:
    """The runtime state of one `RateLimit` on one channel."""

    def __init__(self, limit: RateLimit, *, clock: Clock) -> None:
        self.limit = limit
        self._clock = clock
        self._tokens = float(limit.burst)
        self._stamp = clock.monotonic()
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        """Take one token if there is one; never waits."""
        with self._lock:
            now = self._clock.monotonic()
            refill = (now - self._stamp) * self.limit.per_minute / 60.0
            self._tokens = min(float(self.limit.burst), self._tokens + max(refill, 0.0))
            self._stamp = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False

    def __repr__(self) -> str:
        return f"<TokenBucket {self._tokens:.2f}/{self.limit.burst} at {self.limit.per_minute}/min>"
