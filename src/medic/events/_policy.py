"""Policy events: what the in-process resilience policies did, as typed records.

They are published to an optional `medic.bus.Bus` and to listeners; none is built
on a call that succeeds the first time, so observing a policy costs nothing on
the hot path. Events carry the error's type and message, never the exception
object, so they stay immutable and can cross threads and processes.
"""

from __future__ import annotations

from dataclasses import dataclass

from medic.events._signal import Action, ExceptionInfo, Signal
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
    "policy_signal",
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


def policy_signal(event: PolicyEvent, *, service: str) -> Signal | None:
    """The signal a policy event means for the tracker, or None when it means nothing there.

    A breaker opening triggers an incident keyed by the breaker; its closing
    resolves that incident (the same `dedup_key`). A retry that gave up and a
    timeout trigger with their failure kind. Attempts that will be retried,
    half-opens and single rejections are the policy working, not new failures.
    """
    tags = {"policy": event.policy}
    if isinstance(event, CircuitOpened):
        return Signal(
            service,
            f"circuit {event.policy} opened: {event.reason}",
            kind=Kind.DEPENDENCY,
            source="policy",
            dedup_key=f"circuit:{service}:{event.policy}",
            reason="circuit-open",
            tags=tags,
        )
    if isinstance(event, CircuitClosed):
        return Signal(
            service,
            f"circuit {event.policy} closed after {event.successes} successful trials",
            kind=Kind.DEPENDENCY,
            source="policy",
            dedup_key=f"circuit:{service}:{event.policy}",
            action=Action.RESOLVE,
            tags=tags,
        )
    if isinstance(event, RetryAttempted) and not event.will_retry:
        return Signal(
            service,
            f"{event.error_type}: {event.error}",
            kind=event.kind,
            source="policy",
            reason="retries-exhausted",
            exception=ExceptionInfo(event.error_type, event.error),
            tags={**tags, "attempts": str(event.attempt)},
        )
    if isinstance(event, CallTimedOut):
        return Signal(
            service,
            f"{event.policy}: no answer within {event.seconds}s",
            kind=Kind.TIMEOUT,
            source="policy",
            reason="timeout",
            tags=tags,
        )
    return None
