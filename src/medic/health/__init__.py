"""Health probes: process, HTTP, TCP, command, heartbeat and resource checks with thresholds.

Layer 2 (a capability): it publishes `medic.events.HealthEvent`s on the bus and
learns a service's pid through a callable the app passes in, never by importing
the supervisor.
"""

from medic.health._checks import (
    Check,
    CommandCheck,
    HeartbeatCheck,
    HttpCheck,
    Outcome,
    ProcessCheck,
    Target,
    TcpCheck,
)
from medic.health._monitor import (
    ALLOWED,
    HealthMonitor,
    HealthState,
    ProbeAction,
    ProbeSpec,
    ProbeStatus,
)
from medic.health._resource import ResourceCheck

__all__ = [
    "ALLOWED",
    "Check",
    "CommandCheck",
    "HealthMonitor",
    "HealthState",
    "HeartbeatCheck",
    "HttpCheck",
    "Outcome",
    "ProbeAction",
    "ProbeSpec",
    "ProbeStatus",
    "ProcessCheck",
    "ResourceCheck",
    "Target",
    "TcpCheck",
]
