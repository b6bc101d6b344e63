"""Backoff curves stay within their bounds for any attempt and any random stream."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medic.errors import InvalidInput
from medic.policies import constant, decorrelated, exponential

seconds = st.floats(min_value=0.0, max_value=1000.0, allow_nan=False)


@given(
    initial=seconds,
    cap=seconds,
    multiplier=st.floats(min_value=1.0, max_value=10.0),
    jitter=st.floats(min_value=0.0, max_value=1.0),
    attempt=st.integers(min_value=1, max_value=10_000),
    seed=st.integers(),
)
def test_exponential_within_bounds(
    initial: float, cap: float, multiplier: float, jitter: float, attempt: int, seed: int
) -> None:
    """0 <= wait <= cap, even for huge attempt numbers (no overflow)."""
    curve = exponential(initial=initial, multiplier=multiplier, cap=cap, jitter=jitter)
    wait = curve.delay(attempt, 0.0, random.Random(seed))
    assert 0.0 <= wait <= curve.maximum


@given(
    base=st.floats(min_value=0.001, max_value=100.0),
    cap=st.floats(min_value=0.001, max_value=1000.0),
    previous=seconds,
    seed=st.integers(),
)
def test_decorrelated_within_bounds(base: float, cap: float, previous: float, seed: int) -> None:
    """Decorrelated jitter stays within [min(base, cap), cap]."""
    curve = decorrelated(base=base, cap=cap)
    wait = curve.delay(3, previous, random.Random(seed))
    assert min(base, curve.maximum) <= wait <= curve.maximum


def test_constant_and_validation() -> None:
    """Constant is constant; negative, NaN and non-numbers are refused."""
    assert constant(0.25).delay(99, 5.0, random.Random()) == 0.25
    for bad in (-1, float("nan"), "1", True):
        with pytest.raises(InvalidInput):
            constant(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        exponential(multiplier=0.5)
