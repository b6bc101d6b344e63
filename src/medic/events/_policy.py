"""Policy events: what the in-process resilience policies did, as typed records.

They are published to an optional `medic.bus.Bus` and to listeners; none is built
on a call that succeeds the first time, so observing a policy costs nothing on
the hot path. Events carry the error's type and message, never the exception
object, so they stay immutable and can cross threads and processes.
"""

from __future__ import annotations

from dataclasses import dataclass

from medic.taxonomy import Kind

__all__ = [
    "CallRejected",
    "CallTimedOut",
    "CircuitClosed",
    "CircuitHalfOpened",
    "CircuitOpened",
    "FallbackUsed",
    "PolicyEvent",
    "RetryAttempted",
]


@dataclass(frozen=True, slots=True)
class PolicyEvent:
    """Base of every policy event; `policy` is the name given to the policy."""

    policy: str


@dataclass(frozen=True, slots=True)
class RetryAttempted(PolicyEvent):
    """Attempt `attempt` failed; `wait` seconds pass before the next one, unless giving up."""

    attempt: int
    error_type: str
    error: str
    kind: Kind
    wait: float
    will_retry: bool


@dataclass(frozen=True, slots=True)
class CircuitOpened(PolicyEvent):
    """The breaker opened: calls fail fast for `open_for` seconds."""

    reason: str
    failures: int
    calls: int
    open_for: float


@dataclass(frozen=True, slots=True)
class CircuitHalfOpened(PolicyEvent):
    """The open period ended: `trials` calls may test the dependency."""

    trials: int


@dataclass(frozen=True, slots=True)
class CircuitClosed(PolicyEvent):
    """Enough half-open trials succeeded; calls flow again."""

    successes: int


@dataclass(frozen=True, slots=True)
class CallTimedOut(PolicyEvent):
    """A call ran past its timeout and was abandoned (async: cancelled)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class CallRejected(PolicyEvent):
    """A call was refused before it ran: ``circuit-open``, ``bulkhead-full``, ``rate-limited``
    or ``queue-full``."""

    reason: str
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class FallbackUsed(PolicyEvent):
    """The protected call failed and the fallback answered instead."""

    error_type: str
    kind: Kind
