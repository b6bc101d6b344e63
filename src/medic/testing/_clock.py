"""A clock that only moves when told to, so timer tests take no time."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

__all__ = ["FakeClock"]


class FakeClock:
    """A `medic.clock.Clock` whose time advances only through `advance()` or `sleep()`.

    `sleep()` advances time instantly instead of blocking; `asleep()` does the same
    and yields to the event loop once so other tasks can run.
    """

    def __init__(self, start: datetime | None = None, *, monotonic: float = 1000.0) -> None:
        self._lock = threading.Lock()
        self._wall = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._mono = monotonic
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def now(self) -> datetime:
        with self._lock:
            return self._wall

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds`."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        with self._lock:
            self._mono += seconds
            self._wall += timedelta(seconds=seconds)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds > 0:
            self.advance(seconds)

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"FakeClock(now={self._wall.isoformat()}, monotonic={self._mono})"
