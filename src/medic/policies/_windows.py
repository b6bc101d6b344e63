"""Sliding windows of call outcomes for the breaker: O(1) per call, bounded memory.

An outcome is a code: bit 0 = failed, bit 1 = slow. Callers hold the breaker's
lock; the windows themselves are not thread-safe.
"""

from __future__ import annotations

__all__ = ["CountWindow", "TimeWindow", "Window"]

FAILED = 1
SLOW = 2


class CountWindow:
    """The last `size` calls, in a ring."""

    __slots__ = ("_i", "_ring", "calls", "failures", "size", "slow")

    def __init__(self, size: int) -> None:
        self.size = size
        self._ring = bytearray(size)
        self._i = 0
        self.calls = 0
        self.failures = 0
        self.slow = 0

    def add(self, code: int, now: float) -> None:
        i = self._i
        if self.calls == self.size:
            old = self._ring[i]
            self.failures -= old & FAILED
            self.slow -= old >> 1
        else:
            self.calls += 1
        self._ring[i] = code
        self.failures += code & FAILED
        self.slow += code >> 1
        self._i = i + 1 if i + 1 < self.size else 0

    def totals(self, now: float) -> tuple[int, int, int]:
        return self.calls, self.failures, self.slow

    def reset(self) -> None:
        self._ring = bytearray(self.size)
        self._i = self.calls = self.failures = self.slow = 0

    def __repr__(self) -> str:
        return f"CountWindow(size={self.size})"


class TimeWindow:
    """The calls of the last `seconds`, in `buckets` slices; slices age out as time passes."""

    __slots__ = (
        "_calls",
        "_fail",
        "_last",
        "_slow",
        "buckets",
        "calls",
        "failures",
        "seconds",
        "slow",
        "width",
    )

    def __init__(self, seconds: float, buckets: int = 10) -> None:
        self.seconds = seconds
        self.buckets = buckets
        self.width = seconds / buckets
        self._calls = [0] * buckets
        self._fail = [0] * buckets
        self._slow = [0] * buckets
        self._last = -1
        self.calls = self.failures = self.slow = 0

    def _advance(self, now: float) -> int:
        epoch = int(now / self.width)
        last = self._last
        if epoch != last:
            # Clear the slices skipped since the last call: at most `buckets` of them.
            first = max(last + 1, epoch - self.buckets + 1)
            for e in range(first, epoch + 1):
                b = e % self.buckets
                self.calls -= self._calls[b]
                self.failures -= self._fail[b]
                self.slow -= self._slow[b]
                self._calls[b] = self._fail[b] = self._slow[b] = 0
            self._last = max(epoch, last)
        return epoch % self.buckets

    def add(self, code: int, now: float) -> None:
        b = self._advance(now)
        self._calls[b] += 1
        self._fail[b] += code & FAILED
        self._slow[b] += code >> 1
        self.calls += 1
        self.failures += code & FAILED
        self.slow += code >> 1

    def totals(self, now: float) -> tuple[int, int, int]:
        self._advance(now)
        return self.calls, self.failures, self.slow

    def reset(self) -> None:
        for lst in (self._calls, self._fail, self._slow):
            lst[:] = [0] * self.buckets
        self.calls = self.failures = self.slow = 0

    def __repr__(self) -> str:
        return f"TimeWindow(seconds={self.seconds}, buckets={self.buckets})"


Window = CountWindow | TimeWindow
