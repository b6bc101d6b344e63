"""What the supervisor needs to know about one service: plain frozen values, no parsing.

`medic.config` turns medic.toml into these; tests and embedders build them directly.
"""

from __future__ import annotations

import enum
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from medic.supervisor._policy import Backoff, CrashLoopLimit, RestartPolicy

__all__ = ["DependencyRestart", "FailoverGroup", "LogSpec", "Readiness", "ServiceSpec", "StopSpec"]


class Readiness(enum.StrEnum):
    """How medic learns that a start succeeded."""

    UPTIME = "uptime"  # the child stayed up `start_seconds`
    PROBE = "probe"  # a health probe passed (the app calls `mark_ready`)
    NOTIFY = "notify"  # the child sent READY=1 on NOTIFY_SOCKET (sd_notify)


class DependencyRestart(enum.StrEnum):
    """What a service does when one of its dependencies is restarted."""

    IGNORE = "ignore"
    RESTART = "restart"  # Erlang's rest_for_one


@dataclass(frozen=True, slots=True, kw_only=True)
class StopSpec:
    """How to stop gracefully: `signal` to the process group, then SIGKILL after `timeout`."""

    signal: int = signal.SIGTERM
    timeout: float = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class LogSpec:
    """Bounded output capture: rotated files plus an in-memory tail of the last lines."""

    directory: Path | None = None
    max_bytes: int = 10 * 1024 * 1024
    keep: int = 3
    tail_lines: int = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceSpec:
    """One supervised service."""

    name: str
    argv: tuple[str, ...]
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    restart: RestartPolicy = RestartPolicy.ALWAYS
    backoff: Backoff = field(default_factory=Backoff)
    crash_loop: CrashLoopLimit = field(default_factory=CrashLoopLimit)
    readiness: Readiness = Readiness.UPTIME
    start_seconds: float = 1.0
    start_timeout: float = 30.0
    stop: StopSpec = field(default_factory=StopSpec)
    hang_grace: float = 2.0
    depends_on: tuple[str, ...] = ()
    on_dependency_restart: DependencyRestart = DependencyRestart.IGNORE
    notify: bool = False
    watchdog: float | None = None
    logs: LogSpec = field(default_factory=LogSpec)

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ValueError(f"invalid service name {self.name!r}")
        if not self.argv:
            raise ValueError(f"service {self.name}: command must not be empty")
        if self.start_seconds < 0 or self.start_timeout <= 0 or self.hang_grace < 0:
            raise ValueError(f"service {self.name}: start and grace times must be positive")
        if self.watchdog is not None and self.watchdog <= 0:
            raise ValueError(f"service {self.name}: watchdog must be positive")


@dataclass(frozen=True, slots=True, kw_only=True)
class FailoverGroup:
    """Services in order of preference: only one runs; the next takes over when it fails.

    With `failback`, medic starts the primary again every `failback_after` seconds
    and switches back once it is ready.
    """

    name: str
    members: tuple[str, ...]
    failback: bool = False
    failback_after: float = 30.0

    def __post_init__(self) -> None:
        if len(self.members) < 2 or len(set(self.members)) != len(self.members):
            raise ValueError(f"group {self.name}: needs at least two distinct services")
