"""The one source of time.

Every timer, backoff, probe and KPI takes a `Clock` so that tests can use a fake
clock instead of sleeping (see `medic.testing.FakeClock`). `monotonic()` measures
durations; `now()` stamps records in UTC; the two are never mixed.
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock", "parse_duration", "system_clock", "utcnow"]


@runtime_checkable
class Clock(Protocol):
    """What medic needs from time."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never goes backwards."""
        ...

    def now(self) -> datetime:
        """The current wall-clock time, timezone-aware UTC."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for `seconds`."""
        ...

    async def asleep(self, seconds: float) -> None:
        """Suspend the calling task for `seconds`."""
        ...


class SystemClock:
    """The real clock."""

    __slots__ = ()

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))

    def __repr__(self) -> str:
        return "SystemClock()"


system_clock = SystemClock()


def utcnow() -> datetime:
    """The current time in UTC, timezone-aware."""
    return datetime.now(UTC)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(value: str | float | int) -> timedelta:
    """Parse "250ms", "5s", "15m", "2h", "7d", "1w" or "1h30m"; a bare number is seconds.

    Raises ValueError naming the accepted forms, so callers can attach the key path.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '5s', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip().lower().replace(" ", "")
        pos, seconds = 0, 0.0
        for match in _DURATION.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            pos = match.end()
        if not text or pos != len(text):
            try:
                seconds = float(text)
            except ValueError:
                raise ValueError(
                    f"expected a duration like '250ms', '5s', '15m', '2h' or '7d', got {value!r}"
                ) from None
    if not 0 <= seconds < 10 * 365 * 86400 or seconds != seconds:
        raise ValueError(f"duration {value!r} is out of range (0 to 10 years)")
    return timedelta(seconds=seconds)
