"""Events about checkpoints, rollbacks and backups, published so the tracker can record them.

Each carries the store or repository it concerns, durations measured on the
injected clock's monotonic time, and `at`, the UTC time it happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "BackupCreated",
    "BackupFailed",
    "BackupTested",
    "BackupVerified",
    "CheckpointCreated",
    "RestoreCompleted",
    "RollbackCompleted",
    "RollbackFailed",
    "RpoBreached",
    "RpoMet",
]


@dataclass(frozen=True, slots=True)
class CheckpointCreated:
    """A checkpoint's manifest was published; `new_bytes` is what the store grew by."""

    checkpoint_id: str
    name: str
    kind: str
    store: str
    files: int
    bytes: int
    new_bytes: int
    duration_s: float
    at: datetime


@dataclass(frozen=True, slots=True)
class RollbackCompleted:
    """A tree (and its databases) is back at a checkpoint, verified by hash."""

    checkpoint_id: str
    store: str
    restored: int
    deleted: int
    databases: int
    duration_s: float
    resumed: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class RollbackFailed:
    """A rollback stopped; its journal stays so `medic rollback --resume` can finish it."""

    checkpoint_id: str
    store: str
    error: str
    at: datetime


@dataclass(frozen=True, slots=True)
class BackupCreated:
    """A backup snapshot was published in a repository (full: every file re-read)."""

    snapshot_id: str
    repo: str
    kind: str
    files: int
    bytes: int
    new_bytes: int
    duration_s: float
    at: datetime
    schedule: str = ""


@dataclass(frozen=True, slots=True)
class BackupFailed:
    """A backup (often a scheduled one) could not be made; earlier snapshots are intact."""

    repo: str
    error: str
    at: datetime
    schedule: str = ""


@dataclass(frozen=True, slots=True)
class BackupVerified:
    """Every blob of the named snapshots was re-read and re-hashed."""

    repo: str
    snapshots: tuple[str, ...]
    blobs: int
    bad_blobs: tuple[str, ...]
    ok: bool
    duration_s: float
    at: datetime


@dataclass(frozen=True, slots=True)
class BackupTested:
    """A snapshot was restored into a scratch directory and compared with its manifest."""

    snapshot_id: str
    repo: str
    ok: bool
    files: int
    problems: tuple[str, ...]
    duration_s: float
    at: datetime


@dataclass(frozen=True, slots=True)
class RestoreCompleted:
    """A snapshot was restored into a target directory."""

    snapshot_id: str
    repo: str
    target: str
    files: int
    duration_s: float
    at: datetime


@dataclass(frozen=True, slots=True)
class RpoBreached:
    """The newest verified backup is older than the schedule's objective (or there is none)."""

    schedule: str
    repo: str
    age_s: float | None
    objective_s: float
    at: datetime
    snapshot_id: str = ""


@dataclass(frozen=True, slots=True)
class RpoMet:
    """A check found the newest verified backup within the objective; an RPO incident can resolve."""

    schedule: str
    repo: str
    age_s: float
    objective_s: float
    at: datetime
    snapshot_id: str = ""
