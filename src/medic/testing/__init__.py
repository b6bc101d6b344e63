"""Public helpers for testing code that uses medic (and for medic's own tests).

Product code never imports this package; import-linter enforces it.
"""

from medic.testing._clock import FakeClock
from medic.testing._policies import EventCapture, capture_events, policy_test_mode
from medic.testing._store import temporary_tracker

__all__ = ["EventCapture", "FakeClock", "capture_events", "policy_test_mode", "temporary_tracker"]
