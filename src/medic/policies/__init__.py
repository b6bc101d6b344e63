"""In-process resilience: retry, circuit breaker, timeout, fallback, failover, bulkhead,
rate limit, bounded queue, and their composition (layer 1, usable without the rest of medic).

Every policy is a small immutable object that decorates sync and async functions
alike and keeps their signatures for type checkers; the stateful ones (breaker,
bulkhead, limiter, queue) can guard many call sites at once. Failures are named
with the taxonomy (`medic.taxonomy.Kind`) or exception types. Cancellation,
KeyboardInterrupt and SystemExit always pass through untouched.
"""

from medic.policies._backoff import (
    Backoff,
    Constant,
    DecorrelatedJitter,
    Exponential,
    constant,
    decorrelated,
    exponential,
)
from medic.policies._breaker import ALLOWED, BreakerState, CircuitBreaker
from medic.policies._bulkhead import Bulkhead
from medic.policies._core import (
    BulkheadFull,
    CircuitOpen,
    PolicyTimeout,
    QueueFull,
    RateLimited,
    Rejected,
)
from medic.policies._fallback import Failover, Fallback, failover, fallback
from medic.policies._limiter import RateLimiter
from medic.policies._pipeline import Pipeline, Policy, pipeline
from medic.policies._queue import BoundedQueue, QueueOverflow
from medic.policies._redis import SharedCircuitBreaker, SharedRateLimiter, SharedStateUnavailable
from medic.policies._retry import Retry, retry
from medic.policies._taxonomy import install_policy_rules
from medic.policies._timeout import Timeout, timeout

install_policy_rules()

__all__ = [
    "ALLOWED",
    "Backoff",
    "BoundedQueue",
    "BreakerState",
    "Bulkhead",
    "BulkheadFull",
    "CircuitBreaker",
    "CircuitOpen",
    "Constant",
    "DecorrelatedJitter",
    "Exponential",
    "Failover",
    "Fallback",
    "Pipeline",
    "Policy",
    "PolicyTimeout",
    "QueueFull",
    "QueueOverflow",
    "RateLimited",
    "RateLimiter",
    "Rejected",
    "Retry",
    "SharedCircuitBreaker",
    "SharedRateLimiter",
    "SharedStateUnavailable",
    "Timeout",
    "constant",
    "decorrelated",
    "exponential",
    "failover",
    "fallback",
    "pipeline",
    "retry",
    "timeout",
]
