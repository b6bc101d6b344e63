"""Backoff and rate limits for deliveries, timed by the injected clock.

`RateLimit` is the channel's configured limit; its runtime state is a
`medic.policies.RateLimiter` (one token bucket per channel, never waiting).
`RetryPolicy` is the configured patience; it runs as a `medic.policies.Retry`,
so deliveries share the retry semantics (and the test mode) of every other
medic call.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from medic.clock import Clock
from medic.errors import ConfigError
from medic.policies import RateLimiter, Retry

__all__ = ["RateLimit", "RetryPolicy"]


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
        # Clamp the exponent so that a large attempt number cannot overflow a float.
        base = min(self.initial * self.factor ** min(max(retry - 1, 0), 64), self.max_delay)
        return base * (1.0 - self.jitter * rng.random())

    def retrying(
        self,
        *,
        on: type[Exception],
        clock: Clock,
        rng: random.Random,
        name: str = "alerts",
    ) -> Retry:
        """The runtime policy: retries `on` failures, waiting `delay(n)` on `clock`."""
        return Retry(
            on=on, attempts=self.attempts, backoff=_Waits(self), honour_retry_after=False,
            # Every attempt is bounded by its channel's timeout and every wait by
            # max_delay, so `attempts` already bounds the total; no second deadline.
            deadline=math.inf, name=name, clock=clock, rng=rng, metrics=False,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Waits:
    """`RetryPolicy.delay` as a `medic.policies.Backoff` curve."""

    policy: RetryPolicy

    def delay(self, attempt: int, previous: float, rng: random.Random) -> float:
        return self.policy.delay(attempt, rng)

    @property
    def maximum(self) -> float:
        return self.policy.max_delay


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `burst` notices at once, refilled at `per_minute` a minute."""

    per_minute: float = 30.0
    burst: int = 10

    def __post_init__(self) -> None:
        if self.per_minute <= 0 or self.burst < 1:
            raise ConfigError("a rate limit needs per_minute > 0 and burst ≥ 1")

    def limiter(self, *, clock: Clock, name: str = "alerts") -> RateLimiter:
        """The runtime bucket: one token every 60/per_minute seconds, `burst` at most."""
        return RateLimiter(
            limit=1, period=60.0 / self.per_minute, burst=self.burst, name=name, clock=clock,
            metrics=False,
        )  # fmt: skip
