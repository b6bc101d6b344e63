"""Policy test mode and event capture: test retry logic without waiting, and see what happened."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from medic.bus import Bus
from medic.policies._core import test_mode

__all__ = ["EventCapture", "capture_events", "policy_test_mode"]

E = TypeVar("E")


@contextmanager
def policy_test_mode(*, attempts: int | None = None) -> Iterator[None]:
    """Within the block, retries never wait and (if given) stop after `attempts` attempts.

    Process-wide, like stamina's testing mode: meant for test suites, not for
    production code paths. Waits are still computed and reported in events.
    """
    if attempts is not None and attempts < 1:
        raise ValueError("attempts must be >= 1")
    saved = (test_mode.no_waits, test_mode.attempts)
    test_mode.no_waits, test_mode.attempts = True, attempts
    try:
        yield
    finally:
        test_mode.no_waits, test_mode.attempts = saved


class EventCapture:
    """A bounded recorder of events: pass it as a policy listener or attach it to a bus."""

    def __init__(self, *, maxsize: int = 10_000) -> None:
        self._events: deque[Any] = deque(maxlen=maxsize)
        self._undo: list[Any] = []

    def __call__(self, event: Any) -> None:
        self._events.append(event)

    @property
    def events(self) -> list[Any]:
        return list(self._events)

    def of_type(self, cls: type[E]) -> list[E]:
        """The captured events that are instances of `cls`, oldest first."""
        return [e for e in self._events if isinstance(e, cls)]

    def names(self) -> list[str]:
        """The captured events' type names, oldest first (handy in assertions)."""
        return [type(e).__name__ for e in self._events]

    def clear(self) -> None:
        self._events.clear()

    def attach(self, bus: Bus) -> EventCapture:
        """Also record everything published on `bus` (until `detach`)."""
        self._undo.append(bus.listen(self))
        return self

    def detach(self) -> None:
        while self._undo:
            self._undo.pop()()

    def __len__(self) -> int:
        return len(self._events)

    def __repr__(self) -> str:
        return f"EventCapture({len(self._events)} events)"


@contextmanager
def capture_events(bus: Bus | None = None, *, maxsize: int = 10_000) -> Iterator[EventCapture]:
    """An `EventCapture` for the block, attached to `bus` when one is given."""
    capture = EventCapture(maxsize=maxsize)
    if bus is not None:
        capture.attach(bus)
    try:
        yield capture
    finally:
        capture.detach()
