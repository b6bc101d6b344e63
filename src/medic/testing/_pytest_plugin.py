"""The pytest plugin medic installs: fixtures for code that uses medic."""

from __future__ import annotations

import pytest

from medic.testing._clock import FakeClock


@pytest.fixture
def fake_clock() -> FakeClock:
    """A clock that moves only when the test says so."""
    return FakeClock()
