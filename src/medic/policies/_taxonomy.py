"""How the taxonomy classifies the policies' own errors, registered like any user rule."""

from __future__ import annotations

from medic.policies._core import BulkheadFull, CircuitOpen, PolicyTimeout, QueueFull, RateLimited
from medic.policies._redis import SharedStateUnavailable
from medic.taxonomy import Kind, Rule, Severity, register_rule, verdict

__all__ = ["install_policy_rules"]

_RULES = (
    Rule(
        "policies:circuit-open",
        "exception",
        CircuitOpen,
        verdict(Kind.DEPENDENCY, True, "circuit open"),
    ),
    Rule(
        "policies:bulkhead-full",
        "exception",
        BulkheadFull,
        verdict(Kind.RESOURCE, True, "bulkhead full"),
    ),
    Rule(
        "policies:rate-limited",
        "exception",
        RateLimited,
        verdict(Kind.RESOURCE, True, "rate limited"),
    ),
    Rule("policies:queue-full", "exception", QueueFull, verdict(Kind.RESOURCE, True, "queue full")),
    Rule(
        "policies:timeout",
        "exception",
        PolicyTimeout,
        verdict(Kind.TIMEOUT, True, "policy timeout"),
    ),
    Rule(
        "policies:shared-state",
        "exception",
        SharedStateUnavailable,
        verdict(Kind.DEPENDENCY, True, "Redis for shared policy state failed", Severity.SEV2),
    ),
)
_installed = False


def install_policy_rules() -> None:
    global _installed
    if not _installed:
        _installed = True
        for rule in _RULES:
            register_rule(rule)
