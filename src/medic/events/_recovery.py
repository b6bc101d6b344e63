"""Events of the recovery engine: what it tried for a failure, and how that went.

They let the dashboard, the chaos experiments and the benchmarks see recovery
as it happens, without reading the store; the store holds the same facts as
recovery attempts and timeline entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "RecoveryDeferred",
    "RecoveryEvent",
    "RecoveryExhausted",
    "RecoveryFinished",
    "RecoveryStarted",
]


@dataclass(frozen=True, slots=True)
class RecoveryStarted:
    """The engine began a step of a plan; `detected_at` is when the failure was decided."""

    service: str
    strategy: str
    step: int
    detected_at: datetime
    at: datetime


@dataclass(frozen=True, slots=True)
class RecoveryFinished:
    """A step ended: `outcome` is success, failure, timeout or skipped."""

    service: str
    strategy: str
    step: int
    outcome: str
    duration_s: float
    detail: str
    at: datetime
    incident_id: int | None = None


@dataclass(frozen=True, slots=True)
class RecoveryExhausted:
    """Every step failed; the incident was escalated to `level`."""

    service: str
    incident_id: int | None
    level: int
    at: datetime


@dataclass(frozen=True, slots=True)
class RecoveryDeferred:
    """No plan ran for `service`: its dependency `root` is down, and the root's plan covers it."""

    service: str
    root: str
    at: datetime


RecoveryEvent = RecoveryStarted | RecoveryFinished | RecoveryExhausted | RecoveryDeferred
