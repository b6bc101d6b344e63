"""The in-process event bus: capabilities meet here instead of importing each other.

Publishing never blocks the publisher by default: each subscription has its own
bounded buffer and an overflow policy, and counts what it dropped, so a slow
consumer costs memory it was allowed and nothing more. Async producers that
prefer to wait for room use `apublish`, which is real back-pressure.

`publish` is safe from any thread; async subscribers are woken on their own loop.
"""

from __future__ import annotations

import asyncio
import enum
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

__all__ = ["Bus", "Overflow", "Subscription"]


class Overflow(enum.StrEnum):
    """What a full subscription does with one more event."""

    DROP_OLDEST = "drop-oldest"
    DROP_NEWEST = "drop-newest"


class Subscription:
    """A bounded buffer of the events one consumer asked for.

    Iterate it with ``async for`` on an event loop, or call `get()` from a thread.
    """

    def __init__(
        self,
        bus: Bus,
        types: tuple[type, ...],
        *,
        maxsize: int,
        overflow: Overflow,
        predicate: Callable[[Any], bool] | None,
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._bus = bus
        self.types = types
        self.maxsize = maxsize
        self.overflow = overflow
        self._predicate = predicate
        self._items: deque[Any] = deque()
        self._cond = threading.Condition()
        self._waiter: asyncio.Future[None] | None = None
        self._waiter_loop: asyncio.AbstractEventLoop | None = None
        self._space_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self.dropped = 0
        self.delivered = 0
        self.closed = False

    def wants(self, event: object) -> bool:
        if self.types and not isinstance(event, self.types):
            return False
        return self._predicate is None or self._predicate(event)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def full(self) -> bool:
        return len(self._items) >= self.maxsize

    def _offer(self, event: object) -> None:
        with self._cond:
            if self.closed:
                return
            if len(self._items) >= self.maxsize:
                self.dropped += 1
                if self.overflow is Overflow.DROP_NEWEST:
                    return
                self._items.popleft()
            self._items.append(event)
            self._cond.notify()
            waiter, loop = self._waiter, self._waiter_loop
            self._waiter = None
        if waiter is not None and loop is not None:
            loop.call_soon_threadsafe(_wake, waiter)

    def get(self, timeout: float | None = None) -> Any:
        """Take the next event from a thread; raises TimeoutError when none came in time."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._items or self.closed, timeout):
                raise TimeoutError("no event arrived in time")
            if not self._items:
                raise StopIteration
            return self._take()

    def _take(self) -> Any:
        item = self._items.popleft()
        self.delivered += 1
        if self._space_waiters:
            waiters, self._space_waiters = self._space_waiters, []
            for loop, fut in waiters:
                loop.call_soon_threadsafe(_wake, fut)
        return item

    def drain(self) -> list[Any]:
        """Take every buffered event at once, without waiting."""
        with self._cond:
            items = []
            while self._items:
                items.append(self._take())
            return items

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        while True:
            with self._cond:
                if self._items:
                    return self._take()
                if self.closed:
                    raise StopAsyncIteration
                loop = asyncio.get_running_loop()
                waiter: asyncio.Future[None] = loop.create_future()
                self._waiter, self._waiter_loop = waiter, loop
            await waiter

    async def _wait_for_space(self) -> None:
        while True:
            with self._cond:
                if len(self._items) < self.maxsize or self.closed:
                    return
                loop = asyncio.get_running_loop()
                fut: asyncio.Future[None] = loop.create_future()
                self._space_waiters.append((loop, fut))
            await fut

    def close(self) -> None:
        """Stop receiving; a consumer iterating ends after the buffered events."""
        self._bus._unsubscribe(self)
        with self._cond:
            self.closed = True
            self._cond.notify_all()
            waiter, loop = self._waiter, self._waiter_loop
            self._waiter = None
        if waiter is not None and loop is not None:
            loop.call_soon_threadsafe(_wake, waiter)

    def __repr__(self) -> str:
        names = ",".join(t.__name__ for t in self.types) or "*"
        return f"<Subscription {names} {len(self._items)}/{self.maxsize} dropped={self.dropped}>"


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class Bus:
    """Fan-out of immutable events to bounded subscriptions, by event type."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: tuple[Subscription, ...] = ()
        self._listeners: tuple[Callable[[Any], None], ...] = ()
        self.published = 0

    def subscribe(
        self,
        *types: type,
        maxsize: int = 10_000,
        overflow: Overflow | str = Overflow.DROP_OLDEST,
        where: Callable[[Any], bool] | None = None,
    ) -> Subscription:
        """Receive events that are instances of `types` (all events when none are given)."""
        sub = Subscription(
            self, types, maxsize=maxsize, overflow=Overflow(overflow), predicate=where
        )
        with self._lock:
            self._subs = (*self._subs, sub)
        return sub

    def listen(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        """Call `callback(event)` synchronously in the publisher's thread; returns an undo.

        For cheap, non-blocking observers (counters, metrics). A listener that
        raises is removed rather than allowed to break publishers.
        """
        with self._lock:
            self._listeners = (*self._listeners, callback)

        def remove() -> None:
            with self._lock:
                self._listeners = tuple(cb for cb in self._listeners if cb is not callback)

        return remove

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs = tuple(s for s in self._subs if s is not sub)

    def publish(self, event: object) -> None:
        """Deliver `event` to every interested subscription; never blocks."""
        self.published += 1
        for sub in self._subs:
            if sub.wants(event):
                sub._offer(event)
        for callback in self._listeners:
            try:
                callback(event)
            except Exception:  # noqa: BLE001 - a broken observer must not break the publisher
                with self._lock:
                    self._listeners = tuple(cb for cb in self._listeners if cb is not callback)

    async def apublish(self, event: object) -> None:
        """Publish, first waiting until every interested subscription has room."""
        for sub in self._subs:
            if sub.wants(event):
                await sub._wait_for_space()
        self.publish(event)
