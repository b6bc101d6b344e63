"""Checkpoints, atomic rollback and verified backups of directory trees and SQLite databases.

A `Store` holds whole-file blobs by sha256 and one manifest per checkpoint,
written last. `rollback` brings trees back to a checkpoint, crash-safe through
a journal (`resume_pending` finishes an interrupted one). A backup repository is
a `Store` elsewhere: `create_backup`, `verify_backups`, `restore` (hostile-input
safe) and `restore_test`. `BackupSchedule` + `run_schedules` + `rpo` let the
application run `[backups.NAME]` tables.
"""

from medic.checkpoint._backup import (
    RestoreResult,
    create_backup,
    restore,
    restore_test,
    verify_backups,
)
from medic.checkpoint._fs import Progress
from medic.checkpoint._maintain import (
    PruneResult,
    VerifyResult,
    prune,
    select_kept,
    verify_blobs,
    verify_tree,
)
from medic.checkpoint._manifest import Database, Entry, Manifest, Root
from medic.checkpoint._plan import RootPlan
from medic.checkpoint._rollback import RollbackResult, plan, resume_pending, rollback
from medic.checkpoint._schedule import (
    BackupSchedule,
    check_rpo,
    newest_verified,
    rpo,
    run_schedule_once,
    run_schedules,
)
from medic.checkpoint._store import Store

__all__ = [
    "BackupSchedule",
    "Database",
    "Entry",
    "Manifest",
    "Progress",
    "PruneResult",
    "RestoreResult",
    "RollbackResult",
    "Root",
    "RootPlan",
    "Store",
    "VerifyResult",
    "check_rpo",
    "create_backup",
    "newest_verified",
    "plan",
    "prune",
    "restore",
    "restore_test",
    "resume_pending",
    "rollback",
    "rpo",
    "run_schedule_once",
    "run_schedules",
    "select_kept",
    "verify_backups",
    "verify_blobs",
    "verify_tree",
]
