"""The pytest plugin medic installs: fixtures for code that uses medic."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from medic.testing._clock import FakeClock
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
