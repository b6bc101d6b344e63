"""Rollback returns a tree exactly to its checkpoint, safely, and can be resumed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from ckpt_trees import make_tree, mutate, tree_state
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medic.bus import Bus
from medic.checkpoint import Store, plan, resume_pending, rollback
from medic.errors import NotFound, StoreCorrupt, UserError
from medic.events import RollbackCompleted, RollbackFailed


def test_rollback_undoes_modify_delete_add_and_publishes(tree: Path, tmp_path: Path) -> None:
    """Modified and deleted files come back, added files and dirs go, and an event says so."""
    bus = Bus()
    sub = bus.subscribe(RollbackCompleted)
    store = Store(tmp_path / "store", bus=bus)
    want = tree_state(tree)
    m = store.create([tree])
    mutate(tree, seed=5, modify=6, delete=3, add=4)
    r = rollback(store, m.id)
    assert tree_state(tree) == want
    assert (r.restored, r.deleted) == (9, 1)
    [event] = sub.drain()
    assert event.checkpoint_id == m.id
    assert event.restored == 9
    assert event.duration_s >= 0


def test_type_changes_modes_and_symlinks_are_restored(tree: Path, tmp_path: Path) -> None:
    """A file turned dir, a dir turned file, a retargeted symlink and a chmod are all undone."""
    store = Store(tmp_path / "store")
    want = tree_state(tree)
    m = store.create([tree])
    (tree / "d0" / "f0.bin").unlink()
    (tree / "d0" / "f0.bin").mkdir()
    (tree / "d0" / "f0.bin" / "inner").write_text("x")
    (tree / "empty").rmdir()
    (tree / "empty").write_text("now a file")
    (tree / "link").unlink()
    (tree / "link").symlink_to("/etc/passwd")
    (tree / "d1" / "f1.txt").chmod(0o600)
    rollback(store, m.id)
    assert tree_state(tree) == want


def test_dry_run_changes_nothing_and_lists_the_plan(tree: Path, tmp_path: Path) -> None:
    """--dry-run reports the changes and leaves the tree as it was."""
    store = Store(tmp_path / "store")
    m = store.create([tree])
    mutate(tree, seed=6, modify=2, delete=1, add=1)
    after = tree_state(tree)
    r = rollback(store, m.id, dry_run=True)
    assert r.dry_run
    assert r.restored == 3
    assert r.deleted == 1
    assert {w for w, _ in r.changes} == {"restore", "remove"}
    assert tree_state(tree) == after


def test_noop_rollback_changes_nothing(tree: Path, tmp_path: Path) -> None:
    """Rolling back an unchanged tree writes no file."""
    store = Store(tmp_path / "store")
    m = store.create([tree])
    inodes = {p: p.stat().st_ino for p in tree.rglob("*.txt")}
    r = rollback(store, m.id)
    assert r.changed == 0
    assert {p: p.stat().st_ino for p in tree.rglob("*.txt")} == inodes


def test_a_symlink_planted_as_a_parent_never_redirects_writes(tree: Path, tmp_path: Path) -> None:
    """If d0 became a symlink to a directory outside, rollback replaces it; outside is untouched."""
    outside = tmp_path / "outside"
    outside.mkdir()
    store = Store(tmp_path / "store")
    want = tree_state(tree)
    m = store.create([tree])
    os.rename(tree / "d0", tmp_path / "d0-moved")
    (tree / "d0").symlink_to(outside)
    rollback(store, m.id)
    assert tree_state(tree) == want
    assert list(outside.iterdir()) == []


def test_journal_blocks_new_work_until_resume_finishes(tree: Path, tmp_path: Path) -> None:
    """An interrupted rollback (journal present) must be resumed before anything else."""
    store = Store(tmp_path / "store")
    want = tree_state(tree)
    m = store.create([tree])
    mutate(tree, seed=7, modify=3, delete=2, add=2)
    store.journal.write_text(json.dumps({"checkpoint": m.id, "started_at": "x"}))
    with pytest.raises(UserError, match="--resume"):
        store.create([tree])
    with pytest.raises(UserError, match="--resume"):
        rollback(store, m.id)
    r = resume_pending(store)
    assert r is not None
    assert r.resumed
    assert tree_state(tree) == want
    assert not store.journal.exists()
    assert resume_pending(store) is None
    with pytest.raises(NotFound):
        rollback(store, resume=True)


def test_a_corrupt_blob_stops_rollback_and_keeps_the_journal(tree: Path, tmp_path: Path) -> None:
    """A blob that no longer matches its hash is never written into the tree."""
    bus = Bus()
    failed = bus.subscribe(RollbackFailed)
    store = Store(tmp_path / "store", bus=bus)
    m = store.create([tree])
    target = next(e for e in m.roots[0].entries if e.path == "d0/f0.bin")
    blob = store.blobs.path(target.digest)
    assert blob is not None
    blob.write_bytes(b"evil" + blob.read_bytes()[4:])
    (tree / "d0" / "f0.bin").write_bytes(b"changed")
    with pytest.raises(StoreCorrupt):
        rollback(store, m.id)
    assert (tree / "d0" / "f0.bin").read_bytes() == b"changed"
    assert store.pending_rollback() == m.id
    assert failed.drain()[0].checkpoint_id == m.id


def test_diff_plan_lists_what_changed(tree: Path, tmp_path: Path) -> None:
    """The plan names added, deleted and modified paths."""
    store = Store(tmp_path / "store")
    m = store.create([tree])
    (tree / "d1" / "f1.txt").write_text("edited")
    (tree / "d2" / "f2.txt").unlink()
    (tree / "fresh.txt").write_text("new")
    [p] = plan(store, m)
    assert sorted(p.changes()) == [
        ("remove", "fresh.txt"),
        ("restore", "d1/f1.txt"),
        ("restore", "d2/f2.txt"),
    ]


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10_000),
    modify=st.integers(0, 8),
    delete=st.integers(0, 5),
    add=st.integers(0, 5),
)
def test_any_mutation_is_rolled_back_exactly(
    tmp_path_factory: pytest.TempPathFactory, seed: int, modify: int, delete: int, add: int
) -> None:
    """For random edits, deletions and additions, rollback restores the exact checkpoint state."""
    base = tmp_path_factory.mktemp("prop")
    tree = make_tree(base / "tree", files=20, seed=seed)
    store = Store(base / "store")
    want = tree_state(tree)
    m = store.create([tree])
    mutate(tree, seed=seed, modify=modify, delete=delete, add=add)
    rollback(store, m.id)
    assert tree_state(tree) == want
    assert rollback(store, m.id).changed == 0


def _age(tree: Path) -> None:
    """Give every file an mtime an hour old: none is racy by its edit time any more."""
    hour_ago = 1_000_000_000 * (int(os.path.getmtime(tree)) - 3600)
    for f in tree.rglob("*"):
        if f.is_file() and not f.is_symlink():
            os.utime(f, ns=(hour_ago, hour_ago))


def test_files_a_rollback_restored_are_not_read_again_by_the_next_look(
    tree: Path, tmp_path: Path
) -> None:
    """After a rollback the index vouches for what it wrote: the next checkpoint re-reads none."""
    _age(tree)
    store = Store(tmp_path / "store")
    m = store.create([tree])
    before = tree_state(tree)
    (tree / "d0" / "f0.bin").write_bytes(b"changed")
    (tree / "d1" / "f1.txt").unlink()
    assert rollback(store, m.id).restored == 2
    assert tree_state(tree) == before
    assert store.create([tree]).stats["hashed_files"] == 0
    assert rollback(store, m.id).changed == 0


def test_a_restored_file_is_checked_against_its_hash_before_it_replaces_anything(
    tree: Path, tmp_path: Path
) -> None:
    """A stored copy altered after the checkpoint never lands in the tree, even with its size."""
    store = Store(tmp_path / "store")
    m = store.create([tree])
    target = next(e for e in m.roots[0].entries if e.path == "d1/f1.txt")
    blob = store.blobs.path(target.digest)
    assert blob is not None
    os.unlink(blob)
    blob.with_name(target.digest).write_bytes(b"x" * target.size)  # raw, same size, wrong bytes
    (tree / "d1" / "f1.txt").unlink()
    with pytest.raises(StoreCorrupt):
        rollback(store, m.id)
    assert not (tree / "d1" / "f1.txt").exists()
    assert not [p for p in (tree / "d1").iterdir() if p.name.startswith(".medic-tmp-")]


def test_a_manifest_entry_is_trusted_only_for_the_type_it_names(tree: Path, tmp_path: Path) -> None:
    """A checkpoint saying "directory" where a file with the same hash lives gets a directory."""
    _age(tree)  # so the index vouches for the file by its stat alone
    store = Store(tmp_path / "store")
    m = store.create([tree])
    doc = json.loads((store.manifests / f"{m.id}.json").read_bytes())
    for e in doc["roots"][0]["entries"]:
        if e[0] == "d0/f0.bin":
            e[1] = "d"  # mode, size, mtime and digest stay: none of them may vouch for a dir
    doc["id"] = "crafted"
    (store.manifests / "crafted.json").write_text(json.dumps(doc))
    rollback(store, "crafted")
    assert (tree / "d0" / "f0.bin").is_dir()
    (tree / "d0" / "f0.bin").chmod(0o755)
