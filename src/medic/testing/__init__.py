"""Public helpers for testing code that uses medic (and for medic's own tests).

Product code never imports this package; import-linter enforces it.
"""

from medic.testing._clock import FakeClock
from medic.testing._store import temporary_tracker

__all__ = ["FakeClock", "temporary_tracker"]
