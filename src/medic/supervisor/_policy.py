"""Restart policies: when to restart, how long to wait, and when to stop trying for a while.

The backoff counts consecutive failed runs, and only a run that stayed *ready* for
`reset_after` clears it, so a service that starts crash-looping after hours of
healthy uptime is slowed down exactly like one that crashes at once (PM2 only
limits restarts in the first 16 s of an app's life; research/supervisors.md §3.3).
"""

from __future__ import annotations

import enum
import random
from collections import deque
from dataclasses import dataclass

__all__ = ["Backoff", "CrashLoopLimit", "CrashLoopWindow", "RestartPolicy"]


class RestartPolicy(enum.StrEnum):
    """Which exits lead to a restart."""

    ALWAYS = "always"
    ON_FAILURE = "on-failure"
    NEVER = "never"

    def wants_restart(self, *, returncode: int | None, signal: int | None) -> bool:
        """A clean exit (code 0) is a failure only for `always`; a signal always is."""
        if self is RestartPolicy.NEVER:
            return False
        if self is RestartPolicy.ALWAYS:
            return True
        return signal is not None or returncode != 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Exponential backoff with jitter: immediate first restart, then initial × factorⁿ.

    `jitter` is a fraction: 0.2 spreads each delay uniformly over ±20 % so that
    many services failing together do not restart in lockstep.
    """

    initial: float = 0.25
    factor: float = 2.0
    max: float = 30.0
    jitter: float = 0.2
    reset_after: float = 60.0

    def __post_init__(self) -> None:
        if self.initial < 0 or self.max < 0 or self.reset_after < 0:
            raise ValueError("backoff durations must not be negative")
        if self.factor < 1:
            raise ValueError("backoff factor must be at least 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("backoff jitter must be in [0, 1)")

    def delay(self, failures: int, *, rng: random.Random) -> float:
        """The wait before the next start after `failures` consecutive failed runs (≥ 1)."""
        if failures <= 1:
            return 0.0
        base = min(self.max, self.initial * self.factor ** min(failures - 2, 64))
        if self.jitter:
            base *= 1 + rng.uniform(-self.jitter, self.jitter)
        return max(0.0, min(base, self.max * (1 + self.jitter)))


@dataclass(frozen=True, slots=True, kw_only=True)
class CrashLoopLimit:
    """More than `max_restarts` restarts within `within` seconds → fatal for `cooldown`."""

    max_restarts: int = 5
    within: float = 60.0
    cooldown: float = 60.0

    def __post_init__(self) -> None:
        if self.max_restarts < 1:
            raise ValueError("max_restarts must be at least 1")
        if self.within <= 0 or self.cooldown < 0:
            raise ValueError("within must be positive and cooldown not negative")


class CrashLoopWindow:
    """The restart times inside the sliding window; never holds more than the limit."""

    __slots__ = ("_limit", "_times")

    def __init__(self, limit: CrashLoopLimit) -> None:
        self._limit = limit
        self._times: deque[float] = deque(maxlen=limit.max_restarts + 1)

    def add(self, now: float) -> bool:
        """Count one restart at monotonic `now`; true when the limit is exceeded."""
        self._times.append(now)
        while self._times and now - self._times[0] > self._limit.within:
            self._times.popleft()
        return len(self._times) > self._limit.max_restarts

    def clear(self) -> None:
        self._times.clear()

    def __len__(self) -> int:
        return len(self._times)

    def __repr__(self) -> str:
        return f"<CrashLoopWindow {len(self._times)}/{self._limit.max_restarts}>"
