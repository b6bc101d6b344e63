"""Backoff curves: how long to wait before attempt n+1, always within stated bounds.

Each curve is a small immutable object; randomness comes from the `random.Random`
the retry policy was given, so a seeded test sees the same waits every run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol

from medic.errors import InvalidInput
from medic.policies._core import check_positive

__all__ = [
    "Backoff",
    "Constant",
    "DecorrelatedJitter",
    "Exponential",
    "constant",
    "decorrelated",
    "exponential",
]


class Backoff(Protocol):
    """A curve: the wait before the next attempt, given the failed attempt number (1-based)."""

    def delay(self, attempt: int, previous: float, rng: random.Random) -> float: ...

    @property
    def maximum(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Constant:
    """The same wait every time (zero means retry at once, without any sleep call)."""

    seconds: float

    def delay(self, attempt: int, previous: float, rng: random.Random) -> float:
        return self.seconds

    @property
    def maximum(self) -> float:
        return self.seconds


@dataclass(frozen=True, slots=True)
class Exponential:
    """initial·multiplier^(n-1), capped at `cap`, plus up to `jitter`·wait of random extra.

    The jitter is added below the cap: the result never exceeds `cap`.
    """

    initial: float
    multiplier: float
    cap: float
    jitter: float

    def delay(self, attempt: int, previous: float, rng: random.Random) -> float:
        # Clamp the exponent so a huge attempt number cannot overflow a float.
        base = min(self.cap, self.initial * self.multiplier ** min(attempt - 1, 64))
        if self.jitter:
            base += rng.random() * self.jitter * base
        return min(base, self.cap)

    @property
    def maximum(self) -> float:
        return self.cap


@dataclass(frozen=True, slots=True)
class DecorrelatedJitter:
    """AWS's decorrelated jitter: uniform(base, 3·previous), capped; spreads retry storms."""

    base: float
    cap: float

    def delay(self, attempt: int, previous: float, rng: random.Random) -> float:
        high = max(self.base, previous * 3.0)
        return min(self.cap, rng.uniform(self.base, high))

    @property
    def maximum(self) -> float:
        return self.cap


def constant(seconds: float = 0.0) -> Constant:
    """Wait the same `seconds` between attempts."""
    return Constant(check_positive("constant(seconds)", seconds, allow_zero=True))


def exponential(
    *, initial: float = 0.1, multiplier: float = 2.0, cap: float = 10.0, jitter: float = 0.1
) -> Exponential:
    """Exponential growth from `initial`, capped at `cap` seconds, with proportional jitter."""
    initial = check_positive("exponential(initial)", initial, allow_zero=True)
    cap = check_positive("exponential(cap)", cap, allow_zero=True)
    multiplier = check_positive("exponential(multiplier)", multiplier)
    jitter = check_positive("exponential(jitter)", jitter, allow_zero=True)
    if multiplier < 1:
        raise InvalidInput("exponential(multiplier) must be >= 1")
    return Exponential(initial, multiplier, max(cap, initial), jitter)


def decorrelated(*, base: float = 0.1, cap: float = 10.0) -> DecorrelatedJitter:
    """Decorrelated jitter between `base` and `cap` seconds."""
    base = check_positive("decorrelated(base)", base)
    cap = check_positive("decorrelated(cap)", cap)
    return DecorrelatedJitter(base, max(cap, base))
