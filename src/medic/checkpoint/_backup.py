"""Backups into a repository directory, their verification, restore and restore test.

A repository is a checkpoint store somewhere else (another disk, a mount), so
one format serves both. A full backup re-reads every file; an incremental one
re-reads only what the stat index cannot vouch for; both are complete snapshots
that share blobs. A repository may come from elsewhere, so restore treats its
manifests as hostile: every path is validated before the first byte is written,
and writes go through O_NOFOLLOW directory descriptors inside the target.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from medic.checkpoint._fs import DirFds, Progress, fsync_dir, no_space_guard
from medic.checkpoint._maintain import verify_blobs
from medic.checkpoint._manifest import DIR, FILE, LINK, Entry, Manifest, link_escapes
from medic.checkpoint._rollback import write_file
from medic.checkpoint._scan import hash_file, walk
from medic.checkpoint._sqlite import check_db
from medic.checkpoint._store import Store
from medic.errors import InvalidInput, MedicError, NotFound
from medic.events import BackupCreated, BackupFailed, BackupTested, BackupVerified, RestoreCompleted

__all__ = ["RestoreResult", "create_backup", "restore", "restore_test", "verify_backups"]


def create_backup(
    repo: Store,
    paths: Sequence[str | Path],
    *,
    dbs: Sequence[str | Path] = (),
    full: bool = False,
    name: str = "",
    schedule: str = "",
    progress: Progress | None = None,
) -> Manifest:
    """Snapshot `paths` and `dbs` into the repository; the first one is always full."""
    first = not repo.exists() or not repo.checkpoints()
    kind = "full" if full or first else "incremental"
    try:
        m = repo.create(
            paths, dbs=dbs, name=name, kind=kind, rehash_all=kind == "full", progress=progress
        )
    except MedicError as exc:
        if repo.bus is not None:
            repo.bus.publish(BackupFailed(str(repo.path), str(exc), repo.clock.now(), schedule))
        raise
    if repo.bus is not None:
        repo.bus.publish(
            BackupCreated(
                snapshot_id=m.id,
                repo=str(repo.path),
                kind=kind,
                files=m.files,
                bytes=m.size,
                new_bytes=int(m.stats.get("new_bytes", 0)),
                duration_s=m.stats.get("duration_s", 0.0),
                at=m.created_at,
                schedule=schedule,
            )
        )
    return m


def verify_backups(
    repo: Store, snapshot: str | None = None, *, progress: Progress | None = None
) -> tuple[list[Manifest], list[str], int]:
    """Re-hash every blob of one snapshot (or all); returns (snapshots, problems, blobs)."""
    repo.require()
    with repo.lock():
        manifests = [repo.get(snapshot)] if snapshot else repo.checkpoints()
        if not manifests:
            raise NotFound(f"no backups in {repo.path}")
        result = verify_blobs(repo, manifests, progress=progress)
        bad = {p.split()[1] for p in result.problems}
        for m in manifests:
            repo.mark_verified(m.id, ok=not (m.digests() & bad))
    if repo.bus is not None:
        repo.bus.publish(
            BackupVerified(
                repo=str(repo.path),
                snapshots=tuple(m.id for m in manifests),
                blobs=result.checked,
                bad_blobs=tuple(sorted(bad)),
                ok=result.ok,
                duration_s=result.duration_s,
                at=repo.clock.now(),
            )
        )
    return manifests, list(result.problems), result.checked


@dataclass(frozen=True)
class RestoreResult:
    """What a restore wrote (or, dry, would write) and where."""

    snapshot_id: str
    target: str
    files: int
    dirs: int
    links: int
    databases: int
    bytes: int
    duration_s: float
    dry_run: bool


def _layout(m: Manifest) -> list[tuple[str, tuple[Entry, ...]]]:
    """Where each root lands under the target: directly when alone, else under its label."""
    if len(m.roots) == 1 and not m.databases:
        return [("", m.roots[0].entries)]
    return [(r.label, r.entries) for r in m.roots]


def _check_restorable(m: Manifest) -> None:
    for r in m.roots:
        for e in r.entries:
            if e.type == LINK and link_escapes(e.path, e.target):
                raise InvalidInput(
                    f"snapshot {m.id}: symlink {e.path!r} -> {e.target!r} escapes the target"
                )


def restore(
    repo: Store,
    snapshot: str,
    target: str | Path,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> RestoreResult:
    """Restore a snapshot into an empty or new directory, refusing anything unsafe."""
    started = repo.clock.monotonic()
    repo.require()
    m = repo.get(snapshot)
    _check_restorable(m)
    dest = Path(os.path.abspath(target))
    if dest.is_symlink():
        raise InvalidInput(f"--target {dest} is a symlink; give a real directory")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InvalidInput(f"--target {dest} is not empty; restore into a new directory")
    entries = [e for _, es in _layout(m) for e in es]
    result = RestoreResult(
        snapshot_id=m.id,
        target=str(dest),
        files=sum(1 for e in entries if e.type == FILE),
        dirs=sum(1 for e in entries if e.type == DIR),
        links=sum(1 for e in entries if e.type == LINK),
        databases=len(m.databases),
        bytes=m.size,
        duration_s=0.0,
        dry_run=dry_run,
    )
    if dry_run:
        return result
    created = not dest.exists()
    try:
        with no_space_guard(dest):
            dest.mkdir(parents=True, exist_ok=True)
            _write_all(repo, m, dest, progress)
    except BaseException:
        if created:
            shutil.rmtree(dest, ignore_errors=True)
        raise
    duration = repo.clock.monotonic() - started
    if repo.bus is not None:
        repo.bus.publish(
            RestoreCompleted(
                m.id, str(repo.path), str(dest), result.files, duration, repo.clock.now()
            )
        )
    return RestoreResult(**{**result.__dict__, "duration_s": duration})


def _write_all(repo: Store, m: Manifest, dest: Path, progress: Progress | None) -> None:
    total, done = m.size, 0
    with DirFds(dest) as fds:
        dir_modes: list[tuple[str, int]] = []
        for base, entries in _layout(m):
            if base:
                fds.open(base, create=True, mode=0o700)
                dir_modes.append((base, 0o755))
            for e in entries:
                rel = f"{base}/{e.path}" if base else e.path
                parent, _, name = rel.rpartition("/")
                if e.type == DIR:
                    fds.open(rel, create=True, mode=0o700)
                    dir_modes.append((rel, e.mode))
                elif e.type == FILE:
                    write_file(repo.blobs, fds.open(parent), name, e)
                    done += e.size
                    if progress is not None:
                        progress(done, total)
                else:
                    os.symlink(e.target, name, dir_fd=fds.open(parent))
        for db in m.databases:
            stamp = int(m.created_at.timestamp() * 1e9)
            entry = Entry(db.label, FILE, 0o600, db.size, stamp, db.digest)
            write_file(repo.blobs, fds.root_fd, db.label, entry)
        for rel, mode in sorted(dir_modes, key=lambda x: -x[0].count("/")):
            parent, _, name = rel.rpartition("/")
            os.chmod(name, mode, dir_fd=fds.open(parent), follow_symlinks=False)
        fds.fsync_all()
    fsync_dir(dest.parent)


def restore_test(
    repo: Store, snapshot: str | None = None, *, scratch: str | Path | None = None
) -> tuple[Manifest, list[str]]:
    """Restore a snapshot (default: the newest) into a scratch directory and compare it."""
    repo.require()
    m = repo.get(snapshot or "latest")
    started = repo.clock.monotonic()
    base = Path(tempfile.mkdtemp(prefix="medic-restore-test-", dir=scratch))
    problems: list[str] = []
    try:
        dest = base / "t"
        restore(repo, m.id, dest)
        for label, entries in _layout(m):
            problems += _compare(dest / label if label else dest, entries)
        for db in m.databases:
            try:
                check_db(str(dest / db.label))
            except MedicError as exc:
                problems.append(str(exc))
    except MedicError as exc:
        problems.append(f"restore failed: {exc}")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    with repo.lock():
        repo.mark_verified(m.id, ok=not problems)
    if repo.bus is not None:
        repo.bus.publish(
            BackupTested(
                m.id,
                str(repo.path),
                not problems,
                m.files,
                tuple(problems[:20]),
                repo.clock.monotonic() - started,
                repo.clock.now(),
            )
        )
    return m, problems


def _compare(root: Path, entries: tuple[Entry, ...]) -> list[str]:
    found, _ = walk(str(root))
    have = dict(found)
    problems = [f"unexpected {p}" for p in sorted(have.keys() - {e.path for e in entries})]
    for e in entries:
        d = have.get(e.path)
        if d is None:
            problems.append(f"missing {e.path}")
            continue
        st = d.stat(follow_symlinks=False)
        if e.type == LINK:
            if not stat.S_ISLNK(st.st_mode) or os.readlink(d.path) != e.target:
                problems.append(f"wrong symlink {e.path}")
        elif e.type == DIR:
            if not stat.S_ISDIR(st.st_mode):
                problems.append(f"not a directory: {e.path}")
        elif hash_file(d.path).digest != e.digest or stat.S_IMODE(st.st_mode) != e.mode:
            problems.append(f"content or mode differs: {e.path}")
    return problems
