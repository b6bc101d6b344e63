"""The named states of a supervised service and the transitions between them.

Kept close to supervisord's names (STOPPED, STARTING, RUNNING, BACKOFF, STOPPING,
EXITED, FATAL) because operators already know them; unlike supervisord, FATAL is
not forever: after the crash-loop cooldown medic tries again.
"""

from __future__ import annotations

import enum

from medic.errors import IllegalTransition

__all__ = ["ALLOWED", "ProcessState", "check_transition"]


class ProcessState(enum.StrEnum):
    """Where one service is in its lifecycle."""

    STOPPED = "stopped"  # not running and not wanted
    STARTING = "starting"  # spawned, not yet ready: does not count as started
    RUNNING = "running"  # ready (probe, notify or start time)
    BACKOFF = "backoff"  # failed; waiting out the backoff delay before the next start
    STOPPING = "stopping"  # stop signal sent, waiting for the exit
    EXITED = "exited"  # ended and the restart policy said not to restart
    FATAL = "fatal"  # crash-loop limit hit; waiting out the cooldown


S = ProcessState
ALLOWED: dict[ProcessState, frozenset[ProcessState]] = {
    S.STOPPED: frozenset({S.STARTING}),
    S.STARTING: frozenset({S.RUNNING, S.BACKOFF, S.STOPPING, S.EXITED, S.FATAL, S.STOPPED}),
    S.RUNNING: frozenset({S.BACKOFF, S.STOPPING, S.EXITED, S.FATAL, S.STOPPED}),
    S.BACKOFF: frozenset({S.STARTING, S.STOPPED}),
    S.STOPPING: frozenset({S.STOPPED}),
    S.EXITED: frozenset({S.STARTING, S.STOPPED}),
    S.FATAL: frozenset({S.STARTING, S.STOPPED}),
}


def check_transition(service: str, current: ProcessState, target: ProcessState) -> None:
    """Raise `IllegalTransition` unless ALLOWED lets `current` become `target`."""
    if target not in ALLOWED[current]:
        raise IllegalTransition(f"service {service}", current.value, target.value)
