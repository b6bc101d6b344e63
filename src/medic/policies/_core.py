"""What every policy shares: errors, the `on=` matcher, event emission, the test mode.

Hot paths in the policies read plain attributes and call precomputed closures;
everything here runs only when something failed or a state changed.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol, Self

from medic.clock import Clock, system_clock
from medic.errors import EnvironmentFault, InvalidInput
from medic.events import PolicyEvent
from medic.policies import _metrics
from medic.taxonomy import Classification, Kind, classify

__all__ = [
    "BulkheadFull",
    "CircuitOpen",
    "Emitter",
    "Listener",
    "Matcher",
    "PolicyTimeout",
    "Publisher",
    "QueueFull",
    "RateLimited",
    "Rejected",
    "TestMode",
    "is_async",
    "monotonic_of",
    "positional_only",
    "test_mode",
]

Listener = Callable[[PolicyEvent], None]


class Publisher(Protocol):
    """Where events go besides listeners: a `medic.bus.Bus` (thread-safe, never blocks)."""

    def publish(self, event: object) -> None: ...


OnSpec = type[BaseException] | Kind | Iterable[type[BaseException] | Kind]


class Rejected(EnvironmentFault):
    """A policy refused the call before it ran; `retry_after` says when it may pass.

    No Python ``__init__``: refusing is a hot path (an open breaker fails fast),
    and the C constructor plus two attribute stores cost a third of a Python one.
    Build one with `make`.
    """

    reason = "rejected"
    policy = ""
    _retry_after: float | None = None

    @property
    def retry_after(self) -> float | None:
        return self._retry_after

    @classmethod
    def make(cls, message: str, *, policy: str, retry_after: float | None = None) -> Self:
        exc = cls(message)
        exc.policy = policy
        exc._retry_after = retry_after
        return exc


class CircuitOpen(Rejected):
    """The breaker is open (or its half-open trials are taken): the dependency is failing."""

    reason = "circuit-open"


class BulkheadFull(Rejected):
    """Every slot of the bulkhead is busy and the bounded wait ran out."""

    reason = "bulkhead-full"


class RateLimited(Rejected):
    """The rate limit for this key is used up; `retry_after` says when a token comes back."""

    reason = "rate-limited"


class QueueFull(Rejected):
    """The bounded queue is full and its policy is to refuse."""

    reason = "queue-full"


class PolicyTimeout(EnvironmentFault, TimeoutError):
    """A call ran past its timeout. Also a `TimeoutError`, so existing handlers keep working."""

    def __init__(self, message: str, *, policy: str, seconds: float) -> None:
        super().__init__(message)
        self.policy = policy
        self.seconds = seconds


class Matcher:
    """Which failures a policy acts on: exception types (always) or kinds (when retryable).

    Only `Exception` subclasses can be named: cancellation, KeyboardInterrupt and
    SystemExit are never retried, counted or swallowed.
    """

    __slots__ = ("kinds", "need_retryable", "types")

    def __init__(self, on: OnSpec, *, need_retryable: bool, what: str) -> None:
        items = (on,) if isinstance(on, type | Kind) else tuple(on)
        if not items:
            raise InvalidInput(f"{what}: on= names no exception type or kind")
        types: list[type[BaseException]] = []
        kinds: set[Kind] = set()
        for item in items:
            if isinstance(item, Kind):
                kinds.add(item)
            elif isinstance(item, type) and issubclass(item, Exception):
                types.append(item)
            elif isinstance(item, type) and issubclass(item, BaseException):
                raise InvalidInput(
                    f"{what}: on={item.__name__} is not allowed: cancellation, "
                    "KeyboardInterrupt and SystemExit always propagate"
                )
            else:
                raise InvalidInput(f"{what}: on= takes exception types or Kind, got {item!r}")
        self.types: tuple[type[BaseException], ...] = tuple(types)
        self.kinds = frozenset(kinds)
        self.need_retryable = need_retryable

    def match(self, exc: BaseException) -> Classification | None:
        """The failure's classification when this policy should act on it, else None."""
        if self.types and isinstance(exc, self.types):
            return classify(exc)
        if self.kinds:
            found = classify(exc)
            if found.kind in self.kinds and (found.retryable or not self.need_retryable):
                return found
        return None

    def __repr__(self) -> str:
        names = [t.__name__ for t in self.types] + sorted(str(k) for k in self.kinds)
        return "[" + ", ".join(names) + "]"


class Emitter:
    """Sends a policy's events to its listeners, an optional bus and Prometheus."""

    __slots__ = ("bus", "listeners", "metrics", "wants_events")

    def __init__(
        self, *, bus: Publisher | None, listeners: Iterable[Listener], metrics: bool = True
    ) -> None:
        self.bus = bus
        self.listeners = tuple(listeners)
        self.metrics = metrics
        # Whether anyone needs the event object; metrics alone only need its name.
        self.wants_events = bool(self.listeners) or bus is not None

    def count(self, policy: str, event_name: str) -> None:
        """Count an event nobody needs to see as an object (Prometheus only)."""
        if self.metrics:
            _metrics.count_name(policy, event_name)

    def emit(self, event: PolicyEvent) -> None:
        for listener in self.listeners:
            listener(event)
        if self.bus is not None:
            self.bus.publish(event)
        if self.metrics:
            _metrics.count(event)


class TestMode:
    """Process-wide switch used by `medic.testing.policy_test_mode`: no waits, capped attempts."""

    __slots__ = ("attempts", "no_waits")

    def __init__(self) -> None:
        self.no_waits = False
        self.attempts: int | None = None


test_mode = TestMode()


def is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - async callable objects
    )


def positional_only(fn: Callable[..., Any]) -> bool:
    """Whether no argument can reach `fn` by keyword, so a wrapper needs no `**kwargs`.

    The signature read is `fn`'s own, not the one `functools.wraps` copied from
    what it wraps: a wrapper may accept keywords that its wrapped function does not.
    Anything without a readable signature counts as taking keywords.
    """
    try:
        parameters = inspect.signature(fn, follow_wrapped=False).parameters.values()
    except (TypeError, ValueError):
        return False
    return all(p.kind in (p.POSITIONAL_ONLY, p.VAR_POSITIONAL) for p in parameters)


def monotonic_of(clock: Clock) -> Callable[[], float]:
    """The cheapest callable that reads `clock` (the C function for the system clock)."""
    return time.monotonic if clock is system_clock else clock.monotonic


def check_positive(what: str, value: float, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise InvalidInput(f"{what} must be a number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise InvalidInput(f"{what} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return float(value)
