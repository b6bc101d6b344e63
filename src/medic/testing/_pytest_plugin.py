"""The pytest plugin medic installs: fixtures for code that uses medic."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from medic.testing._clock import FakeClock
from medic.testing._policies import EventCapture, policy_test_mode
from medic.testing._store import temporary_tracker


@pytest.fixture
def fake_clock() -> FakeClock:
    """A clock that moves only when the test says so."""
    return FakeClock()


@pytest.fixture
def medic_tracker(fake_clock: FakeClock) -> Iterator[Any]:
    """A Tracker on a fresh SQLite store whose timestamps come from `fake_clock`."""
    with temporary_tracker(clock=fake_clock) as tracker:
        yield tracker


@pytest.fixture
def no_policy_waits() -> Iterator[None]:
    """Retries in this test never wait (see `medic.testing.policy_test_mode`)."""
    with policy_test_mode():
        yield


@pytest.fixture
def policy_events() -> EventCapture:
    """A bounded event recorder to pass as a policy's listener."""
    return EventCapture()
