"""BoundedQueue: a queue that never grows past `maxsize`, with the overflow chosen up front.

``block`` makes producers wait (up to `put_timeout`, then `QueueFull`): real
back-pressure. ``drop-newest`` refuses the new item, ``drop-oldest`` evicts the
oldest; both count what they dropped. Works from threads (`put`/`get`) and from
asyncio tasks (`aput`/`aget`), on the same queue.
"""

from __future__ import annotations

import asyncio
import enum
import threading
from collections import deque
from typing import Generic, TypeVar

from medic.errors import InvalidInput
from medic.events import CallRejected
from medic.policies._core import Emitter, Listener, Publisher, QueueFull, check_positive

__all__ = ["BoundedQueue", "QueueOverflow"]

T = TypeVar("T")


class QueueOverflow(enum.StrEnum):
    BLOCK = "block"
    DROP_NEWEST = "drop-newest"
    DROP_OLDEST = "drop-oldest"


class BoundedQueue(Generic[T]):
    """A FIFO of at most `maxsize` items with counters: put, got, dropped, rejected."""

    def __init__(
        self,
        *,
        maxsize: int,
        overflow: QueueOverflow | str = QueueOverflow.BLOCK,
        put_timeout: float = 5.0,
        name: str = "queue",
        bus: Publisher | None = None,
        listeners: tuple[Listener, ...] = (),
        metrics: bool = True,
    ) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise InvalidInput(f"BoundedQueue: maxsize must be an int >= 1, got {maxsize!r}")
        try:
            self.overflow = QueueOverflow(overflow)
        except ValueError:
            raise InvalidInput(
                f"BoundedQueue: overflow must be block, drop-newest or drop-oldest, got {overflow!r}"
            ) from None
        self.maxsize = maxsize
        self.put_timeout = check_positive("BoundedQueue: put_timeout", put_timeout, allow_zero=True)
        self.name = name
        self._emitter = Emitter(bus=bus, listeners=listeners, metrics=metrics)
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self.put_count = 0
        self.got_count = 0
        self.dropped = 0
        self.rejected = 0

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return (
            f"BoundedQueue(name={self.name!r}, {len(self._items)}/{self.maxsize}, "
            f"overflow={self.overflow.value}, dropped={self.dropped}, rejected={self.rejected})"
        )

    def _wake_async(self) -> None:
        """Wake every async waiter (caller holds the condition); they re-check and re-wait."""
        waiters, self._async_waiters = self._async_waiters, []
        for loop, fut in waiters:
            loop.call_soon_threadsafe(_wake, fut)

    def _offer(self, item: T) -> bool | None:
        """Add without waiting: True added, False dropped, None full (block policy)."""
        if len(self._items) < self.maxsize:
            self._items.append(item)
        elif self.overflow is QueueOverflow.DROP_NEWEST:
            self.dropped += 1
            return False
        elif self.overflow is QueueOverflow.DROP_OLDEST:
            self._items.popleft()
            self._items.append(item)
            self.dropped += 1
        else:
            return None
        self.put_count += 1
        self._cond.notify_all()
        self._wake_async()
        return True

    def _full(self) -> QueueFull:
        self.rejected += 1
        self._emitter.emit(CallRejected(self.name, "queue-full"))
        return QueueFull.make(
            f"queue {self.name!r} stayed full for {self.put_timeout}s", policy=self.name
        )

    def put(self, item: T, *, timeout: float | None = None) -> bool:
        """Add `item`; False when the overflow policy dropped it; QueueFull when blocking timed out."""
        wait = self.put_timeout if timeout is None else timeout
        with self._cond:
            added = self._offer(item)
            if added is not None:
                return added
            if not self._cond.wait_for(lambda: len(self._items) < self.maxsize, wait):
                raise self._full()
            return bool(self._offer(item))

    def get(self, *, timeout: float | None = None) -> T:
        """Take the oldest item, waiting up to `timeout` seconds (None: forever)."""
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self._items), timeout):
                raise TimeoutError(f"queue {self.name!r} stayed empty")
            return self._take()

    def _take(self) -> T:
        item = self._items.popleft()
        self.got_count += 1
        self._cond.notify_all()
        self._wake_async()
        return item

    async def _wait_change(self, deadline: float | None) -> bool:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._async_waiters.append((loop, fut))
        remaining = None if deadline is None else deadline - loop.time()
        if remaining is not None and remaining <= 0:
            return False
        self._cond.release()
        try:
            await asyncio.wait((fut,), timeout=remaining)
        finally:
            self._cond.acquire()
        return True

    async def aput(self, item: T, *, timeout: float | None = None) -> bool:
        """`put` for tasks: waits on the event loop, not in a thread."""
        wait = self.put_timeout if timeout is None else timeout
        deadline = asyncio.get_running_loop().time() + wait
        with self._cond:
            while True:
                added = self._offer(item)
                if added is not None:
                    return added
                if not await self._wait_change(deadline):
                    raise self._full()

    async def aget(self, *, timeout: float | None = None) -> T:
        """`get` for tasks."""
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        with self._cond:
            while not self._items:
                if not await self._wait_change(deadline):
                    raise TimeoutError(f"queue {self.name!r} stayed empty")
            return self._take()


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
