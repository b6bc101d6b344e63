"""Checkpoints: what they capture, what they skip, and that later ones cost O(changed)."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path

import pytest
from ckpt_trees import make_tree

from medic.bus import Bus
from medic.checkpoint import Store, prune, rollback, verify_blobs
from medic.checkpoint._scan import RACY_NS, Index
from medic.errors import EnvironmentFault, InvalidInput, NotFound
from medic.events import CheckpointCreated


def _quiet(store: Store) -> None:
    """Push the index's stamp past the racy window, as if the last checkpoint were older."""
    for f in store.index_dir.glob("*.json"):
        doc = json.loads(f.read_text())
        doc["stamp_ns"] += 10 * RACY_NS
        f.write_text(json.dumps(doc))


def test_checkpoint_records_files_dirs_symlinks_and_publishes(tree: Path, tmp_path: Path) -> None:
    """A manifest lists every file, dir and symlink; a CheckpointCreated event is published."""
    bus = Bus()
    sub = bus.subscribe(CheckpointCreated)
    store = Store(tmp_path / "store", bus=bus)
    m = store.create([tree], name="first")
    types = {e.path: e.type for e in m.roots[0].entries}
    assert types["link"] == "l"
    assert types["empty"] == "d"
    assert types["d0/f0.bin"] == "f"
    assert m.files == 40
    [event] = sub.drain()
    assert event.checkpoint_id == m.id
    assert event.files == 40
    assert event.new_bytes > 0
    assert store.get("first").id == m.id == store.get("latest").id == store.get(m.id[:12]).id


def test_blobs_are_deduplicated_and_text_is_compressed(tree: Path, tmp_path: Path) -> None:
    """A second checkpoint of the same tree adds no blob bytes; text blobs are stored as zstd."""
    store = Store(tmp_path / "store")
    store.create([tree])
    m2 = store.create([tree], rehash_all=True)
    assert m2.stats["new_bytes"] == 0
    stored = {p.name for _, p in store.blobs.all()}
    assert any(n.endswith(".zst") for n in stored)
    assert any(not n.endswith(".zst") for n in stored)


def test_incremental_checkpoint_hashes_only_changed_files(tree: Path, tmp_path: Path) -> None:
    """With a settled index, the next checkpoint reads just the files whose stat changed."""
    store = Store(tmp_path / "store")
    store.create([tree])
    _quiet(store)
    (tree / "d1" / "f1.txt").write_text("changed")
    m = store.create([tree])
    assert m.stats["hashed_files"] == 1


def test_same_second_same_size_edit_is_detected(tree: Path, tmp_path: Path) -> None:
    """An edit that keeps size and (whole-second) mtime is still seen, by checkpoint and rollback."""
    store = Store(tmp_path / "store")
    f = tree / "d2" / "f2.txt"
    before = f.stat()
    m1 = store.create([tree])
    data = bytearray(f.read_bytes())
    data[0] ^= 1
    f.write_bytes(bytes(data))
    os.utime(f, ns=(before.st_atime_ns, before.st_mtime_ns))  # even the exact same mtime
    m2 = store.create([tree])
    d1 = {e.path: e.digest for e in m1.roots[0].entries}
    d2 = {e.path: e.digest for e in m2.roots[0].entries}
    assert d1["d2/f2.txt"] != d2["d2/f2.txt"]
    data[0] ^= 1  # back to the original bytes, again same size and mtime
    f.write_bytes(bytes(data))
    os.utime(f, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert rollback(store, m2.id).restored == 1
    assert f.read_bytes()[0] == data[0] ^ 1


def test_racy_entry_is_rehashed_even_when_stat_matches(tree: Path, tmp_path: Path) -> None:
    """A file whose ctime is within the racy window of the index stamp is never trusted."""
    store = Store(tmp_path / "store")
    store.create([tree])
    _quiet(store)
    [index_file] = store.index_dir.glob("*.json")
    doc = json.loads(index_file.read_text())
    ctime = (tree / "d1" / "f1.txt").stat().st_ctime_ns
    doc["stamp_ns"] = ctime + RACY_NS // 2  # as if the index was taken right after the edit
    index_file.write_text(json.dumps(doc))
    m = store.create([tree])
    assert m.stats["hashed_files"] >= 1
    _quiet(store)
    assert store.create([tree]).stats["hashed_files"] == 0


def test_store_git_and_medic_dirs_inside_the_tree_are_skipped(tree: Path) -> None:
    """The store itself, .git and .medic never end up in a checkpoint; the git HEAD is recorded."""
    git = tree / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "refs" / "heads" / "main").write_text("a" * 40 + "\n")
    store = Store(tree / ".medic" / "checkpoints")
    m = store.create([tree])
    assert not [e for e in m.roots[0].entries if e.path.startswith((".git", ".medic"))]
    assert m.roots[0].git == {"commit": "a" * 40, "ref": "refs/heads/main"}


def test_sqlite_is_captured_consistently_while_a_writer_is_open(tmp_path: Path) -> None:
    """The online backup API captures committed rows even with an open write transaction."""
    db = tmp_path / "app.db"
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE t (x)")
    con.execute("INSERT INTO t VALUES (1)")
    con.execute("BEGIN IMMEDIATE")
    con.execute("INSERT INTO t VALUES (2)")  # not committed: must not appear
    store = Store(tmp_path / "store")
    m = store.create([], dbs=[db])
    con.execute("COMMIT")
    con.execute("INSERT INTO t VALUES (3)")
    rollback(store, m.id)
    assert con.execute("SELECT x FROM t").fetchall() == [(1,)]
    con.close()


def test_bad_inputs_are_refused_with_a_clear_error(tree: Path, tmp_path: Path) -> None:
    """A file as PATH, nested roots, nothing to do, a foreign directory as store: all refused."""
    store = Store(tmp_path / "store")
    with pytest.raises(InvalidInput, match="not a directory"):
        store.create([tree / "d0" / "f0.bin"])
    with pytest.raises(InvalidInput, match="inside"):
        store.create([tree, tree / "d0"])
    with pytest.raises(InvalidInput, match="nothing"):
        store.create([])
    with pytest.raises(InvalidInput, match="not a medic store"):
        Store(tree / "d1").create([tree / "d0"])
    with pytest.raises(NotFound):
        Store(tmp_path / "nowhere").get("latest")
    with pytest.raises(InvalidInput, match="not a SQLite"):
        store.create([], dbs=[tree / "d1" / "f1.txt"])


def test_a_second_writer_fails_at_once_instead_of_waiting(tree: Path, tmp_path: Path) -> None:
    """The store lock is exclusive and non-blocking: a concurrent writer gets a clear error."""
    store = Store(tmp_path / "store")
    store.init()
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with store.lock():
            held.set()
            release.wait(5)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(5)
    try:
        with pytest.raises(EnvironmentFault, match="busy"):
            Store(tmp_path / "store").create([tree])
    finally:
        release.set()
        t.join()


def test_many_roots_get_unique_labels_and_verify_clean(tmp_path: Path) -> None:
    """Two roots with the same basename get distinct labels; every blob re-hashes clean."""
    a = make_tree(tmp_path / "a" / "data", files=5, seed=2)
    b = make_tree(tmp_path / "b" / "data", files=5, seed=3)
    store = Store(tmp_path / "store")
    m = store.create([a, b])
    assert [r.label for r in m.roots] == ["data", "data-2"]
    assert verify_blobs(store, [m]).ok


def test_prune_stopped_midway_never_leaves_an_index_trusting_a_deleted_blob(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Indexes forget swept blobs before the blobs go, so a kill between the two is harmless."""
    store = Store(tmp_path / "store")
    f = tree / "d1" / "f1.txt"
    a = store.create([tree])
    f.write_text("content of b")
    store.create([tree])
    rollback(store, a.id)
    _quiet(store)  # the index now vouches, settled, for the content only `a` names

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # as if killed while the indexes were rewritten

    with monkeypatch.context() as m:
        m.setattr(Index, "save", killed)
        with pytest.raises(KeyboardInterrupt):
            prune(store, keep_last=1)
    c = store.create([tree])
    assert verify_blobs(store, [c]).problems == ()


def test_names_resolve_to_the_newest_and_a_damaged_other_checkpoint_does_not_block_them(
    tree: Path, tmp_path: Path
) -> None:
    """`get` by name, prefix or 'latest' reads only the checkpoint it returns in full."""
    store = Store(tmp_path / "store")
    old = store.create([tree], name="same")
    (tree / "n.txt").write_text("new")
    new = store.create([tree], name="same")
    other = store.create([tree], name="other")
    doc = json.loads((store.manifests / f"{other.id}.json").read_bytes())
    doc["roots"][0]["entries"][0][0] = "../escape"
    (store.manifests / f"{other.id}.json").write_text(json.dumps(doc))
    assert store.get("same").id == new.id != old.id
    assert store.get(old.id[:-1]).id == old.id
    with pytest.raises(InvalidInput):
        store.get("other")
    with pytest.raises(InvalidInput):
        store.get("latest")
