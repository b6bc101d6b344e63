"""kill -9 at random points of checkpoint, rollback and backup never corrupts anything.

Each trial starts a real child process that imports medic, waits for "go", and
runs one operation; the parent kills it with SIGKILL after a random delay drawn
from the operation's measured duration. Afterwards every manifest must parse and
every blob it names must re-hash to its name, and the tree must be wholly at one
state (for rollback: after --resume, exactly the checkpoint).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ckpt_trees import make_tree, mutate, tree_state

from medic.checkpoint import Store, create_backup, rollback, verify_blobs

TRIALS = 20

CHILD = r"""
import sys
from medic.checkpoint import Store, create_backup, rollback
op, store, arg, mode = sys.argv[1:5]
sys.stdout.write("ready\n"); sys.stdout.flush()
sys.stdin.readline()
if op == "checkpoint":
    Store(store).create([arg], rehash_all=mode == "full")
elif op == "backup":
    create_backup(Store(store), [arg], full=mode == "full")
else:
    rollback(Store(store), arg)
sys.stdout.write("done\n"); sys.stdout.flush()
"""


def _run(
    op: str, store: Path, arg: str, *, kill_after: float | None, mode: str = "incremental"
) -> tuple[bool, float]:
    """Run one operation in a child; kill it after `kill_after` s. Returns (finished, seconds)."""
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, op, str(store), arg, mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        assert child.stdin is not None
        try:
            assert child.stdout.readline() == "ready\n"
            started = time.monotonic()
            child.stdin.write("go\n")
            child.stdin.flush()
            if kill_after is None:
                assert child.wait(60) == 0
                return True, time.monotonic() - started
            time.sleep(kill_after)
            child.send_signal(signal.SIGKILL)
            code = child.wait(60)
            return code == 0, time.monotonic() - started
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(10)


def _store_is_sound(store: Path) -> list[str]:
    s = Store(store)
    if not s.exists():
        return []
    manifests = s.checkpoints()
    result = verify_blobs(s, manifests)
    return [m.id for m in manifests] if result.ok else ["CORRUPT", *result.problems]


def _tree(base: Path) -> Path:
    return make_tree(base / "tree", files=120, seed=11, big=3)


@pytest.mark.slow
def test_kill_during_checkpoint_never_corrupts_the_store(tmp_path: Path) -> None:
    """After kill -9 mid-checkpoint the store is sound, the tree untouched, and work resumes."""
    rng = random.Random(2024)
    tree = _tree(tmp_path)
    want = tree_state(tree)
    store = tmp_path / "store"
    _, full = _run("checkpoint", store, str(tree), kill_after=None)
    _, inc = _run("checkpoint", store, str(tree), kill_after=None)
    finished = 0
    for trial in range(TRIALS):
        # even trials re-read and re-hash everything, odd ones are incremental
        mode, span = ("full", full) if trial % 2 == 0 else ("incremental", inc)
        before = _store_is_sound(store)
        assert "CORRUPT" not in before
        done, _ = _run(
            "checkpoint", store, str(tree), kill_after=rng.uniform(0, span * 1.2), mode=mode
        )
        finished += done
        after = _store_is_sound(store)
        assert "CORRUPT" not in after, f"trial {trial}: {after}"
        assert len(after) in (len(before), len(before) + 1)
        assert tree_state(tree) == want
        mutate(tree, seed=trial, modify=10, delete=1, add=3)
        want = tree_state(tree)
    assert finished < TRIALS, "no trial was killed mid-way: the kill points are too late"
    Store(store).create([tree])  # the lock is free and leftovers are cleaned
    assert list((store / "objects" / "tmp").iterdir()) == []


@pytest.mark.slow
def test_kill_during_rollback_then_resume_ends_exactly_at_the_checkpoint(tmp_path: Path) -> None:
    """A killed rollback leaves the tree untouched or journaled; --resume ends it at the checkpoint."""
    rng = random.Random(7)
    tree = _tree(tmp_path)
    store = Store(tmp_path / "store")
    want = tree_state(tree)
    m = store.create([tree])
    mutate(tree, seed=1, modify=40, delete=10, add=10)
    _, full = _run("rollback", store.path, m.id, kill_after=None)
    assert tree_state(tree) == want
    interrupted = 0
    for trial in range(TRIALS):
        mutate(tree, seed=100 + trial, modify=40, delete=10, add=10)
        changed = tree_state(tree)
        done, _ = _run("rollback", store.path, m.id, kill_after=rng.uniform(0, full * 1.2))
        assert "CORRUPT" not in _store_is_sound(store.path)
        if store.pending_rollback() is not None:
            interrupted += 1
            rollback(store, resume=True)
        elif not done:
            assert tree_state(tree) in (changed, want), f"trial {trial}: torn tree"
            rollback(store, m.id)
        assert tree_state(tree) == want, f"trial {trial}"
    assert interrupted > 0, "no kill landed inside the journaled part of a rollback"


@pytest.mark.slow
def test_kill_during_backup_keeps_every_snapshot_verifiable(tmp_path: Path) -> None:
    """After kill -9 mid-backup every published snapshot verifies and restores."""
    rng = random.Random(99)
    tree = _tree(tmp_path)
    repo = tmp_path / "repo"
    _, full = _run("backup", repo, str(tree), kill_after=None)
    finished = 0
    for trial in range(TRIALS):
        before = _store_is_sound(repo)
        mode = "full" if trial % 2 == 0 else "incremental"
        done, _ = _run("backup", repo, str(tree), kill_after=rng.uniform(0, full * 1.2), mode=mode)
        finished += done
        after = _store_is_sound(repo)
        assert "CORRUPT" not in after, f"trial {trial}: {after}"
        assert len(after) in (len(before), len(before) + 1)
        mutate(tree, seed=500 + trial, modify=10, delete=1, add=3)
    assert finished < TRIALS, "no trial was killed mid-way: the kill points are too late"
    last = create_backup(Store(repo), [tree])
    assert last.kind in ("full", "incremental")
    assert os.listdir(repo / "objects" / "tmp") == []
