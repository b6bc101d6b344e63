"""Backoff stays in bounds, the crash-loop window counts right, and states move only as allowed."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medic.errors import IllegalTransition
from medic.supervisor import (
    ALLOWED,
    Backoff,
    CrashLoopLimit,
    CrashLoopWindow,
    ProcessState,
    RestartPolicy,
    check_transition,
)


@given(
    initial=st.floats(0, 10),
    factor=st.floats(1, 5),
    cap=st.floats(0, 100),
    jitter=st.floats(0, 0.99),
    failures=st.integers(0, 10_000),
    seed=st.integers(0, 2**32),
)
def test_backoff_delay_stays_within_zero_and_the_jittered_cap(
    initial: float, factor: float, cap: float, jitter: float, failures: int, seed: int
) -> None:
    """Whatever the failure count, a delay is never negative nor above max × (1 + jitter)."""
    backoff = Backoff(initial=initial, factor=factor, max=cap, jitter=jitter)
    delay = backoff.delay(failures, rng=random.Random(seed))
    assert 0 <= delay <= cap * (1 + jitter) + 1e-9


def test_backoff_is_immediate_first_then_exponential_to_the_cap() -> None:
    """The first restart waits nothing; then initial, ×factor each time, capped at max."""
    backoff = Backoff(initial=0.25, factor=2, max=1, jitter=0)
    rng = random.Random(1)
    assert [backoff.delay(n, rng=rng) for n in range(1, 7)] == [0, 0.25, 0.5, 1, 1, 1]


def test_backoff_jitter_is_reproducible_with_a_seed() -> None:
    """The same seed gives the same jittered delays (randomness is injected)."""
    backoff = Backoff(initial=1, factor=2, max=30, jitter=0.2)
    first = [backoff.delay(n, rng=random.Random(7)) for n in range(2, 8)]
    second = [backoff.delay(n, rng=random.Random(7)) for n in range(2, 8)]
    assert first == second
    assert all(
        0.8 * 2 ** (n - 2) <= d <= 1.2 * 2 ** (n - 2)
        for n, d in zip(range(2, 8), first, strict=True)
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"factor": 0.5}, "factor"),
        ({"jitter": 1.0}, "jitter"),
        ({"initial": -1}, "negative"),
    ],
)
def test_backoff_rejects_nonsense(kwargs: dict[str, float], message: str) -> None:
    """A factor below 1, jitter of 100 % or negative durations are refused."""
    with pytest.raises(ValueError, match=message):
        Backoff(**kwargs)


def test_crash_loop_window_trips_past_the_limit_and_forgets_old_restarts() -> None:
    """More than max_restarts within the window trips; restarts older than `within` do not count."""
    window = CrashLoopWindow(CrashLoopLimit(max_restarts=3, within=10, cooldown=5))
    assert [window.add(t) for t in (0, 1, 2)] == [False, False, False]
    assert window.add(3) is True
    window.clear()
    assert [window.add(t) for t in (100, 111, 122, 133)] == [False] * 4


@pytest.mark.parametrize(
    ("policy", "code", "sig", "expected"),
    [
        (RestartPolicy.ALWAYS, 0, None, True),
        (RestartPolicy.ON_FAILURE, 0, None, False),
        (RestartPolicy.ON_FAILURE, 1, None, True),
        (RestartPolicy.ON_FAILURE, None, 9, True),
        (RestartPolicy.NEVER, 1, None, False),
    ],
)
def test_restart_policy_decides_by_exit(
    policy: RestartPolicy, code: int | None, sig: int | None, expected: bool
) -> None:
    """always restarts everything, on-failure skips clean exits, never restarts nothing."""
    assert policy.wants_restart(returncode=code, signal=sig) is expected


def test_every_state_pair_outside_allowed_is_illegal() -> None:
    """check_transition accepts exactly the ALLOWED table and raises IllegalTransition otherwise."""
    for current in ProcessState:
        for target in ProcessState:
            if target in ALLOWED[current]:
                check_transition("svc", current, target)
            else:
                with pytest.raises(IllegalTransition):
                    check_transition("svc", current, target)
