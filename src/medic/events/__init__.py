"""Frozen event types with stable names: what flows from detection to the record."""

from medic.events._checkpoint import (
    BackupCreated,
    BackupFailed,
    BackupTested,
    BackupVerified,
    CheckpointCreated,
    RestoreCompleted,
    RollbackCompleted,
    RollbackFailed,
    RpoBreached,
)
from medic.events._signal import Action, ExceptionInfo, Frame, Signal

__all__ = [
    "Action",
    "BackupCreated",
    "BackupFailed",
    "BackupTested",
    "BackupVerified",
    "CheckpointCreated",
    "ExceptionInfo",
    "Frame",
    "RestoreCompleted",
    "RollbackCompleted",
    "RollbackFailed",
    "RpoBreached",
    "Signal",
]
