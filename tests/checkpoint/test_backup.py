"""Backups: full and incremental, verified, restore-tested, and safe against hostile repositories."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ckpt_trees import make_tree, mutate, tree_state

from medic.bus import Bus
from medic.checkpoint import Store, create_backup, restore, restore_test, verify_backups
from medic.errors import InvalidInput, NoSpace, StoreCorrupt
from medic.events import BackupCreated, BackupTested, BackupVerified

IN_CI = os.environ.get("CI", "").lower() == "true"


def test_first_backup_is_full_then_incremental_and_verified(tree: Path, tmp_path: Path) -> None:
    """The first snapshot is full, later ones incremental and smaller; verify re-hashes all."""
    bus = Bus()
    sub = bus.subscribe(BackupCreated, BackupVerified)
    repo = Store(tmp_path / "repo", bus=bus)
    b1 = create_backup(repo, [tree])
    mutate(tree, seed=3, modify=2, delete=0, add=0)
    b2 = create_backup(repo, [tree])
    b3 = create_backup(repo, [tree], full=True)
    assert [b1.kind, b2.kind, b3.kind] == ["full", "incremental", "full"]
    assert b2.parent == b1.id
    assert 0 < b2.stats["new_bytes"] < b1.stats["new_bytes"]
    snaps, problems, blobs = verify_backups(repo)
    assert problems == []
    assert len(snaps) == 3
    assert blobs >= 40
    assert all(repo.verified_at(m.id) is not None for m in snaps)
    kinds = [type(e).__name__ for e in sub.drain()]
    assert kinds == ["BackupCreated"] * 3 + ["BackupVerified"]


def test_verify_finds_altered_and_missing_blobs(tree: Path, tmp_path: Path) -> None:
    """A flipped byte or a deleted blob is reported, and the snapshot is not marked verified."""
    repo = Store(tmp_path / "repo")
    b = create_backup(repo, [tree])
    files = sorted(p for _, p in repo.blobs.all())
    files[0].write_bytes(files[0].read_bytes() + b"x")
    files[1].unlink()
    _, problems, _ = verify_backups(repo)
    assert len(problems) == 2
    assert any("missing" in p for p in problems)
    assert any("altered" in p for p in problems)
    assert repo.verified_at(b.id) is None


def test_restore_reproduces_the_tree_and_databases(tree: Path, tmp_path: Path) -> None:
    """Restore writes the exact tree; with a database, roots and db land under their labels."""
    db = tmp_path / "app.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (x)")
    con.execute("INSERT INTO t VALUES (42)")
    con.commit()
    con.close()
    repo = Store(tmp_path / "repo")
    want = tree_state(tree)
    b = create_backup(repo, [tree], dbs=[db])
    assert restore(repo, b.id, tmp_path / "dry", dry_run=True).files == 40
    assert not (tmp_path / "dry").exists()
    r = restore(repo, b.id, tmp_path / "out")
    assert r.files == 40
    assert tree_state(tmp_path / "out" / "tree") == want
    got = sqlite3.connect(tmp_path / "out" / "app.db").execute("SELECT x FROM t").fetchall()
    assert got == [(42,)]


def test_restore_test_passes_then_catches_a_corrupt_blob(tree: Path, tmp_path: Path) -> None:
    """`backup test` restores into a scratch dir and compares; corruption fails it."""
    bus = Bus()
    sub = bus.subscribe(BackupTested)
    repo = Store(tmp_path / "repo", bus=bus)
    b = create_backup(repo, [tree])
    m, problems = restore_test(repo, scratch=tmp_path)
    assert m.id == b.id
    assert problems == []
    assert repo.verified_at(b.id) is not None
    blob = sorted(p for _, p in repo.blobs.all() if not p.name.endswith(".zst"))[0]
    blob.write_bytes(b"\0" * blob.stat().st_size)
    _, problems = restore_test(repo, scratch=tmp_path)
    assert problems
    assert repo.verified_at(b.id) is None
    assert [e.ok for e in sub.drain()] == [True, False]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("medic-restore")] == []


def test_restore_refuses_a_non_empty_or_symlinked_target(tree: Path, tmp_path: Path) -> None:
    """Restore never merges into existing files nor follows a symlinked target."""
    repo = Store(tmp_path / "repo")
    b = create_backup(repo, [tree])
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep").write_text("mine")
    with pytest.raises(InvalidInput, match="not empty"):
        restore(repo, b.id, busy)
    (tmp_path / "sym").symlink_to(busy)
    with pytest.raises(InvalidInput, match="symlink"):
        restore(repo, b.id, tmp_path / "sym")
    assert [p.name for p in busy.iterdir()] == ["keep"]


# -- hostile repositories --------------------------------------------------------------


def _edit_manifest(repo: Store, snapshot: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = repo.manifests / f"{snapshot}.json"
    doc = json.loads(path.read_bytes())
    change(doc)
    path.write_text(json.dumps(doc))


def _entries(doc: dict[str, Any]) -> list[list[Any]]:
    entries: list[list[Any]] = doc["roots"][0]["entries"]
    return entries


def _a_file(doc: dict[str, Any]) -> list[Any]:
    return next(e for e in _entries(doc) if e[1] == "f")


HOSTILE: dict[str, Callable[[dict[str, Any]], None]] = {
    "dotdot": lambda d: _entries(d).append(["../evil", *_a_file(d)[1:]]),
    "deep-dotdot": lambda d: _entries(d).append(["d0/../../evil", *_a_file(d)[1:]]),
    "absolute": lambda d: _entries(d).append(["/medic-evil-absolute", *_a_file(d)[1:]]),
    "nul": lambda d: _entries(d).append(["evil\x00x", *_a_file(d)[1:]]),
    "symlink-up": lambda d: _entries(d).append(["esc", "l", 0o777, 0, 0, "", "../../outside"]),
    "symlink-abs": lambda d: _entries(d).append(["esc", "l", 0o777, 0, 0, "", "/etc"]),
    "write-through-symlink": lambda d: _entries(d).extend(
        [["hop", "l", 0o777, 0, 0, "", "d0"], ["hop/evil", *_a_file(d)[1:]]]
    ),
    "char-device": lambda d: _entries(d).append(["dev", "c", 0o644, 0, 0, "", ""]),
    "device-mode-bits": lambda d: _entries(d).append(["dev", "f", 0o20644, *_a_file(d)[3:]]),
    "setuid": lambda d: _entries(d).append(["suid", "f", 0o4755, *_a_file(d)[3:]]),
    "setgid": lambda d: _entries(d).append(["sgid", "f", 0o2755, *_a_file(d)[3:]]),
    "duplicate": lambda d: _entries(d).append(list(_a_file(d))),
    "label-traversal": lambda d: d["roots"][0].update(label="../evil"),
    "db-label-traversal": lambda d: d["databases"].append(
        {"path": "/x.db", "label": "../x.db", "digest": _a_file(d)[5], "size": 1}
    ),
    "bad-digest": lambda d: _entries(d).append(["h", "f", 0o644, 1, 0, "../../etc/passwd", ""]),
    "not-json": lambda d: d.clear(),
}


@pytest.fixture
def hostile_repo(tree: Path, tmp_path: Path) -> tuple[Store, str]:
    """A repository with one good snapshot, for the test to poison."""
    repo = Store(tmp_path / "repo")
    b = create_backup(repo, [tree])
    return repo, b.id


@pytest.mark.parametrize("attack", sorted(HOSTILE))
def test_hostile_manifest_is_refused_and_nothing_is_written(
    hostile_repo: tuple[Store, str], tmp_path: Path, attack: str
) -> None:
    """Traversal, absolute paths, symlink escapes, devices, setuid: refused before any write."""
    repo, snap = hostile_repo
    _edit_manifest(repo, snap, HOSTILE[attack])
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "target"
    before = set(tmp_path.rglob("*"))
    with pytest.raises((InvalidInput, StoreCorrupt)):
        restore(repo, snap, target)
    assert not target.exists()
    assert set(tmp_path.rglob("*")) == before
    assert not Path("/medic-evil-absolute").exists()


def test_corrupt_blob_fails_restore_and_removes_the_partial_target(
    hostile_repo: tuple[Store, str], tmp_path: Path
) -> None:
    """A blob whose bytes do not match its name stops restore; the new target is removed."""
    repo, snap = hostile_repo
    for _, p in repo.blobs.all():
        if not p.name.endswith(".zst"):
            p.write_bytes(b"tampered")
    with pytest.raises(StoreCorrupt):
        restore(repo, snap, tmp_path / "target")
    assert not (tmp_path / "target").exists()


# -- a full disk -------------------------------------------------------------------------


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs mounted for the test (needs root; skipped elsewhere, required in CI)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        reason = f"cannot mount a tmpfs here: {res.stderr.strip() or res.returncode}"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_gives_a_clear_error_and_keeps_earlier_backups(
    tiny_fs: Path, tmp_path: Path
) -> None:
    """ENOSPC mid-backup raises NoSpace naming the repo; the earlier snapshot still verifies."""
    src = make_tree(tmp_path / "src", files=10, seed=9)
    repo = Store(tiny_fs / "repo")
    first = create_backup(repo, [src])
    (src / "huge.bin").write_bytes(os.urandom(3 << 20))
    with pytest.raises(NoSpace, match=r"no space left in .*repo"):
        create_backup(repo, [src])
    assert [m.id for m in repo.checkpoints()] == [first.id]
    assert list(repo.blobs.tmp.iterdir()) == []
    snaps, problems, _ = verify_backups(repo)
    assert problems == []
    assert [m.id for m in snaps] == [first.id]
    (src / "huge.bin").unlink()
    _, problems = restore_test(repo, scratch=tmp_path)
    assert problems == []
