"""The public test helpers behave as documented."""

from __future__ import annotations

from typing import Any

from medic.events import Signal
from medic.testing import FakeClock


def test_medic_tracker_fixture_stamps_with_the_fake_clock(
    medic_tracker: Any, fake_clock: FakeClock
) -> None:
    """The pytest plugin's tracker uses the fake clock, so times are exact."""
    fake_clock.advance(42)
    result = medic_tracker.record(Signal("api", "boom"))
    incident = medic_tracker.incident(result.incident_id)
    assert incident.detected_at == fake_clock.now()


def test_fake_clock_sleep_advances_without_waiting() -> None:
    """sleep() moves time instantly and is recorded."""
    clock = FakeClock()
    before = clock.monotonic()
    clock.sleep(3600)
    assert clock.monotonic() - before == 3600
    assert clock.sleeps == [3600]
