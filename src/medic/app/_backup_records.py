"""What the recorder writes for backups and rollbacks: RPO incidents and finished rollbacks.

An RPO breach is one incident per schedule, keyed `backup:NAME`, opened when a
check finds the newest verified backup older than the objective (or none) and
resolved by the first later check that finds it within. Its impact starts when
the objective ran out (the newest verified backup's time plus the objective),
not when medic noticed. Each failed run while it is open adds a signal with the
error; the failure that caused the breach is added right after it opens, since a
run publishes `BackupFailed` before its RPO check. A failed run alone, with the
RPO still met, is no incident: the next run may well succeed in time.

The open incident is looked up in the tracker, not remembered, so an incident
left open by an earlier medic still resolves and one resolved by a person reopens.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from medic.events import (
    Action,
    BackupFailed,
    RollbackCompleted,
    RollbackFailed,
    RpoBreached,
    RpoMet,
    Signal,
)
from medic.taxonomy import Kind, Severity
from medic.tracker import Tracker

__all__ = ["BACKUP_EVENTS", "BackupRecords", "age_text"]

BACKUP_EVENTS = (BackupFailed, RpoBreached, RpoMet, RollbackCompleted, RollbackFailed)
_SOURCE = "backup"


def age_text(seconds: float) -> str:
    """`42s`, `5m`, `3h20m`, `2d4h`: what a person reads in a title."""
    s = int(max(0.0, seconds))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172_800:
        return f"{s // 3600}h{s // 60 % 60:02d}m"
    return f"{s // 86400}d{s // 3600 % 24}h"


def _kind(error: str) -> Kind:
    text = error.lower()
    if "permission denied" in text or "not permitted" in text or "read-only" in text:
        return Kind.PERMISSION
    if "no space" in text or "quota" in text:
        return Kind.RESOURCE
    return Kind.UNKNOWN


class BackupRecords:
    """Turns backup and rollback events into tracker records (on the recorder's thread)."""

    def __init__(
        self, tracker: Tracker, severity: Callable[[str], Severity] = lambda _: Severity.SEV3
    ) -> None:
        self.tracker = tracker
        self._severity = severity  # of a schedule's incidents, by their service name
        # the newest failure of each schedule not yet on an incident
        self._failures: dict[str, BackupFailed] = {}

    def handle(self, event: object) -> None:
        match event:
            case RpoBreached():
                self._breached(event)
            case BackupFailed(schedule=name) if name:
                self._failures[name] = event
                if self._open(name):
                    self._failure(event)
            case RpoMet():
                self._met(event)
            case RollbackCompleted(resumed=True):
                self._resumed(event)
            case RollbackFailed():
                self.tracker.record(
                    Signal(
                        service="medic", source="checkpoint", severity=Severity.SEV2,
                        message=f"rollback to {event.checkpoint_id} could not be finished: "
                        f"{event.error}; fix the cause and run `medic rollback --resume`",
                        dedup_key=f"rollback:{event.checkpoint_id}", reason="rollback-failed",
                        kind=_kind(event.error), occurred_at=event.at, detected_at=event.at,
                        tags={"store": event.store},
                    )
                )  # fmt: skip

    def _open(self, name: str) -> bool:
        return self.tracker.open_incident(f"backup:{name}") is not None

    def _breached(self, event: RpoBreached) -> None:
        name = event.schedule
        if self._open(name):
            return  # still breached: the failed runs that keep it so are recorded as they come
        objective = age_text(event.objective_s)
        failure = self._failures.get(name)
        if event.age_s is None:
            message = f"no verified backup in {event.repo} (objective {objective})"
            occurred = event.at
        else:
            message = (
                f"newest verified backup is {age_text(event.age_s)} old, "
                f"over the {objective} objective"
            )
            newest = event.at - timedelta(seconds=event.age_s)
            occurred = min(event.at, newest + timedelta(seconds=event.objective_s))
        self.tracker.record(
            Signal(
                service=f"backups.{name}", message=message, source=_SOURCE,
                kind=_kind(failure.error) if failure else Kind.UNKNOWN,
                severity=self._severity(f"backups.{name}"),
                occurred_at=occurred, detected_at=event.at, dedup_key=f"backup:{name}",
                reason="rpo-breached",
                tags={"repo": event.repo, "objective_s": f"{event.objective_s:g}",
                      "snapshot": event.snapshot_id or "-"},
            )
        )  # fmt: skip
        if failure is not None:
            self._failure(failure)

    def _failure(self, event: BackupFailed) -> None:
        self._failures.pop(event.schedule, None)
        self.tracker.record(
            Signal(
                service=f"backups.{event.schedule}", message=f"backup failed: {event.error}",
                source=_SOURCE, kind=_kind(event.error),
                severity=self._severity(f"backups.{event.schedule}"),
                occurred_at=event.at, detected_at=event.at, dedup_key=f"backup:{event.schedule}",
                reason="backup-failed", tags={"repo": event.repo},
            )
        )  # fmt: skip

    def _met(self, event: RpoMet) -> None:
        self._failures.pop(event.schedule, None)
        if not self._open(event.schedule):
            return
        self.tracker.record(
            Signal(
                service=f"backups.{event.schedule}", source=_SOURCE, action=Action.RESOLVE,
                message=f"backup {event.snapshot_id} verified; RPO {age_text(event.age_s)} is "
                f"within the {age_text(event.objective_s)} objective",
                occurred_at=event.at, detected_at=event.at, dedup_key=f"backup:{event.schedule}",
                severity=self._severity(f"backups.{event.schedule}"),
            )
        )  # fmt: skip

    def _resumed(self, event: RollbackCompleted) -> None:
        key = f"rollback:{event.checkpoint_id}"
        started: datetime = event.at - timedelta(seconds=event.duration_s)
        result = self.tracker.record(
            Signal(
                service="medic", source="checkpoint", severity=Severity.SEV3,
                message=f"a rollback to {event.checkpoint_id} was interrupted; medic finished it "
                f"at start ({event.restored} files restored, {event.deleted} removed, "
                f"{event.databases} databases, {event.duration_s:.2f}s)",
                dedup_key=key, reason="rollback-resumed", occurred_at=started,
                detected_at=started, tags={"store": event.store},
            )
        )  # fmt: skip
        if result.incident_id is not None:
            self.tracker.record_recovery(
                result.incident_id, action="rollback-resume", attempt=1, started_at=started,
                ended_at=event.at, outcome="success",
                evidence={"checkpoint": event.checkpoint_id, "restored": event.restored,
                          "deleted": event.deleted, "databases": event.databases},
            )  # fmt: skip
        self.tracker.record(
            Signal(
                service="medic", source="checkpoint", action=Action.RESOLVE, dedup_key=key,
                message="the tree is at the checkpoint, verified by hash",
                occurred_at=event.at, detected_at=event.at, severity=Severity.SEV3,
            )
        )  # fmt: skip
