"""Rollback: bring trees and databases back to a checkpoint, surviving kill -9 at any point.

Crash safety comes from idempotence plus a journal. The journal, written and
fsync'ed before the first change, names the checkpoint; every step after it
(remove added paths, create directories, write files as tmp + fsync + rename,
restore databases, verify) recomputes what is left from the live tree, so
running it again after a crash finishes the job. Only a verified rollback
removes the journal. Until then `--resume` (and `medic up` at start, through
`resume_pending`) completes it, and new checkpoints are refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from medic.checkpoint._blobs import WRITEBACK_FROM, BlobStore
from medic.checkpoint._fs import (
    DirFds,
    atomic_write,
    fsync_dir,
    no_space_guard,
    start_writeback,
    syncfs,
    syncfs_is_cheap,
    tmp_name,
)
from medic.checkpoint._git import git_head
from medic.checkpoint._manifest import FILE, Entry, Manifest
from medic.checkpoint._plan import RootPlan, plan_root
from medic.checkpoint._scan import WORKERS, Index, no_gc, stat_key
from medic.checkpoint._sqlite import check_db, restore_db
from medic.checkpoint._store import Store, db_companions
from medic.errors import EnvironmentFault, MedicError, NotFound, StoreCorrupt, UserError
from medic.events import RollbackCompleted, RollbackFailed

__all__ = ["RollbackResult", "plan", "resume_pending", "rollback", "write_file"]

_SHOW = 1000
_FSYNC_EACH = 1000


@dataclass(frozen=True)
class RollbackResult:
    """What a rollback changed (or, dry, would change) and how long it took."""

    checkpoint_id: str
    restored: int
    deleted: int
    created_dirs: int
    relinked: int
    attrs: int
    databases: int
    duration_s: float
    dry_run: bool
    resumed: bool
    changes: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    git_moved: tuple[str, ...] = ()

    @property
    def changed(self) -> int:
        return self.restored + self.deleted + self.created_dirs + self.relinked + self.attrs


def _exclude(store: Store, manifest: Manifest) -> set[str]:
    return {str(store.path)} | {c for d in manifest.databases for c in db_companions(d.path)}


def plan(store: Store, manifest: Manifest) -> list[RootPlan]:
    """The changes that would bring every root back to `manifest`."""
    exclude = _exclude(store, manifest)
    return [
        plan_root(r, index=Index.load(store.index_dir, r.path), exclude=exclude)
        for r in manifest.roots
    ]


def rollback(
    store: Store, ref: str | None = None, *, dry_run: bool = False, resume: bool = False
) -> RollbackResult:
    """Roll back to checkpoint `ref`, or with `resume` finish an interrupted rollback."""
    store.require()
    started = store.clock.monotonic()
    with store.lock(), no_gc():
        pending = store.pending_rollback()
        if resume:
            if pending is None:
                raise NotFound(f"no interrupted rollback in {store.path}")
            ref = pending
        elif pending is not None and not dry_run:
            raise UserError(
                f"a rollback to {pending} was interrupted; run `medic rollback --resume` first"
            )
        if ref is None:
            raise UserError("name the checkpoint to roll back to")
        manifest = store.get(ref)
        plans = plan(store, manifest)
        if dry_run:
            return _result(manifest, plans, store, started, dry_run=True, resumed=False)
        try:
            with no_space_guard(store.path):
                _apply(store, manifest, plans)
        except MedicError as exc:
            _failed(store, manifest, exc)
            raise
        except OSError as exc:
            _failed(store, manifest, exc)
            raise EnvironmentFault(f"rollback to {manifest.id} stopped: {exc}") from exc
        result = _result(manifest, plans, store, started, dry_run=False, resumed=resume)
    if store.bus is not None:
        store.bus.publish(
            RollbackCompleted(
                checkpoint_id=manifest.id,
                store=str(store.path),
                restored=result.restored,
                deleted=result.deleted,
                databases=result.databases,
                duration_s=result.duration_s,
                resumed=resume,
                at=store.clock.now(),
            )
        )
    return result


def resume_pending(store: Store) -> RollbackResult | None:
    """Finish an interrupted rollback if there is one (what `medic up` calls at start)."""
    if not store.exists() or store.pending_rollback() is None:
        return None
    return rollback(store, resume=True)


def _failed(store: Store, manifest: Manifest, exc: BaseException) -> None:
    if store.bus is not None:
        store.bus.publish(RollbackFailed(manifest.id, str(store.path), str(exc), store.clock.now()))


def _result(
    manifest: Manifest,
    plans: list[RootPlan],
    store: Store,
    started: float,
    *,
    dry_run: bool,
    resumed: bool,
) -> RollbackResult:
    changes: list[tuple[str, str]] = []
    for p in plans:
        changes += [(what, os.path.join(p.root.path, path)) for what, path in p.changes()]
    moved = []
    for r in manifest.roots:
        now = git_head(r.path)
        if r.git and now and r.git.get("commit") != now.get("commit"):
            moved.append(f"{r.path}: git HEAD is {now['commit'][:12]}, was {r.git['commit'][:12]}")
    return RollbackResult(
        checkpoint_id=manifest.id,
        restored=sum(len(p.restore) for p in plans),
        deleted=sum(len(p.remove) for p in plans),
        created_dirs=sum(len(p.mkdirs) for p in plans),
        relinked=sum(len(p.links) for p in plans),
        attrs=sum(len(p.attrs) for p in plans),
        databases=len(manifest.databases),
        duration_s=store.clock.monotonic() - started,
        dry_run=dry_run,
        resumed=resumed,
        changes=tuple(changes[:_SHOW]),
        git_moved=tuple(moved),
    )


def _apply(store: Store, manifest: Manifest, plans: list[RootPlan]) -> None:
    journaled = store.journal.exists()
    work = bool(manifest.databases) or not all(p.empty for p in plans)
    if work and not journaled:  # a no-op rollback changes nothing a crash could leave half-done
        doc = {"checkpoint": manifest.id, "started_at": store.clock.now().isoformat()}
        atomic_write(store.journal, json.dumps(doc).encode())
        journaled = True
    for p in plans:
        if not p.empty:
            _apply_root(store, p)
        elif p.index_dirty:
            p.scan.index.save(store.index_dir)
    for db in manifest.databases:
        _restore_database(store.blobs, db.digest, db.path)
    if journaled:
        store.journal.unlink()
        fsync_dir(store.path)


def _apply_root(store: Store, p: RootPlan) -> None:
    expected: dict[str, tuple[tuple[int, int, int, int], str]] = dict(p.scan.index.entries.items())
    with DirFds(p.root.path) as fds:
        for e in p.remove:
            _remove(fds, e, store)
            expected.pop(e.path, None)
        for e in p.mkdirs:
            parent, name = _split(e.path)
            os.mkdir(name, 0o700, dir_fd=fds.open(parent))
            os.chmod(name, e.mode, dir_fd=fds.open(parent), follow_symlinks=False)
        for e in p.links:
            parent, name = _split(e.path)
            pfd = fds.open(parent)
            tmp = tmp_name()
            os.symlink(e.target, tmp, dir_fd=pfd)
            os.rename(tmp, name, src_dir_fd=pfd, dst_dir_fd=pfd)
        for e in p.attrs:
            parent, name = _split(e.path)
            pfd = fds.open(parent)
            os.chmod(name, e.mode, dir_fd=pfd, follow_symlinks=False)
            if e.type == FILE:
                os.utime(name, ns=(e.mtime_ns, e.mtime_ns), dir_fd=pfd, follow_symlinks=False)
                st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
                expected[e.path] = (stat_key(st), e.digest)
        dir_fds = {e.path: fds.open(_split(e.path)[0]) for e in p.restore}
        with ThreadPoolExecutor(max_workers=WORKERS * 2) as pool:
            futures = [
                pool.submit(
                    write_file, store.blobs, dir_fds[e.path], _split(e.path)[1], e, durable=False
                )
                for e in p.restore
            ]
            for e, fut in zip(p.restore, futures, strict=True):
                expected[e.path] = (stat_key(fut.result()), e.digest)
        # the files' data before the directories, both before the index and the journal's end
        # say the rollback is done; a power cut before that leaves files that resume re-hashes
        own = sum(e.size for e in p.restore)
        one_fs = fds.one_filesystem()  # syncfs flushes one filesystem: not a mount below root
        if one_fs and (len(p.restore) > _FSYNC_EACH or syncfs_is_cheap(own)):
            syncfs(p.root.path)  # the files and every directory entry change with them
        else:
            _fsync_restored([(dir_fds[e.path], _split(e.path)[1]) for e in p.restore])
            fds.fsync_all()
    _verify_root(p)
    # keep the pre-scan's stamp: a file edited since has a newer mtime, so it counts as racy
    wanted = _wanted(p)
    p.scan.index.entries = {k: v for k, v in expected.items() if k in wanted}
    p.scan.index.save(store.index_dir)


def _fsync_restored(files: list[tuple[int, str]]) -> None:
    """fsync files by (directory fd, name), concurrently, never through a planted symlink."""

    def one(where: tuple[int, str]) -> None:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        fd = os.open(where[1], flags, dir_fd=where[0])
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    with ThreadPoolExecutor(max_workers=WORKERS * 2) as pool:
        list(pool.map(one, files))


def _split(path: str) -> tuple[str, str]:
    parent, _, name = path.rpartition("/")
    return parent, name


def _remove(fds: DirFds, e: Entry, store: Store) -> None:
    parent, name = _split(e.path)
    pfd = fds.open(parent)
    full = os.path.join(fds.root, e.path)
    if (str(store.path) + "/").startswith(full + "/"):
        raise UserError(f"refusing to remove {full}: the checkpoint store lives there")
    st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
    if stat.S_ISDIR(st.st_mode):
        fds.forget(e.path)
        shutil.rmtree(name, dir_fd=pfd)
    else:
        os.unlink(name, dir_fd=pfd)


def write_file(
    blobs: BlobStore, dir_fd: int, name: str, e: Entry, *, durable: bool = True
) -> os.stat_result:
    """Write blob `e.digest` as `name` in `dir_fd` (tmp + fsync + rename); its stat after.

    The bytes are hashed as they are written and checked against the digest
    before the rename, so a damaged blob never replaces a file. They are not
    read back: right after the write that would only re-read the same page
    cache, at the cost of a third hash of every restored byte. A file swapped
    in by someone else between the rename and the stat is refused, so the
    index never credits another inode with this content.

    With `durable=False` the fsync is only started (`start_writeback`): the caller
    then makes the whole batch durable at once, before anything records it as done.
    """
    tmp = tmp_name()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dir_fd)
    try:
        h = hashlib.sha256()
        written = 0
        try:
            for chunk in blobs.chunks(e.digest):
                h.update(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
                written += len(chunk)
            if h.hexdigest() != e.digest:
                raise StoreCorrupt(f"blob {e.digest} does not hash to its name; run verify")
            os.fchmod(fd, e.mode)
            os.utime(fd, ns=(e.mtime_ns, e.mtime_ns))
            if durable:
                os.fsync(fd)
            elif written >= WRITEBACK_FROM:  # small files are merged by the caller's flush
                start_writeback(fd)
            ino = os.fstat(fd).st_ino
        finally:
            os.close(fd)
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)  # the rename moved the ctime
    if st.st_ino != ino:
        raise EnvironmentFault(f"{name} was replaced by another process while it was restored")
    return st


def _wanted(p: RootPlan) -> set[str]:
    return {e.path for e in p.root.entries if e.type == FILE}


def _verify_root(p: RootPlan) -> None:
    """Check every path the plan touched; the rest was just stat-checked by the plan itself.

    Restored files were hashed as `write_file` wrote them; here removed paths
    must be gone (unless re-created as another type), created directories and
    symlinks must be what the checkpoint says, and attributes must match.
    """
    base = p.root.path
    want = {e.path: e for e in p.root.entries}
    problems = []
    for e in p.remove:
        full = os.path.join(base, e.path)
        if e.path not in want and os.path.lexists(full):
            problems.append(f"{full} still exists")
    for e in [*p.mkdirs, *p.links, *p.attrs, *p.restore]:
        full = os.path.join(base, e.path)
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            problems.append(f"{full} is missing")
            continue
        if e.type == "l":
            if not stat.S_ISLNK(st.st_mode) or os.readlink(full) != e.target:
                problems.append(f"{full} is not the symlink to {e.target}")
        elif e.type == "d" and not stat.S_ISDIR(st.st_mode):
            problems.append(f"{full} is not a directory")
        elif e.type != "l" and stat.S_IMODE(st.st_mode) != e.mode:
            problems.append(f"{full} has mode {stat.S_IMODE(st.st_mode):o}, not {e.mode:o}")
    if problems:
        raise EnvironmentFault(f"{base} differs from the checkpoint after rollback: {problems[:5]}")


def _restore_database(blobs: BlobStore, digest: str, live: str) -> None:
    path = blobs.path(digest)
    if path is None:
        raise StoreCorrupt(f"database snapshot {digest} is missing from {blobs.root}")
    if path.suffix != ".zst":
        restore_db(path, live)
        check_db(live)
        return
    with tempfile.TemporaryDirectory(dir=blobs.tmp) as scratch:
        raw = Path(scratch) / "db"
        with open(raw, "wb") as out:
            for chunk in blobs.chunks(digest):
                out.write(chunk)
        restore_db(raw, live)
    check_db(live)
