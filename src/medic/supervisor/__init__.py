"""Process supervision: spawn, watch, restart with backoff, stop whole process groups.

Layer 2 (a capability): it publishes `medic.events.ProcessEvent`s on the bus and
never imports another capability. A service's life is a `ProcessState` machine
owned by one `ServiceRunner` task; the `Supervisor` orders many of them.
"""

from medic.supervisor._logs import LogCapture, LogFollower
from medic.supervisor._notify import parse_notify
from medic.supervisor._policy import Backoff, CrashLoopLimit, CrashLoopWindow, RestartPolicy
from medic.supervisor._runner import ServiceRunner, ServiceStatus
from medic.supervisor._spec import (
    DependencyRestart,
    FailoverGroup,
    LogSpec,
    Readiness,
    ServiceSpec,
    StopSpec,
)
from medic.supervisor._states import ALLOWED, ProcessState, check_transition
from medic.supervisor._supervisor import Supervisor, dependency_order

__all__ = [
    "ALLOWED",
    "Backoff",
    "CrashLoopLimit",
    "CrashLoopWindow",
    "DependencyRestart",
    "FailoverGroup",
    "LogCapture",
    "LogFollower",
    "LogSpec",
    "ProcessState",
    "Readiness",
    "RestartPolicy",
    "ServiceRunner",
    "ServiceSpec",
    "ServiceStatus",
    "StopSpec",
    "Supervisor",
    "check_transition",
    "dependency_order",
    "parse_notify",
]
