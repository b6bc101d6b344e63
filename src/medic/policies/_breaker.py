"""CircuitBreaker: stop calling a dependency that keeps failing, and test it before trusting it.

States follow an explicit table: closed → open (trip), open → half-open (the
open period ended), half-open → closed (M trial successes) or → open (a trial
failed). No other move exists, so open never becomes closed without trials.

The lock guards only the bookkeeping, never the protected call: threads and
tasks run through a closed breaker in parallel. In the closed state with only a
consecutive-failure threshold, a success touches no lock at all. Each transition
starts a new generation; outcomes of calls admitted under an older generation
are ignored, so a slow call that started before the breaker opened cannot
close it.
"""

from __future__ import annotations

import enum
import functools
import itertools
import threading
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar, cast

from medic.clock import Clock, system_clock
from medic.errors import IllegalTransition, InvalidInput
from medic.events import (
    CallRejected,
    CircuitClosed,
    CircuitHalfOpened,
    CircuitOpened,
    PolicyEvent,
)
from medic.policies._core import (
    CircuitOpen,
    Emitter,
    Listener,
    Matcher,
    OnSpec,
    Publisher,
    check_positive,
    is_async,
    monotonic_of,
    positional_only,
)
from medic.policies._windows import FAILED, SLOW, CountWindow, TimeWindow, Window

__all__ = ["ALLOWED", "BreakerState", "CircuitBreaker"]

P = ParamSpec("P")
R = TypeVar("R")


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


_C, _O, _H = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN

ALLOWED: dict[BreakerState, frozenset[BreakerState]] = {
    _C: frozenset({_O}),
    _O: frozenset({_H}),
    _H: frozenset({_O, _C}),
}


def _rebuild(message: str, policy: str, retry_after: float | None) -> CircuitOpen:
    return CircuitOpen.make(message, policy=policy, retry_after=retry_after)


def _open_error_class(breaker: CircuitBreaker) -> type[CircuitOpen]:
    """A CircuitOpen subclass bound to one breaker, so that failing fast builds the
    exception with the C constructor only: `policy` is a class attribute and
    `retry_after` reads the breaker (the remaining open time, when asked).
    Setting two attributes on a fresh exception would cost more than raising it.
    """
    mono = breaker._mono

    def retry_after(exc: CircuitOpen) -> float | None:
        return max(0.0, breaker._open_until - mono())

    def reduce(exc: CircuitOpen) -> tuple[Any, ...]:
        return _rebuild, (str(exc), exc.policy, exc.retry_after)

    namespace = {
        "__module__": CircuitOpen.__module__,
        "__qualname__": CircuitOpen.__qualname__,
        "policy": breaker.name,
        "retry_after": property(retry_after),
        "__reduce__": reduce,
    }
    return cast(type[CircuitOpen], type("CircuitOpen", (CircuitOpen,), namespace))


class CircuitBreaker:
    """A circuit breaker that can guard many call sites, sync and async, across threads.

    Trips on `failure_threshold` consecutive failures, and/or when over a sliding
    window (`window` calls, or `window_seconds`) with at least `minimum_calls`
    the failure rate reaches `failure_rate` or the share of calls slower than
    `slow_call_duration` reaches `slow_call_rate`. Stays open `reset_timeout`
    seconds, then lets exactly `half_open_trials` calls through and closes after
    `success_threshold` of them succeed.
    """

    __slots__ = (
        "_busy_message",
        "_emitter",
        "_gen",
        "_half_successes",
        "_lock",
        "_loud",
        "_mono",
        "_open_error",
        "_open_message",
        "_open_until",
        "_rejections",
        "_state",
        "_track",
        "_trials_left",
        "_window",
        "clock",
        "consecutive_failures",
        "failure_rate",
        "failure_threshold",
        "half_open_trials",
        "matcher",
        "minimum_calls",
        "name",
        "reset_timeout",
        "slow_call_duration",
        "slow_call_rate",
        "success_threshold",
        "transitions",
    )

    def __init__(
        self,
        *,
        name: str = "breaker",
        failure_threshold: int | None = 5,
        failure_rate: float | None = None,
        window: int | None = None,
        window_seconds: float | None = None,
        minimum_calls: int = 10,
        slow_call_duration: float | None = None,
        slow_call_rate: float | None = None,
        reset_timeout: float = 30.0,
        half_open_trials: int = 1,
        success_threshold: int = 1,
        on: OnSpec = Exception,
        clock: Clock = system_clock,
        bus: Publisher | None = None,
        listeners: tuple[Listener, ...] = (),
        metrics: bool = True,
    ) -> None:
        what = f"CircuitBreaker {name!r}"
        if failure_threshold is not None and failure_threshold < 1:
            raise InvalidInput(f"{what}: failure_threshold must be >= 1 or None")
        rate_based = failure_rate is not None or slow_call_rate is not None
        if rate_based and (window is None) == (window_seconds is None):
            raise InvalidInput(f"{what}: a rate needs exactly one of window= or window_seconds=")
        for label, rate in (("failure_rate", failure_rate), ("slow_call_rate", slow_call_rate)):
            if rate is not None and not 0.0 < rate <= 1.0:
                raise InvalidInput(f"{what}: {label} must be within (0, 1], got {rate!r}")
        if slow_call_rate is not None and slow_call_duration is None:
            raise InvalidInput(f"{what}: slow_call_rate needs slow_call_duration")
        if failure_threshold is None and not rate_based:
            raise InvalidInput(f"{what}: give failure_threshold, failure_rate or slow_call_rate")
        if not 1 <= success_threshold <= half_open_trials:
            raise InvalidInput(
                f"{what}: need 1 <= success_threshold <= half_open_trials, got "
                f"{success_threshold} and {half_open_trials}"
            )
        if minimum_calls < 1:
            raise InvalidInput(f"{what}: minimum_calls must be >= 1")
        self.name = name
        self.failure_threshold = failure_threshold
        self.failure_rate = failure_rate
        self.slow_call_rate = slow_call_rate
        self.slow_call_duration = (
            None
            if slow_call_duration is None
            else check_positive(f"{what}: slow_call_duration", slow_call_duration)
        )
        self.minimum_calls = minimum_calls
        self.reset_timeout = check_positive(f"{what}: reset_timeout", reset_timeout)
        self.half_open_trials = half_open_trials
        self.success_threshold = success_threshold
        self.matcher = None if on is Exception else Matcher(on, need_retryable=False, what=what)
        self.clock = clock
        self._mono = monotonic_of(clock)
        self._emitter = Emitter(bus=bus, listeners=listeners, metrics=metrics)
        # Rejections are too frequent for Prometheus per event; they are counted in
        # `rejected` and published only to listeners and the bus.
        self._loud = bool(listeners) or bus is not None
        self._window: Window | None = None
        if rate_based and window is not None:
            if not 1 <= window <= 1_000_000:
                raise InvalidInput(f"{what}: window must be within 1..1000000 calls")
            self._window = CountWindow(window)
        elif rate_based and window_seconds is not None:
            self._window = TimeWindow(check_positive(f"{what}: window_seconds", window_seconds))
        self._lock = threading.Lock()
        self._state = _C
        self._gen = 0
        self._track = self._window is not None
        self._open_until = 0.0
        self._trials_left = 0
        self._half_successes = 0
        self._rejections = itertools.count()
        self._open_message = f"circuit {name!r} is open"
        self._open_error = _open_error_class(self)
        self._busy_message = f"circuit {name!r} is half-open and its trial calls are taken"
        self.consecutive_failures = 0
        self.transitions = 0

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(name={self.name!r}, state={self._state.value}, "
            f"failure_threshold={self.failure_threshold}, failure_rate={self.failure_rate}, "
            f"window={self._window!r}, reset_timeout={self.reset_timeout})"
        )

    @property
    def state(self) -> BreakerState:
        return self._state

    @property
    def rejected(self) -> int:
        """Calls refused so far (counted without a lock, exactly: itertools.count is atomic)."""
        return int(repr(self._rejections)[6:-1])

    # -- transitions (caller holds the lock) -----------------------------------------

    def _move(self, target: BreakerState) -> None:
        if target not in ALLOWED[self._state]:
            raise IllegalTransition(f"breaker {self.name}", self._state.value, target.value)
        self._state = target
        self._gen += 1
        self.transitions += 1

    def _open(self, reason: str, calls: int, failures: int) -> PolicyEvent:
        self._move(_O)
        self._open_until = self._mono() + self.reset_timeout
        self._track = True
        self.consecutive_failures = 0
        if self._window is not None:
            self._window.reset()
        return CircuitOpened(self.name, reason, failures, calls, self.reset_timeout)

    # -- admission -------------------------------------------------------------------

    def _reject(self, retry_after: float | None) -> CircuitOpen:
        """The refusal for the slow paths (half-open trials taken, or the race to re-open)."""
        next(self._rejections)
        if self._loud:
            self._emitter.emit(CallRejected(self.name, "circuit-open", retry_after))
        message = self._open_message if retry_after is not None else self._busy_message
        return CircuitOpen.make(message, policy=self.name, retry_after=retry_after)

    def _announce_rejection(self) -> None:
        """Tell listeners and the bus about a fail-fast refusal (the wrappers count it inline)."""
        remaining = max(0.0, self._open_until - self._mono())
        self._emitter.emit(CallRejected(self.name, "circuit-open", remaining))

    def _admit(self) -> int:
        """Admit a call when not closed: returns its generation or raises CircuitOpen."""
        now = self._mono()
        if self._state is _O and now < self._open_until:
            raise self._reject(self._open_until - now)
        event: PolicyEvent | None = None
        retry_after: float | None = None
        with self._lock:
            if self._state is _O:
                if now < self._open_until:  # re-opened by another thread meanwhile
                    gen, retry_after = -1, self._open_until - now
                else:
                    self._move(_H)
                    self._trials_left = self.half_open_trials
                    self._half_successes = 0
                    event = CircuitHalfOpened(self.name, self.half_open_trials)
            if self._state is _H:
                if self._trials_left > 0:
                    self._trials_left -= 1
                    gen = self._gen
                else:
                    gen = -1
            elif self._state is _C:
                gen = self._gen
        if event is not None:
            self._emitter.emit(event)
        if gen < 0:
            raise self._reject(retry_after)
        return gen

    # -- outcomes --------------------------------------------------------------------

    def _trip_reason(self, now: float) -> tuple[str, int, int] | None:
        if (
            self.failure_threshold is not None
            and self.consecutive_failures >= self.failure_threshold
        ):
            return "consecutive failures", self.consecutive_failures, self.consecutive_failures
        window = self._window
        if window is None:
            return None
        calls, failures, slow = window.totals(now)
        if calls < self.minimum_calls:
            return None
        if self.failure_rate is not None and failures >= self.failure_rate * calls:
            return f"failure rate {failures}/{calls}", calls, failures
        if self.slow_call_rate is not None and slow >= self.slow_call_rate * calls:
            return f"slow-call rate {slow}/{calls}", calls, failures
        return None

    def _record(self, gen: int, code: int) -> None:
        event: PolicyEvent | None = None
        with self._lock:
            if gen != self._gen:
                return
            if self._state is _C:
                if code & FAILED:
                    self.consecutive_failures += 1
                    self._track = True
                else:
                    self.consecutive_failures = 0
                    self._track = self._window is not None
                now = self._mono()
                if self._window is not None:
                    self._window.add(code, now)
                if code:
                    trip = self._trip_reason(now)
                    if trip is not None:
                        event = self._open(*trip)
            elif self._state is _H:
                if code:
                    event = self._open("a half-open trial failed", 1, 1)
                else:
                    self._half_successes += 1
                    if self._half_successes >= self.success_threshold:
                        self._move(_C)
                        self.consecutive_failures = 0
                        self._track = self._window is not None
                        event = CircuitClosed(self.name, self._half_successes)
        if event is not None:
            self._emitter.emit(event)

    def _failed(self, exc: Exception, gen: int, slow: int) -> None:
        matcher = self.matcher
        if matcher is not None and matcher.match(exc) is None:
            self._record(gen, slow)  # the dependency answered; the error is the caller's
        else:
            self._record(gen, FAILED | slow)

    def _abandoned(self, gen: int) -> None:
        """A call ended by cancellation: give its half-open trial back, count nothing."""
        with self._lock:
            if gen == self._gen and self._state is _H:
                self._trials_left += 1

    # -- wrapping --------------------------------------------------------------------

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate `fn` (sync or async); the result keeps `fn`'s signature for type checkers."""
        if is_async(fn):
            return cast(Callable[P, R], self._wrap_async(cast(Callable[..., Awaitable[Any]], fn)))
        if self.slow_call_duration is not None:
            return cast(Callable[P, R], self._wrap_timed(fn))
        return cast(Callable[P, R], self._wrap_sync(fn))

    def _wrap_sync(self, fn: Callable[..., Any], *, specialise: bool = True) -> Callable[..., Any]:
        # Failing fast is counted inline (no Python call); only listeners cost a call.
        # The wrapper closes over as few names as it can: an exception leaving a frame
        # materialises it, and every closed-over cell makes that dearer on the hot
        # rejection path. Slow paths reach the breaker through `self`.
        rejections, open_error, message, mono = (
            self._rejections,
            self._open_error,
            self._open_message,
            self._mono,
        )
        announce = self._announce_rejection if self._loud else None

        if specialise and positional_only(fn):
            # No keyword can reach `fn`, so the wrapper takes none either: a `**kwargs`
            # parameter costs a dict on every call, rejected ones included. The body
            # is the one below, less the keywords.
            @functools.wraps(fn)
            def guarded_positional(*args: Any) -> Any:
                if self._state is not _C:
                    if mono() < self._open_until:
                        next(rejections)
                        if announce is not None:
                            announce()
                        raise open_error(message)
                    gen = self._admit()
                else:
                    gen = self._gen
                try:
                    result = fn(*args)
                except Exception as exc:
                    self._failed(exc, gen, 0)
                    raise
                except BaseException:
                    self._abandoned(gen)
                    raise
                if self._track:
                    self._record(gen, 0)
                return result

            return guarded_positional

        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if self._state is not _C:
                # Only an open breaker has `_open_until` in the future: half-open
                # began once it had passed.
                if mono() < self._open_until:
                    next(rejections)
                    if announce is not None:
                        announce()
                    raise open_error(message)
                gen = self._admit()
            else:
                gen = self._gen
            try:
                # `fn(*args, **kwargs)` copies `kwargs` into a new dict even when empty.
                result = fn(*args, **kwargs) if kwargs else fn(*args)
            except Exception as exc:
                self._failed(exc, gen, 0)
                raise
            except BaseException:
                self._abandoned(gen)
                raise
            if self._track:
                self._record(gen, 0)
            return result

        return guarded

    def _wrap_timed(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        admit, record, failed, abandoned = self._admit, self._record, self._failed, self._abandoned
        mono, limit, closed = self._mono, self.slow_call_duration or 0.0, _C

        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            gen = self._gen if self._state is closed else admit()
            start = mono()
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                failed(exc, gen, SLOW if mono() - start >= limit else 0)
                raise
            except BaseException:
                abandoned(gen)
                raise
            record(gen, SLOW if mono() - start >= limit else 0)
            return result

        return guarded

    def _wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        # The same hot paths as the sync wrapper, and the same few closed-over names.
        rejections, open_error, message, mono = (
            self._rejections,
            self._open_error,
            self._open_message,
            self._mono,
        )
        announce = self._announce_rejection if self._loud else None
        limit = self.slow_call_duration

        @functools.wraps(fn)
        async def guarded(*args: Any, **kwargs: Any) -> Any:
            if self._state is not _C:
                if mono() < self._open_until:
                    next(rejections)
                    if announce is not None:
                        announce()
                    raise open_error(message)
                gen = self._admit()
            else:
                gen = self._gen
            start = mono() if limit is not None else 0.0
            try:
                result = await (fn(*args, **kwargs) if kwargs else fn(*args))
            except Exception as exc:
                self._failed(exc, gen, SLOW if limit is not None and mono() - start >= limit else 0)
                raise
            except BaseException:
                self._abandoned(gen)
                raise
            if limit is not None:
                self._record(gen, SLOW if mono() - start >= limit else 0)
            elif self._track:
                self._record(gen, 0)
            return result

        return guarded

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run `fn(*args, **kwargs)` through the breaker (the wrapper form; sync)."""
        if is_async(fn) or self.slow_call_duration is not None:
            return self(fn)(*args, **kwargs)
        # A wrapper used once is not worth reading `fn`'s signature for.
        return cast(R, self._wrap_sync(fn, specialise=False)(*args, **kwargs))

    async def acall(self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Await `fn(*args, **kwargs)` through the breaker (the wrapper form; async)."""
        wrapped = cast(Callable[P, Awaitable[R]], self._wrap_async(fn))
        return await wrapped(*args, **kwargs)
