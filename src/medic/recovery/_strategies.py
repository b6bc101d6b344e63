"""Recovery plans: which strategies the engine tries, in which order, for which failure.

A plan is chosen from the failure's kind (seed 003's matrix: a crash wants a
restart, corrupt data wants a rollback, an auth failure wants a human) and can
be replaced per kind and per service in medic.toml. Every plan ends in
`escalate`, added when a configured plan forgets it: a plan that runs out
silently would leave an outage with nobody told.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from medic.errors import ConfigError
from medic.taxonomy import Kind

__all__ = [
    "DEFAULT_PLANS",
    "PlanStep",
    "Plans",
    "RecoveryPlan",
    "Strategy",
]


class Strategy(enum.StrEnum):
    """One recovery action the engine can take (DESIGN.md's vocabulary)."""

    RETRY = "retry"  # wait and look again: a transient failure may pass by itself
    RESTART = "restart"
    FAILOVER = "failover"
    DEGRADE = "degrade"  # continue without a feature; the incident says "degraded"
    PARTIAL = "partial"  # serve partial results; a degraded mode named for what it keeps
    ROLLBACK = "rollback"  # to the service's last good checkpoint
    RESTORE = "restore"  # from the newest verified backup
    RUNBOOK = "runbook"
    ESCALATE = "escalate"

    @classmethod
    def parse(cls, value: str) -> Strategy:
        try:
            return cls(value.strip().lower().replace("_", "-"))
        except ValueError:
            choices = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown strategy {value!r}; expected one of: {choices}") from None


@dataclass(frozen=True, slots=True)
class PlanStep:
    """One step of a plan: the strategy, how long it may take, and how it is judged.

    `timeout` bounds the action and its verification together. `settle` is how
    long the service must stay healthy before the step counts as a success: a
    crash-looping service is briefly "ready" between crashes. `attempts` and
    `delay` only mean something for `retry`. `target` names what the step works
    on when the service alone does not say: the feature to disable (degrade,
    partial), the runbook to run (runbook; empty = every matching safe one), the
    backup schedule to restore from (restore), the failover group (failover).
    """

    strategy: Strategy
    timeout: float = 30.0
    settle: float = 1.0
    attempts: int = 1
    delay: float = 1.0
    target: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "strategy", Strategy.parse(str(self.strategy)))
        if not 0 < self.timeout <= 86_400:
            raise ConfigError(f"{self.strategy} step: timeout must be within (0, 1 day]")
        if not 0 <= self.settle < self.timeout:
            raise ConfigError(f"{self.strategy} step: settle must be ≥ 0 and below the timeout")
        if not 1 <= self.attempts <= 100 or not 0 <= self.delay <= 3600:
            raise ConfigError(f"{self.strategy} step: attempts 1..100 and delay 0..3600s")

    def describe(self) -> str:
        return f"{self.strategy}({self.target})" if self.target else str(self.strategy)


@dataclass(frozen=True, slots=True)
class RecoveryPlan:
    """The ordered steps for one failure; always ends by escalating."""

    steps: tuple[PlanStep, ...]

    def __post_init__(self) -> None:
        steps = tuple(self.steps)
        if not steps or steps[-1].strategy is not Strategy.ESCALATE:
            steps = (*steps, PlanStep(Strategy.ESCALATE))
        if any(s.strategy is Strategy.ESCALATE for s in steps[:-1]):
            raise ConfigError("escalate ends a plan; nothing after it would ever run")
        object.__setattr__(self, "steps", steps)

    @classmethod
    def of(cls, *strategies: Strategy | str | PlanStep) -> RecoveryPlan:
        return cls(
            tuple(
                s if isinstance(s, PlanStep) else PlanStep(Strategy.parse(str(s)))
                for s in strategies
            )
        )

    def describe(self) -> str:
        return " → ".join(step.describe() for step in self.steps)


_P = RecoveryPlan.of
# Seed 003's self-healing matrix, per kind of failure. `unknown` is what an
# unexplained exit or a failed process probe classifies as: restart first.
DEFAULT_PLANS: Mapping[Kind, RecoveryPlan] = MappingProxyType(
    {
        Kind.UNKNOWN: _P("restart", "rollback", "runbook", "escalate"),
        Kind.TIMEOUT: _P("restart", "failover", "runbook", "escalate"),
        Kind.CONNECTION: _P("retry", "restart", "failover", "runbook", "escalate"),
        Kind.DEPENDENCY: _P("retry", "failover", "degrade", "escalate"),
        Kind.RESOURCE: _P("restart", "runbook", "escalate"),
        Kind.DATA_INTEGRITY: _P("rollback", "restore", "runbook", "escalate"),
        Kind.CONFIG: _P("rollback", "runbook", "escalate"),
        Kind.AUTH: _P("runbook", "escalate"),
        Kind.PERMISSION: _P("runbook", "escalate"),
    }
)


@dataclass(frozen=True, slots=True)
class Plans:
    """Per-kind plans, overridden per kind and per service (a service plan wins for every kind).

    A service may also override only some kinds: `per_service_kind[(service, kind)]`.
    """

    per_kind: Mapping[Kind, RecoveryPlan] = field(default_factory=lambda: DEFAULT_PLANS)
    per_service: Mapping[str, RecoveryPlan] = field(default_factory=dict)
    per_service_kind: Mapping[tuple[str, Kind], RecoveryPlan] = field(default_factory=dict)

    def __post_init__(self) -> None:
        merged = dict(DEFAULT_PLANS)
        merged.update(self.per_kind)
        object.__setattr__(self, "per_kind", MappingProxyType(merged))
        object.__setattr__(self, "per_service", MappingProxyType(dict(self.per_service)))
        object.__setattr__(self, "per_service_kind", MappingProxyType(dict(self.per_service_kind)))

    def plan_for(self, service: str, kind: Kind) -> RecoveryPlan:
        found = self.per_service_kind.get((service, kind)) or self.per_service.get(service)
        return found or self.per_kind.get(kind) or self.per_kind[Kind.UNKNOWN]

    def services(self) -> Iterable[str]:
        return {*self.per_service, *(s for s, _ in self.per_service_kind)}
