"""Breaker and limiter state in Redis, shared by every process that names the same key.

Each decision is one Lua script call (EVALSHA), atomic on the server. The
breaker is timed by the server's clock (`TIME`), so processes on different hosts
agree on when an open period ends. The limiter is timed by the caller's wall
clock, sent with each call: a TIME call would cost as much as the rest of its
script, and a skew of milliseconds between NTP-synced hosts only shifts when a
token comes back by as much. The same state machine as the in-memory breaker runs inside
the script, including generations: the outcome of a call admitted before a
transition is ignored. A success in the closed state with no failures counted
needs no second call.

Pass a `redis.Redis` for sync functions or a `redis.asyncio.Redis` for async
ones; medic never imports redis itself. If Redis cannot be reached, a breaker
with ``fail_open=True`` (the default) lets calls through rather than turning a
Redis outage into an outage of everything it guards; otherwise it raises
`SharedStateUnavailable`.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import time
from collections.abc import Awaitable, Callable
from string import Template
from typing import Any, ParamSpec, TypeVar, cast

from medic.errors import EnvironmentFault, InvalidInput
from medic.events import CallRejected, CircuitClosed, CircuitHalfOpened, CircuitOpened, PolicyEvent
from medic.policies._core import (
    CircuitOpen,
    Emitter,
    Listener,
    Matcher,
    OnSpec,
    Publisher,
    RateLimited,
    check_positive,
)

__all__ = ["SharedCircuitBreaker", "SharedRateLimiter", "SharedStateUnavailable"]

P = ParamSpec("P")
R = TypeVar("R")


class SharedStateUnavailable(EnvironmentFault):
    """Redis, which holds a shared breaker's or limiter's state, could not be used."""


# The configuration is written into the script text ($threshold…), so a decision sends
# only the operation and a generation: fewer arguments to encode and to parse, one
# cached script per configuration. The clock is read only when the state needs it.
_BREAKER_LUA = Template("""
local key = KEYS[1]
local op = ARGV[1]
local h = redis.call('HMGET', key, 'state', 'gen', 'failures')
local state = h[1] or 'closed'
local gen = tonumber(h[2]) or 0
local failures = tonumber(h[3]) or 0
if op == 'admit' and state == 'closed' then
  if failures == 0 then return gen end
  return {1, state, gen, failures, ''}
end
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function open()
  gen = gen + 1
  redis.call('HSET', key, 'state', 'open', 'gen', gen, 'failures', 0, 'open_until', now() + $reset_ms)
  return {0, 'open', gen, $reset_ms, 'open'}
end
if op == 'admit' then
  local event = ''
  if state == 'open' then
    local t = now()
    local open_until = tonumber(redis.call('HGET', key, 'open_until')) or 0
    if t < open_until then return {0, state, gen, open_until - t, ''} end
    gen = gen + 1
    state = 'half-open'
    redis.call('HSET', key, 'state', state, 'gen', gen, 'trials_left', $trials, 'successes', 0)
    event = 'half-open'
  end
  local left = tonumber(redis.call('HGET', key, 'trials_left')) or 0
  if left <= 0 then return {0, state, gen, 0, event} end
  redis.call('HINCRBY', key, 'trials_left', -1)
  return {1, state, gen, 0, event}
end
if tonumber(ARGV[2]) ~= gen then return {1, state, gen, 0, ''} end
if op == 'abandon' then
  if state == 'half-open' then redis.call('HINCRBY', key, 'trials_left', 1) end
  return {1, state, gen, 0, ''}
end
if state == 'closed' then
  if op == 'failure' then
    failures = redis.call('HINCRBY', key, 'failures', 1)
    if failures >= $threshold then return open() end
  elseif failures > 0 then
    redis.call('HSET', key, 'failures', 0)
  end
  return {1, state, gen, failures, ''}
end
if state == 'half-open' then
  if op == 'failure' then return open() end
  local s = redis.call('HINCRBY', key, 'successes', 1)
  if s >= $needed then
    gen = gen + 1
    redis.call('HSET', key, 'state', 'closed', 'gen', gen, 'failures', 0)
    return {1, 'closed', gen, s, 'closed'}
  end
end
return {1, state, gen, 0, ''}
""")

# The token bucket as GCRA: one number per key (the theoretical arrival time of the
# next call, in whole microseconds), so a decision is one GET and, when admitted, one
# SET. The caller passes its clock (ARGV[1]) and the cost (ARGV[2], left out when 1): a
# TIME call would cost as much as the GET, and every argument costs the server a string.
# The expiry is set only when the arrival time enters a new second (SET … PXAT the
# second after next); otherwise KEEPTTL keeps it, since an expiry set for an earlier
# arrival time in the same second is still late enough: Redis rewrites every SET with
# PX or PXAT, which costs more than the rest of the script. Values go to SET already
# formatted as integers, cheaper for the server than converting a Lua number.
_BUCKET_LUA = Template("""
local now = tonumber(ARGV[1])
local old = tonumber(redis.call('GET', KEYS[1]))
local tat = now
if old and old > now then tat = old end
tat = tat + (ARGV[2] or 1) * $interval_us
if tat - now > $tolerance_us then return math.ceil((tat - now - $tolerance_us) / 1000) end
tat = math.floor(tat + 0.5)
local second = math.floor(tat / 1000000)
if old and math.floor(old / 1000000) == second then
  redis.call('SET', KEYS[1], string.format('%d', tat), 'KEEPTTL')
else
  redis.call('SET', KEYS[1], string.format('%d', tat), 'PXAT', string.format('%d', (second + 2) * 1000))
end
return 0
""")


class _Script:
    """EVALSHA through `execute_command`: less client work than redis-py's Script object.

    On NOSCRIPT (a restarted or flushed server) the script is sent once with EVAL,
    which caches it again.
    """

    __slots__ = ("client", "lua", "sha")

    def __init__(self, client: Any, lua: str) -> None:
        self.client = client
        self.lua = lua
        self.sha = hashlib.sha1(lua.encode(), usedforsecurity=False).hexdigest()

    def __call__(self, key: str, *args: Any) -> Any:
        try:
            return self.client.execute_command("EVALSHA", self.sha, 1, key, *args)
        except Exception as exc:
            if type(exc).__name__ != "NoScriptError":
                raise
            return self.client.execute_command("EVAL", self.lua, 1, key, *args)

    async def acall(self, key: str, *args: Any) -> Any:
        try:
            return await self.client.execute_command("EVALSHA", self.sha, 1, key, *args)
        except Exception as exc:
            if type(exc).__name__ != "NoScriptError":
                raise
            return await self.client.execute_command("EVAL", self.lua, 1, key, *args)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _is_async_client(client: Any) -> bool:
    return inspect.iscoroutinefunction(getattr(client, "execute_command", None))


class SharedCircuitBreaker:
    """A consecutive-failure circuit breaker whose state lives in Redis under `key`."""

    __slots__ = (
        "_emitter",
        "_script",
        "fail_open",
        "failure_threshold",
        "half_open_trials",
        "is_async",
        "key",
        "matcher",
        "name",
        "reset_timeout",
        "success_threshold",
    )

    def __init__(
        self,
        client: Any,
        *,
        key: str,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        half_open_trials: int = 1,
        success_threshold: int = 1,
        on: OnSpec = Exception,
        fail_open: bool = True,
        name: str | None = None,
        bus: Publisher | None = None,
        listeners: tuple[Listener, ...] = (),
        metrics: bool = True,
    ) -> None:
        if not key:
            raise InvalidInput("SharedCircuitBreaker: key must not be empty")
        if failure_threshold < 1 or not 1 <= success_threshold <= half_open_trials:
            raise InvalidInput(
                "SharedCircuitBreaker: need failure_threshold >= 1 and "
                "1 <= success_threshold <= half_open_trials"
            )
        self.key = key
        self.name = name or key
        self.failure_threshold = failure_threshold
        self.reset_timeout = check_positive("SharedCircuitBreaker: reset_timeout", reset_timeout)
        self.half_open_trials = half_open_trials
        self.success_threshold = success_threshold
        self.matcher = None if on is Exception else Matcher(on, need_retryable=False, what=key)
        self.fail_open = fail_open
        self.is_async = _is_async_client(client)
        self._script = _Script(
            client,
            _BREAKER_LUA.substitute(
                threshold=failure_threshold,
                reset_ms=int(self.reset_timeout * 1000),
                trials=half_open_trials,
                needed=success_threshold,
            ),
        )
        self._emitter = Emitter(bus=bus, listeners=listeners, metrics=metrics)

    def __repr__(self) -> str:
        return (
            f"SharedCircuitBreaker(key={self.key!r}, failure_threshold={self.failure_threshold}, "
            f"reset_timeout={self.reset_timeout})"
        )

    def _argv(self, op: str, gen: int) -> tuple[Any, ...]:
        return (op,) if op == "admit" else (op, gen)

    def _unavailable(self, exc: Exception) -> SharedStateUnavailable:
        return SharedStateUnavailable(f"breaker {self.name!r}: Redis failed: {exc}")

    def _read(self, reply: Any, admitting: bool) -> tuple[int, int]:
        """Emit what the script did; returns (generation, consecutive failures) or raises."""
        if isinstance(reply, int):  # admitted while closed with no failures counted
            return reply, 0
        allowed, state, gen, extra, event = reply
        event_name = _text(event)
        found: PolicyEvent | None = None
        if event_name == "open":
            found = CircuitOpened(
                self.name, "consecutive failures", self.failure_threshold, 0, self.reset_timeout
            )
        elif event_name == "half-open":
            found = CircuitHalfOpened(self.name, self.half_open_trials)
        elif event_name == "closed":
            found = CircuitClosed(self.name, int(extra))
        if found is not None:
            self._emitter.emit(found)
        if admitting and not int(allowed):
            retry_after = int(extra) / 1000 if _text(state) == "open" else None
            self._emitter.emit(CallRejected(self.name, "circuit-open", retry_after))
            raise CircuitOpen.make(
                f"circuit {self.name!r} is {_text(state)}",
                policy=self.name,
                retry_after=retry_after,
            )
        return int(gen), int(extra) if _text(state) == "closed" else -1

    def _outcome(self, exc: Exception | None) -> str:
        if exc is None or (self.matcher is not None and self.matcher.match(exc) is None):
            return "success"
        return "failure"

    def state(self) -> str:
        """The shared state as Redis holds it now (one admission-free read; sync clients only)."""
        reply = self._script(self.key, *self._argv("peek", -1))
        return _text(reply[1])

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate `fn`: async functions need an asyncio Redis client, sync ones a sync client."""
        if inspect.iscoroutinefunction(fn) != self.is_async:
            raise InvalidInput(
                f"SharedCircuitBreaker {self.name!r}: a {'n async' if self.is_async else ' sync'} "
                f"Redis client cannot guard {'a sync' if self.is_async else 'an async'} function"
            )
        script, key = self._script, self.key
        if self.is_async:
            afn = cast(Callable[..., Awaitable[Any]], fn)

            async def decide(op: str, gen: int) -> tuple[int, int] | None:
                try:
                    reply = await script.acall(key, *self._argv(op, gen))
                except Exception as exc:
                    if self.fail_open:
                        return None
                    raise self._unavailable(exc) from exc
                return self._read(reply, op == "admit")

            @functools.wraps(fn)
            async def ashared(*args: Any, **kwargs: Any) -> Any:
                admitted = await decide("admit", 0)
                try:
                    result = await afn(*args, **kwargs)
                except Exception as exc:
                    if admitted is not None:
                        await decide(self._outcome(exc), admitted[0])
                    raise
                except BaseException:
                    if admitted is not None:
                        await decide("abandon", admitted[0])
                    raise
                if admitted is not None and admitted[1] != 0:
                    await decide("success", admitted[0])
                return result

            return cast(Callable[P, R], ashared)

        def sdecide(op: str, gen: int) -> tuple[int, int] | None:
            try:
                reply = script(key, *self._argv(op, gen))
            except Exception as exc:
                if self.fail_open:
                    return None
                raise self._unavailable(exc) from exc
            return self._read(reply, op == "admit")

        @functools.wraps(fn)
        def shared(*args: P.args, **kwargs: P.kwargs) -> R:
            admitted = sdecide("admit", 0)
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                if admitted is not None:
                    sdecide(self._outcome(exc), admitted[0])
                raise
            except BaseException:
                if admitted is not None:
                    sdecide("abandon", admitted[0])
                raise
            if admitted is not None and admitted[1] != 0:
                sdecide("success", admitted[0])
            return result

        return shared


class SharedRateLimiter:
    """A token bucket per key in Redis: `limit` per `period`, bursts up to `burst`."""

    __slots__ = (
        "_emitter",
        "_script",
        "burst",
        "is_async",
        "limit",
        "name",
        "period",
        "prefix",
        "rate",
    )

    def __init__(
        self,
        client: Any,
        *,
        prefix: str,
        limit: int,
        period: float = 1.0,
        burst: int | None = None,
        name: str | None = None,
        bus: Publisher | None = None,
        listeners: tuple[Listener, ...] = (),
        metrics: bool = True,
    ) -> None:
        if limit < 1:
            raise InvalidInput("SharedRateLimiter: limit must be >= 1")
        self.prefix = prefix
        self.limit = limit
        self.period = check_positive("SharedRateLimiter: period", period)
        self.burst = limit if burst is None else burst
        self.rate = limit / self.period
        self.name = name or prefix
        self.is_async = _is_async_client(client)
        self._script = _Script(
            client,
            _BUCKET_LUA.substitute(
                interval_us=repr(self.period / self.limit * 1e6),
                tolerance_us=repr(self.burst * self.period / self.limit * (1 + 1e-9) * 1e6),
            ),
        )
        self._emitter = Emitter(bus=bus, listeners=listeners, metrics=metrics)

    def __repr__(self) -> str:
        return f"SharedRateLimiter(prefix={self.prefix!r}, {self.limit}/{self.period}s)"

    def acquire(self, key: str = "", cost: float = 1.0) -> float:
        """One script call: 0.0 when admitted, else the seconds until it would be (sync client)."""
        try:
            now_us = time.time_ns() // 1000
            if cost == 1.0:
                wait_ms = self._script(f"{self.prefix}:{key}", now_us)
            else:
                wait_ms = self._script(f"{self.prefix}:{key}", now_us, cost)
        except Exception as exc:
            raise SharedStateUnavailable(f"limiter {self.name!r}: Redis failed: {exc}") from exc
        return int(wait_ms) / 1000

    async def aacquire(self, key: str = "", cost: float = 1.0) -> float:
        """`acquire` with an asyncio Redis client."""
        try:
            now_us = time.time_ns() // 1000
            if cost == 1.0:
                wait_ms = await self._script.acall(f"{self.prefix}:{key}", now_us)
            else:
                wait_ms = await self._script.acall(f"{self.prefix}:{key}", now_us, cost)
        except Exception as exc:
            raise SharedStateUnavailable(f"limiter {self.name!r}: Redis failed: {exc}") from exc
        return int(wait_ms) / 1000

    def check(self, key: str = "", cost: float = 1.0) -> None:
        """Raise RateLimited (with `retry_after`) when `key` is over its limit."""
        wait = self.acquire(key, cost)
        if wait > 0:
            self._emitter.emit(CallRejected(self.name, "rate-limited", wait))
            raise RateLimited.make(
                f"rate limit {self.name!r} reached for key {key!r}",
                policy=self.name,
                retry_after=wait,
            )
