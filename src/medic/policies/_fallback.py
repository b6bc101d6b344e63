"""fallback and failover: answer from somewhere else when the call fails.

`fallback` answers with a value, a function of the error, or an answer per
failure kind. `failover` tries ordered alternatives, each behind its own
breaker, so an alternative that keeps failing is skipped until it recovers.
Neither ever catches cancellation, KeyboardInterrupt or SystemExit.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ParamSpec, TypeVar, cast

from medic.clock import Clock, system_clock
from medic.errors import InvalidInput, MedicInternalError
from medic.events import FallbackUsed
from medic.policies._breaker import CircuitBreaker
from medic.policies._core import (
    CircuitOpen,
    Emitter,
    Listener,
    Matcher,
    OnSpec,
    Publisher,
    is_async,
)
from medic.taxonomy import Kind

__all__ = ["Failover", "Fallback", "failover", "fallback"]

P = ParamSpec("P")
R = TypeVar("R")
_MISSING: Any = object()


class Fallback:
    """Answer for a failed call: `value`, `handler(error)`, or `per_kind[kind]`."""

    __slots__ = ("_emitter", "handler", "matcher", "name", "per_kind", "value")

    def __init__(
        self,
        *,
        value: Any = _MISSING,
        handler: Callable[[Exception], Any] | None = None,
        per_kind: Mapping[Kind, Any] | None = None,
        on: OnSpec = Exception,
        name: str = "fallback",
        bus: Publisher | None = None,
        listeners: tuple[Listener, ...] = (),
        metrics: bool = True,
    ) -> None:
        if value is not _MISSING and handler is not None:
            raise InvalidInput("fallback: give value= or handler=, not both")
        if value is _MISSING and handler is None and not per_kind:
            raise InvalidInput("fallback: give value=, handler= or per_kind=")
        self.value = value
        self.handler = handler
        self.per_kind = dict(per_kind or {})
        self.matcher = Matcher(on, need_retryable=False, what="fallback")
        self.name = name
        self._emitter = Emitter(bus=bus, listeners=listeners, metrics=metrics)

    def __repr__(self) -> str:
        what = "handler" if self.handler else "value" if self.value is not _MISSING else "per_kind"
        return f"fallback(name={self.name!r}, on={self.matcher!r}, {what})"

    def _answer(self, exc: Exception) -> Any:
        """The fallback answer (maybe awaitable), or re-raise when this failure is not ours."""
        found = self.matcher.match(exc)
        if found is None:
            raise exc
        if found.kind in self.per_kind:
            answer = self.per_kind[found.kind]
            answer = answer(exc) if callable(answer) else answer
        elif self.handler is not None:
            answer = self.handler(exc)
        elif self.value is not _MISSING:
            answer = self.value
        else:
            raise exc
        self._emitter.emit(FallbackUsed(self.name, type(exc).__qualname__, found.kind))
        return answer

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate `fn` (sync or async); an async fallback answer is awaited."""
        answer = self._answer
        handlers = [self.handler, *self.per_kind.values()]
        if not is_async(fn) and any(callable(h) and is_async(h) for h in handlers):
            raise InvalidInput(f"{self.name}: an async fallback cannot answer for a sync function")
        if is_async(fn):
            afn = cast(Callable[..., Awaitable[Any]], fn)

            @functools.wraps(fn)
            async def afallback(*args: Any, **kwargs: Any) -> Any:
                try:
                    return await afn(*args, **kwargs)
                except Exception as e:  # noqa: BLE001
                    exc = e
                result = answer(exc)
                return await result if inspect.isawaitable(result) else result

            return cast(Callable[P, R], afallback)

        @functools.wraps(fn)
        def with_fallback(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except Exception as e:  # noqa: BLE001
                exc = e
            return cast(R, answer(exc))

        return with_fallback

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self(fn)(*args, **kwargs)

    async def acall(self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        wrapped = cast(Callable[P, Awaitable[R]], self(fn))
        return await wrapped(*args, **kwargs)


def fallback(
    *,
    value: Any = _MISSING,
    handler: Callable[[Exception], Any] | None = None,
    per_kind: Mapping[Kind, Any] | None = None,
    on: OnSpec = Exception,
    name: str = "fallback",
    bus: Publisher | None = None,
    listeners: tuple[Listener, ...] = (),
    metrics: bool = True,
) -> Fallback:
    """Answer failed calls with a value, `handler(error)`, or per failure kind."""
    return Fallback(
        value=value,
        handler=handler,
        per_kind=per_kind,
        on=on,
        name=name,
        bus=bus,
        listeners=listeners,
        metrics=metrics,
    )


class Failover:
    """Ordered alternatives after the decorated function, each behind its own breaker."""

    __slots__ = (
        "alternatives",
        "bus",
        "clock",
        "failure_threshold",
        "listeners",
        "metrics",
        "name",
        "on",
        "reset_timeout",
    )

    def __init__(
        self,
        *alternatives: Callable[..., Any],
        on: OnSpec = Exception,
        failure_threshold: int = 3,
        reset_timeout: float = 30.0,
        name: str = "failover",
        clock: Clock = system_clock,
        bus: Publisher | None = None,
        listeners: tuple[Listener, ...] = (),
        metrics: bool = True,
    ) -> None:
        if not alternatives:
            raise InvalidInput("failover: name at least one alternative")
        Matcher(on, need_retryable=False, what="failover")  # validate early
        self.alternatives = alternatives
        self.on = on
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.name = name
        self.clock = clock
        self.bus = bus
        self.listeners = listeners
        self.metrics = metrics

    def __repr__(self) -> str:
        names = ", ".join(getattr(a, "__name__", repr(a)) for a in self.alternatives)
        return f"failover({names}, name={self.name!r})"

    def breakers_for(self, count: int) -> list[CircuitBreaker]:
        return [
            CircuitBreaker(
                name=f"{self.name}[{i}]",
                failure_threshold=self.failure_threshold,
                reset_timeout=self.reset_timeout,
                on=self.on,
                clock=self.clock,
                bus=self.bus,
                listeners=self.listeners,
                metrics=self.metrics,
            )
            for i in range(count)
        ]

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate the primary `fn`: it is tried first, then each alternative in order."""
        chain = (fn, *self.alternatives)
        if len({is_async(f) for f in chain}) > 1:
            raise InvalidInput(f"{self.name}: mix of sync and async alternatives")
        breakers = self.breakers_for(len(chain))
        guarded = [b(f) for b, f in zip(breakers, chain, strict=True)]
        matcher = Matcher(self.on, need_retryable=False, what="failover")
        if is_async(fn):

            @functools.wraps(fn)
            async def afailover(*args: Any, **kwargs: Any) -> Any:
                last: Exception | None = None
                for g in guarded:
                    try:
                        return await g(*args, **kwargs)
                    except CircuitOpen as exc:
                        last = (
                            last if last is not None and not isinstance(last, CircuitOpen) else exc
                        )
                    except Exception as exc:
                        if matcher.match(exc) is None:
                            raise
                        last = exc
                raise last or MedicInternalError("failover tried no alternative")

            afailover.breakers = breakers  # type: ignore[attr-defined]
            return cast(Callable[P, R], afailover)

        @functools.wraps(fn)
        def with_failover(*args: Any, **kwargs: Any) -> Any:
            last: Exception | None = None
            for g in guarded:
                try:
                    return g(*args, **kwargs)
                except CircuitOpen as exc:
                    last = last if last is not None and not isinstance(last, CircuitOpen) else exc
                except Exception as exc:
                    if matcher.match(exc) is None:
                        raise
                    last = exc
            raise last or MedicInternalError("failover tried no alternative")

        with_failover.breakers = breakers  # type: ignore[attr-defined]
        return cast(Callable[P, R], with_failover)


def failover(
    *alternatives: Callable[..., Any],
    on: OnSpec = Exception,
    failure_threshold: int = 3,
    reset_timeout: float = 30.0,
    name: str = "failover",
    clock: Clock = system_clock,
    bus: Publisher | None = None,
    listeners: tuple[Listener, ...] = (),
    metrics: bool = True,
) -> Failover:
    """Try the decorated function, then `alternatives` in order; skip those that keep failing."""
    return Failover(
        *alternatives,
        on=on,
        failure_threshold=failure_threshold,
        reset_timeout=reset_timeout,
        name=name,
        clock=clock,
        bus=bus,
        listeners=listeners,
        metrics=metrics,
    )
