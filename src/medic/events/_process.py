"""What the supervisor says about the processes it runs.

Every lifecycle transition is one frozen event on the bus. `at` is the wall-clock
moment the transition really happened (the exit event carries the instant the
kernel reported the exit, not when someone got round to looking), so a recorder
can compute MTTD and MTTR to the millisecond without asking the supervisor.
"""

from __future__ import annotations

import signal as _signal
from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "ProcessEvent",
    "ServiceExited",
    "ServiceFailover",
    "ServiceFatal",
    "ServiceKilling",
    "ServiceReady",
    "ServiceRestarting",
    "ServiceStarting",
    "ServiceStopped",
    "SupervisorUncleanStop",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessEvent:
    """Base of every supervisor event: which service, and when."""

    service: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceStarting(ProcessEvent):
    """A child was spawned; it does not count as started until `ServiceReady`."""

    pid: int
    attempt: int
    operator: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceReady(ProcessEvent):
    """The start counts: the child is ready (`via` says how medic knows)."""

    pid: int
    via: str
    startup_seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceExited(ProcessEvent):
    """The child is gone. `expected` is true only when medic or an operator stopped it."""

    pid: int
    returncode: int | None
    signal: int | None
    uptime: float
    was_ready: bool
    expected: bool
    reason: str = ""

    @property
    def description(self) -> str:
        """How the child ended, in the words an operator uses."""
        if self.signal is not None:
            try:
                name = _signal.Signals(self.signal).name
            except ValueError:
                name = f"signal {self.signal}"
            return f"killed by {name}"
        return f"exited with code {self.returncode}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceRestarting(ProcessEvent):
    """medic will start the service again after `delay` seconds of backoff."""

    delay: float
    attempt: int
    failures: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceFatal(ProcessEvent):
    """The crash-loop limit was hit: no restarts until `retry_at` (the cooldown)."""

    restarts: int
    within: float
    cooldown: float
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceKilling(ProcessEvent):
    """medic is killing a live child on purpose: a hang, a failed probe, a missed watchdog."""

    pid: int
    reason: str
    stage: str
    signal: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceStopped(ProcessEvent):
    """The service was stopped on request and stays stopped until asked to start."""

    by: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceFailover(ProcessEvent):
    """A failover group switched its active service (`service` is the group's name)."""

    from_service: str
    to_service: str
    reason: str
    failback: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SupervisorUncleanStop(ProcessEvent):
    """The previous medic ended without stopping its children (for example SIGKILL)."""

    previous_pid: int
    previous_started_at: datetime | None
    leftover_pids: tuple[int, ...]
