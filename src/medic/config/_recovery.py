"""The `[recovery]` table and the per-service `recovery` and `checkpoint` keys.

A plan is written as a list whose entries are strategy names or tables with
the step's settings, so the common case stays one line:
`recovery = ["restart", {strategy = "degrade", target = "search"}]`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from medic.config._units import Duration
from medic.errors import ConfigError
from medic.recovery import Plans, PlanStep, RecoveryPlan, Strategy
from medic.taxonomy import Kind

__all__ = [
    "CheckpointModel",
    "PlanEntry",
    "PlanStepModel",
    "RecoveryModel",
    "RecoverySettings",
    "ServiceCheckpoint",
    "ServicePlan",
    "recovery_settings",
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


StrategyName = Literal[
    "retry", "restart", "failover", "degrade", "partial", "rollback", "restore", "runbook",
    "escalate",
]  # fmt: skip


class PlanStepModel(Strict):
    """One step of a recovery plan with its own limits."""

    strategy: StrategyName
    timeout: Duration = 30.0
    settle: Duration = 1.0
    attempts: int = Field(default=1, ge=1, le=100)
    delay: Duration = 1.0
    target: str = Field(default="", max_length=200)


PlanEntry = StrategyName | PlanStepModel
PlanList = list[PlanEntry]
# A service's plan: one list for every kind, or a table of lists by kind.
ServicePlan = PlanList | dict[str, PlanList]


def _known_kind(kind: str) -> str:
    return Kind.parse(kind).value


class RecoveryModel(Strict):
    """How the engine recovers: per-kind plans, flapping and cascades."""

    enabled: bool = True
    plans: dict[str, PlanList] = Field(default_factory=dict)
    flap_window: Duration = 600.0
    flap_raise_after: int = Field(default=3, ge=0, le=1000)
    cascade_window: Duration = 60.0

    @field_validator("plans")
    @classmethod
    def _kinds(cls, value: dict[str, PlanList]) -> dict[str, PlanList]:
        return {_known_kind(kind): plan for kind, plan in value.items()}


class CheckpointModel(Strict):
    """What `rollback` returns a service to: its files and SQLite databases when last healthy."""

    paths: list[str] = Field(default_factory=list, max_length=100)
    dbs: list[str] = Field(default_factory=list, max_length=100)
    every: Duration = 3600.0
    keep: int = Field(default=5, ge=1, le=1000)

    @model_validator(mode="after")
    def _something(self) -> CheckpointModel:
        if not self.paths and not self.dbs:
            raise ValueError("a checkpoint needs paths or dbs")
        if self.every <= 0:
            raise ValueError("every must be greater than zero")
        return self


@dataclass(frozen=True, slots=True)
class ServiceCheckpoint:
    """A service's checkpoint set, paths resolved beside the config."""

    service: str
    paths: tuple[str, ...]
    dbs: tuple[str, ...]
    every: float
    keep: int


@dataclass(frozen=True, slots=True)
class RecoverySettings:
    """The engine's part of the config, ready for `medic up`."""

    enabled: bool = True
    plans: Plans = field(default_factory=Plans)
    flap_window: float = 600.0
    flap_raise_after: int = 3
    cascade_window: float = 60.0
    checkpoints: Mapping[str, ServiceCheckpoint] = field(default_factory=dict)


def _steps(entries: PlanList, key: str, source: str | None) -> RecoveryPlan:
    steps: list[PlanStep] = []
    for index, entry in enumerate(entries):
        try:
            if isinstance(entry, str):
                steps.append(PlanStep(Strategy.parse(entry)))
            else:
                steps.append(
                    PlanStep(
                        Strategy.parse(entry.strategy), timeout=entry.timeout,
                        settle=entry.settle, attempts=entry.attempts, delay=entry.delay,
                        target=entry.target,
                    )
                )  # fmt: skip
        except (ConfigError, ValueError) as exc:
            raise ConfigError(str(exc), path=source, key=f"{key}[{index}]") from None
    try:
        return RecoveryPlan(tuple(steps))
    except ConfigError as exc:
        raise ConfigError(str(exc), path=source, key=key) from None


def recovery_settings(
    model: RecoveryModel, services: Mapping[str, Any], base: Path, *, source: str | None = None
) -> RecoverySettings:
    """Plans per kind and per service, and each service's checkpoint set."""
    per_kind = {
        Kind.parse(kind): _steps(entries, f"recovery.plans.{kind}", source)
        for kind, entries in model.plans.items()
    }
    per_service: dict[str, RecoveryPlan] = {}
    per_service_kind: dict[tuple[str, Kind], RecoveryPlan] = {}
    checkpoints: dict[str, ServiceCheckpoint] = {}
    for name, svc in services.items():
        plan = svc.recovery
        if isinstance(plan, list):
            per_service[name] = _steps(plan, f"services.{name}.recovery", source)
        elif isinstance(plan, dict):
            for kind, entries in plan.items():
                key = f"services.{name}.recovery.{kind}"
                per_service_kind[(name, Kind.parse(kind))] = _steps(entries, key, source)
        ck: CheckpointModel | None = svc.checkpoint
        if ck is not None:
            checkpoints[name] = ServiceCheckpoint(
                name, tuple(str(_resolve(base, p)) for p in ck.paths),
                tuple(str(_resolve(base, d)) for d in ck.dbs), ck.every, ck.keep,
            )  # fmt: skip
    return RecoverySettings(
        enabled=model.enabled,
        plans=Plans(per_kind=per_kind, per_service=per_service, per_service_kind=per_service_kind),
        flap_window=model.flap_window,
        flap_raise_after=model.flap_raise_after,
        cascade_window=model.cascade_window,
        checkpoints=checkpoints,
    )


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path
