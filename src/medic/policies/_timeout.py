"""timeout: bound how long a call may take.

Async calls are cancelled through the event loop (`asyncio.timeout`), so the
awaited work really stops at its next await. A sync call cannot be interrupted
in Python: it runs in a worker thread, the caller stops waiting at the deadline
and gets `PolicyTimeout`, and the call keeps running in its thread until it
returns on its own (its result is then discarded). Give sync work its own
timeouts too (socket timeouts, statement timeouts) so abandoned calls end.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar, cast

from medic.events import CallTimedOut
from medic.policies._core import (
    Emitter,
    Listener,
    PolicyTimeout,
    Publisher,
    check_positive,
    is_async,
)

__all__ = ["Timeout", "timeout"]

P = ParamSpec("P")
R = TypeVar("R")

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _shared_pool() -> ThreadPoolExecutor:
    """One bounded pool for every sync timeout in the process, created on first use."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=min(32, (os.cpu_count() or 1) + 4), thread_name_prefix="medic-timeout"
            )
        return _pool


def _fire(task: asyncio.Task[Any], fired: list[bool]) -> None:
    fired.append(True)
    task.cancel()


class Timeout:
    """An immutable timeout policy of `seconds`."""

    __slots__ = ("_emitter", "executor", "name", "seconds")

    def __init__(
        self,
        seconds: float,
        *,
        name: str = "timeout",
        executor: Executor | None = None,
        bus: Publisher | None = None,
        listeners: tuple[Listener, ...] = (),
        metrics: bool = True,
    ) -> None:
        self.seconds = check_positive("timeout(seconds)", seconds)
        self.name = name
        self.executor = executor
        self._emitter = Emitter(bus=bus, listeners=listeners, metrics=metrics)

    def __repr__(self) -> str:
        return f"timeout({self.seconds}, name={self.name!r})"

    def _expired(self) -> PolicyTimeout:
        self._emitter.emit(CallTimedOut(self.name, self.seconds))
        return PolicyTimeout(
            f"{self.name}: no answer within {self.seconds}s", policy=self.name, seconds=self.seconds
        )

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate `fn` (sync or async)."""
        if is_async(fn):
            return cast(Callable[P, R], self._wrap_async(cast(Callable[..., Awaitable[Any]], fn)))
        seconds, expired, executor = self.seconds, self._expired, self.executor

        @functools.wraps(fn)
        def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            pool = executor or _shared_pool()
            context = contextvars.copy_context()
            future = pool.submit(functools.partial(context.run, fn, *args, **kwargs))
            try:
                return future.result(timeout=seconds)
            except TimeoutError as exc:
                if future.done():
                    raise  # the call's own TimeoutError
                future.cancel()
                raise expired() from exc

        return timed

    def _wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        # asyncio.timeout's protocol (cancel the task, then `uncancel` to tell our
        # cancellation from anyone else's) without its context-manager object and
        # state enum: one timer handle per call, about half the cost.
        seconds, expired = self.seconds, self._expired

        @functools.wraps(fn)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            loop = asyncio.get_running_loop()
            task = asyncio.current_task()
            if task is None:
                raise RuntimeError("timeout() needs to run inside an asyncio task")
            cancelling = task.cancelling()
            fired: list[bool] = []
            handle = loop.call_at(loop.time() + seconds, _fire, task, fired)
            try:
                result = await fn(*args, **kwargs)
            except asyncio.CancelledError as exc:
                handle.cancel()
                if fired and task.uncancel() <= cancelling:
                    raise expired() from exc
                raise
            except BaseException:
                handle.cancel()
                if fired:
                    task.uncancel()
                raise
            handle.cancel()
            if fired:
                task.uncancel()
            return result

        return timed

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run `fn(*args, **kwargs)` with this timeout (sync, in a worker thread)."""
        return self(fn)(*args, **kwargs)

    async def acall(self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Await `fn(*args, **kwargs)` with this timeout."""
        wrapped = cast(Callable[P, Awaitable[R]], self._wrap_async(fn))
        return await wrapped(*args, **kwargs)


def timeout(
    seconds: float,
    *,
    name: str = "timeout",
    executor: Executor | None = None,
    bus: Publisher | None = None,
    listeners: tuple[Listener, ...] = (),
    metrics: bool = True,
) -> Timeout:
    """Give up on a call after `seconds` (async: cancel it; sync: stop waiting for it)."""
    return Timeout(
        seconds, name=name, executor=executor, bus=bus, listeners=listeners, metrics=metrics
    )
