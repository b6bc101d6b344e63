"""The public surface of medic.checkpoint and its events changes only on purpose."""

from __future__ import annotations

import medic.checkpoint
import medic.events


def test_checkpoint_public_names() -> None:
    """Every name in __all__ exists, and the list is the reviewed one."""
    assert all(hasattr(medic.checkpoint, n) for n in medic.checkpoint.__all__)
    assert set(medic.checkpoint.__all__) == {
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
    }


def test_checkpoint_events_are_exported_and_frozen() -> None:
    """The checkpoint events are re-exported from medic.events and immutable."""
    names = {
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
    }
    assert names <= set(medic.events.__all__)
    for n in names:
        params = getattr(medic.events, n).__dataclass_params__
        assert params.frozen
