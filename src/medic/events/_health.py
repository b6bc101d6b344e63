"""What the health monitor says about the services it probes.

Only threshold crossings are events (unhealthy after `failures` misses, healthy
after `successes` passes); single probe results stay inside the monitor so a
thousand green checks a minute cost the bus nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["HealthEvent", "ServiceHealthy", "ServiceUnhealthy"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthEvent:
    """Base of health events: which service and probe, and when the rule decided."""

    service: str
    probe: str
    probe_type: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceUnhealthy(HealthEvent):
    """`failures` consecutive misses: `first_failure_at` is the true start of the failure."""

    action: str
    evidence: str
    failures: int
    first_failure_at: datetime
    kind: str = "unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceHealthy(HealthEvent):
    """`successes` consecutive passes after being unhealthy or unknown."""

    first_success_at: datetime
    recovered: bool
