"""Bulkhead: at most N calls at once, and a bounded wait (in time and in waiters) for a slot.

Slots are tokens in a `collections.deque`, whose `append` and `pop` are atomic
(documented thread-safe), so taking and returning a slot needs no lock: one
structure serves threads and event loops alike. A returned slot wakes the
oldest waiter; a waiter that finds the slot taken by a newcomer waits again
(until its own deadline), so the wait stays bounded even though it is not
strictly first come, first served.
"""

from __future__ import annotations

import _thread
import asyncio
import contextlib
import functools
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar, cast

from medic.errors import InvalidInput
from medic.events import CallRejected
from medic.policies._core import (
    BulkheadFull,
    Emitter,
    Listener,
    Publisher,
    check_positive,
    is_async,
)

__all__ = ["Bulkhead"]

P = ParamSpec("P")
R = TypeVar("R")


def _wake_future(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _poke(waiter: Any) -> None:
    if isinstance(waiter, tuple):
        loop, fut = waiter
        # A closed loop means its waiter is not waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_wake_future, fut)
    else:
        with contextlib.suppress(RuntimeError):  # already woken
            waiter.release()


class Bulkhead:
    """Limit concurrency to `max_concurrent`; wait at most `max_wait` seconds, with at most
    `max_waiting` callers waiting; otherwise raise `BulkheadFull`."""

    __slots__ = (
        "_emitter",
        "_tokens",
        "_waiters",
        "max_concurrent",
        "max_wait",
        "max_waiting",
        "name",
        "rejected",
    )

    def __init__(
        self,
        *,
        max_concurrent: int,
        max_wait: float = 0.0,
        max_waiting: int | None = None,
        name: str = "bulkhead",
        bus: Publisher | None = None,
        listeners: tuple[Listener, ...] = (),
        metrics: bool = True,
    ) -> None:
        if (
            isinstance(max_concurrent, bool)
            or not isinstance(max_concurrent, int)
            or not 1 <= max_concurrent <= 1_000_000
        ):
            raise InvalidInput(
                f"Bulkhead: max_concurrent must be an int in 1..1000000, got {max_concurrent!r}"
            )
        self.max_concurrent = max_concurrent
        self.max_wait = check_positive("Bulkhead: max_wait", max_wait, allow_zero=True)
        self.max_waiting = max_concurrent if max_waiting is None else max_waiting
        if self.max_waiting < 0:
            raise InvalidInput("Bulkhead: max_waiting must be >= 0")
        self.name = name
        self._emitter = Emitter(bus=bus, listeners=listeners, metrics=metrics)
        self._tokens: deque[None] = deque([None] * max_concurrent)
        self._waiters: deque[Any] = deque()
        self.rejected = 0

    @property
    def active(self) -> int:
        """Calls running now."""
        return self.max_concurrent - len(self._tokens)

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def __repr__(self) -> str:
        return (
            f"Bulkhead(name={self.name!r}, active={self.active}/{self.max_concurrent}, "
            f"waiting={len(self._waiters)}/{self.max_waiting}, max_wait={self.max_wait})"
        )

    def _full(self) -> BulkheadFull:
        self.rejected += 1
        self._emitter.emit(CallRejected(self.name, "bulkhead-full"))
        return BulkheadFull.make(
            f"bulkhead {self.name!r}: {self.max_concurrent} calls already running",
            policy=self.name,
        )

    def release(self) -> None:
        """Give a slot back and wake the oldest waiter."""
        self._tokens.append(None)
        if self._waiters:
            try:
                waiter = self._waiters.popleft()
            except IndexError:
                return
            _poke(waiter)

    def _leave(self, entry: Any) -> None:
        """A waiter gives up: if it had been woken, pass the wake-up on."""
        try:
            self._waiters.remove(entry)
        except ValueError:
            if self._tokens and self._waiters:
                with contextlib.suppress(IndexError):
                    _poke(self._waiters.popleft())

    def acquire(self) -> None:
        """Take a slot, waiting up to `max_wait`; raises BulkheadFull otherwise."""
        tokens = self._tokens
        try:
            tokens.pop()
            return
        except IndexError:
            pass
        if self.max_wait <= 0 or len(self._waiters) >= self.max_waiting:
            raise self._full()
        deadline = time.monotonic() + self.max_wait
        while True:
            waiter = _thread.allocate_lock()
            waiter.acquire()
            self._waiters.append(waiter)
            try:
                try:
                    tokens.pop()
                    return
                except IndexError:
                    pass
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not waiter.acquire(timeout=remaining):
                    raise self._full()
            finally:
                self._leave(waiter)

    async def aacquire(self) -> None:
        """Take a slot from a task, waiting up to `max_wait`; raises BulkheadFull otherwise."""
        tokens = self._tokens
        try:
            tokens.pop()
            return
        except IndexError:
            pass
        if self.max_wait <= 0 or len(self._waiters) >= self.max_waiting:
            raise self._full()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while True:
            fut: asyncio.Future[None] = loop.create_future()
            entry = (loop, fut)
            self._waiters.append(entry)
            try:
                try:
                    tokens.pop()
                    return
                except IndexError:
                    pass
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise self._full()
                await asyncio.wait((fut,), timeout=remaining)
                if not fut.done():
                    raise self._full()
            finally:
                self._leave(entry)

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate `fn` (sync or async)."""
        release, take = self.release, self._tokens.pop
        if is_async(fn):
            afn = cast(Callable[..., Awaitable[Any]], fn)
            aacquire = self.aacquire

            @functools.wraps(fn)
            async def abulkhead(*args: Any, **kwargs: Any) -> Any:
                try:
                    take()
                except IndexError:
                    await aacquire()
                try:
                    return await afn(*args, **kwargs)
                finally:
                    release()

            return cast(Callable[P, R], abulkhead)
        acquire = self.acquire

        @functools.wraps(fn)
        def bulkhead(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                take()
            except IndexError:
                acquire()
            try:
                return fn(*args, **kwargs)
            finally:
                release()

        return bulkhead

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self(fn)(*args, **kwargs)

    async def acall(self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        wrapped = cast(Callable[P, Awaitable[R]], self(fn))
        return await wrapped(*args, **kwargs)
