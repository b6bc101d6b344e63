"""Backoff stays within its bounds; a token bucket never lends more than its burst and rate allow."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medic.alerts import RateLimit, RetryPolicy
from medic.errors import ConfigError
from medic.testing import FakeClock


@settings(max_examples=300, deadline=None)
@given(
    initial=st.floats(0, 100),
    factor=st.floats(1, 10),
    max_delay=st.floats(0, 1000),
    jitter=st.floats(0, 1),
    retry=st.integers(1, 50),
    seed=st.integers(0, 2**32),
)
def test_backoff_stays_in_bounds(
    initial: float, factor: float, max_delay: float, jitter: float, retry: int, seed: int
) -> None:
    """Every wait is within [(1 - jitter) × base, base] and never above max_delay."""
    policy = RetryPolicy(
        attempts=5, initial=initial, factor=factor, max_delay=max_delay, jitter=jitter
    )
    base = min(initial * factor ** (retry - 1), max_delay)
    wait = policy.delay(retry, random.Random(seed))
    assert (1 - jitter) * base - 1e-9 <= wait <= base + 1e-9
    assert wait <= max_delay + 1e-9


@settings(max_examples=200, deadline=None)
@given(
    per_minute=st.floats(0.5, 600),
    burst=st.integers(1, 20),
    steps=st.lists(st.floats(0, 120), min_size=1, max_size=60),
)
def test_bucket_never_exceeds_burst_plus_refill(
    per_minute: float, burst: int, steps: list[float]
) -> None:
    """Over any schedule, granted tokens ≤ burst + rate × elapsed time."""
    clock = FakeClock()
    bucket = RateLimit(per_minute=per_minute, burst=burst).limiter(clock=clock)
    granted = 0
    for step in steps:
        clock.advance(step)
        granted += sum(bucket.acquire() for _ in range(burst + 2))
    assert granted <= burst + per_minute * sum(steps) / 60 + 1e-6


@pytest.mark.parametrize(
    "kwargs",
    [{"attempts": 0}, {"attempts": 21}, {"factor": 0.5}, {"initial": -1}, {"jitter": 1.5}],
)
def test_bad_retry_policy_is_refused(kwargs: dict[str, float]) -> None:
    """Retry settings out of range are a ConfigError."""
    with pytest.raises(ConfigError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("kwargs", [{"per_minute": 0}, {"burst": 0}])
def test_bad_rate_limit_is_refused(kwargs: dict[str, float]) -> None:
    """A rate limit that could never send is a ConfigError."""
    with pytest.raises(ConfigError):
        RateLimit(**kwargs)  # type: ignore[arg-type]
