"""A checkpoint store (also a backup repository): blobs, manifests, indexes, one lock.

Layout under the store directory::

    medic-store.json     marks the directory as a store (format version)
    lock                 flock'ed by whoever writes; released by the kernel on kill -9
    objects/ab/<sha256>  blobs (see _blobs); objects/tmp/ holds half-written ones
    manifests/<id>.json  one per checkpoint, written last (see _manifest)
    index/<root>.json    stat cache per checkpointed root (see _scan)
    verified/<id>.json   when a backup snapshot was last verified (for the RPO)
    rollback.journal     present only while a rollback is unfinished
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import operator
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from medic.bus import Bus
from medic.checkpoint._blobs import BlobStore
from medic.checkpoint._fs import (
    Progress,
    atomic_write,
    fsync_paths,
    no_space_guard,
    syncfs,
    syncfs_is_cheap,
)
from medic.checkpoint._git import git_head
from medic.checkpoint._manifest import Database, Manifest, Root, parse
from medic.checkpoint._scan import Index, no_gc, scan_tree
from medic.checkpoint._sqlite import capture_db
from medic.clock import Clock, system_clock
from medic.errors import EnvironmentFault, InvalidInput, NotFound, UserError
from medic.events import CheckpointCreated

__all__ = ["Store", "db_companions"]

MARKER = "medic-store.json"
STORE_FORMAT = 1
_CACHE = 16
_PARENT_SCAN = 50
_FSYNC_EACH = 1000
_ID_FIELDS = operator.attrgetter("path", "digest", "mode")


def db_companions(path: str) -> list[str]:
    """A database file and the journal files SQLite keeps beside it."""
    return [path, path + "-wal", path + "-shm", path + "-journal"]


class Store:
    """One directory of checkpoints; every writer holds its lock."""

    def __init__(
        self, path: str | Path, *, clock: Clock = system_clock, bus: Bus | None = None
    ) -> None:
        self.path = Path(os.path.abspath(path))
        self.clock = clock
        self.bus = bus
        self.blobs = BlobStore(self.path / "objects")
        self.manifests = self.path / "manifests"
        self.index_dir = self.path / "index"
        self.verified_dir = self.path / "verified"
        self.journal = self.path / "rollback.journal"
        self._cache: dict[tuple[str, int, int, int], Manifest] = {}

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # -- opening and locking -------------------------------------------------

    def exists(self) -> bool:
        return (self.path / MARKER).is_file()

    def init(self) -> None:
        """Create the store, refusing a non-empty directory that is not one already."""
        if self.exists():
            self._dirs()
            return
        if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            raise InvalidInput(f"{self.path} exists and is not a medic store; choose another")
        with no_space_guard(self.path):
            self.path.mkdir(parents=True, exist_ok=True)
            self._dirs()
            atomic_write(self.path / MARKER, json.dumps({"format": STORE_FORMAT}).encode())

    def _dirs(self) -> None:
        for d in (self.manifests, self.index_dir, self.verified_dir):
            d.mkdir(exist_ok=True)
        self.blobs.ensure()

    def require(self) -> None:
        if not self.exists():
            raise NotFound(f"no checkpoint store at {self.path}")

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the store's write lock; a second writer fails at once with a clear error."""
        fd = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise EnvironmentFault(
                    f"store {self.path} is busy: another medic process holds its lock"
                ) from exc
            self.blobs.clean_tmp()
            yield
        finally:
            os.close(fd)

    # -- reading -------------------------------------------------------------

    def checkpoints(self) -> list[Manifest]:
        """Every checkpoint, oldest first."""
        if not self.manifests.is_dir():
            return []
        out = [self.load_file(p) for p in self.manifests.glob("*.json")]
        return sorted(out, key=lambda m: (m.created_at, m.id))

    def load_file(self, path: Path) -> Manifest:
        """Parse (and validate) a manifest, remembering the last few: they never change."""
        st = path.stat()
        key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
        hit = self._cache.get(key)
        if hit is None:
            hit = parse(path.read_bytes(), origin=str(path))
            self._cache_put(key, hit)
        return hit

    def _remember(self, path: Path, manifest: Manifest) -> None:
        st = path.stat()
        self._cache_put((str(path), st.st_ino, st.st_size, st.st_mtime_ns), manifest)

    def _cache_put(self, key: tuple[str, int, int, int], manifest: Manifest) -> None:
        if len(self._cache) >= _CACHE:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = manifest

    def get(self, ref: str) -> Manifest:
        """A checkpoint by id, unique id prefix, name (newest wins) or 'latest'."""
        self.require()
        exact = self.manifests / f"{ref}.json"
        if "/" not in ref and exact.is_file():
            return self.load_file(exact)
        every = self._headers()
        if ref == "latest" and every:
            return self.load_file(every[-1][3])
        named = [h for h in every if h[2] == ref]
        if named:
            return self.load_file(named[-1][3])
        prefixed = [h for h in every if h[1].startswith(ref)]
        if len(prefixed) == 1:
            return self.load_file(prefixed[0][3])
        if len(prefixed) > 1:
            raise InvalidInput(f"{ref!r} matches {len(prefixed)} checkpoints; give more of the id")
        raise NotFound(f"no checkpoint {ref!r} in {self.path}")

    def _headers(self) -> list[tuple[datetime, str, str, Path]]:
        """(created_at, id, name, file) of every checkpoint, oldest first, for `get`.

        Resolving a name or prefix needs only these three fields; a full `parse`
        validates and builds an entry object for every path of every checkpoint
        (seconds for a CLI call with dozens of 10,000-file checkpoints). Anything
        unexpected falls back to that full parse, which then reports the problem.
        """
        if not self.manifests.is_dir():
            return []
        out = []
        for p in self.manifests.glob("*.json"):
            st = p.stat()
            key = (str(p), st.st_ino, st.st_size, st.st_mtime_ns)
            hit = self._cache.get(key)
            if hit is not None:
                out.append((hit.created_at, hit.id, hit.name, p))
                continue
            try:
                doc = json.loads(p.read_bytes())
                head = (
                    datetime.fromisoformat(str(doc["created_at"])),
                    str(doc["id"]),
                    str(doc.get("name", "")),
                    p,
                )
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                m = self.load_file(p)
                head = (m.created_at, m.id, m.name, p)
            out.append(head)
        return sorted(out, key=lambda h: (h[0], h[1]))

    def pending_rollback(self) -> str | None:
        """The checkpoint id of an interrupted rollback, if one is waiting for --resume."""
        try:
            return str(json.loads(self.journal.read_bytes())["checkpoint"])
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            return "unreadable-journal"

    # -- writing -------------------------------------------------------------

    def create(
        self,
        paths: Sequence[str | Path],
        *,
        name: str = "",
        dbs: Sequence[str | Path] = (),
        kind: str = "checkpoint",
        rehash_all: bool = False,
        progress: Progress | None = None,
    ) -> Manifest:
        """Checkpoint `paths` (directories) and SQLite `dbs`; the manifest is written last."""
        roots = _resolve_roots(paths)
        db_paths = [os.path.realpath(d) for d in dbs]
        if not roots and not db_paths:
            raise InvalidInput("nothing to checkpoint: give at least one PATH or --db")
        self.init()
        started = self.clock.monotonic()
        with self.lock():
            pending = self.pending_rollback()
            if pending is not None:
                raise UserError(
                    f"a rollback to {pending} was interrupted; run `medic rollback --resume` first"
                )
            self.blobs.written.clear()
            try:
                with no_space_guard(self.path), no_gc():
                    return self._create(
                        roots,
                        db_paths,
                        name=name,
                        kind=kind,
                        rehash_all=rehash_all,
                        progress=progress,
                        started=started,
                    )
            except BaseException:
                self.blobs.discard_written()
                raise

    def _create(
        self,
        roots: list[str],
        db_paths: list[str],
        *,
        name: str,
        kind: str,
        rehash_all: bool,
        progress: Progress | None,
        started: float,
    ) -> Manifest:
        exclude = {str(self.path)} | {c for d in db_paths for c in db_companions(d)}
        labels = _labels([*roots, *db_paths])
        built: list[Root] = []
        indexes: list[Index] = []
        totals = {"hashed_files": 0.0, "hashed_bytes": 0.0, "new_bytes": 0.0, "skipped": 0.0}
        previous = self._previous(roots)
        before = {r.path: r for r in previous.roots} if previous else {}
        for root, label in zip(roots, labels, strict=False):
            prev_root = before.get(root)
            scan = scan_tree(
                root,
                blobs=self.blobs,
                index=Index(root) if rehash_all else Index.load(self.index_dir, root),
                exclude=exclude,
                rehash_all=rehash_all,
                progress=progress,
                # unchanged files keep the previous checkpoint's entry objects, not new ones
                reuse={e.path: e for e in prev_root.entries} if prev_root else None,
            )
            built.append(Root(root, label, tuple(scan.entries), git_head(root)))
            indexes.append(scan.index)
            totals["hashed_files"] += scan.hashed_files
            totals["hashed_bytes"] += scan.hashed_bytes
            totals["new_bytes"] += scan.new_bytes
            totals["skipped"] += len(scan.skipped)
        databases = []
        for db, label in zip(db_paths, labels[len(roots) :], strict=True):
            tmp = self.blobs.tmp / f"db-{label}"
            digest, size = capture_db(db, tmp)
            if self.blobs.adopt(tmp, digest):
                totals["new_bytes"] += size
            databases.append(Database(db, label, digest, size))
        self._make_blobs_durable(int(totals["new_bytes"]))
        created = self.clock.now()
        totals["duration_s"] = self.clock.monotonic() - started
        manifest = Manifest(
            id=self._new_id(created, built, databases),
            name=name,
            kind=kind,
            created_at=created,
            roots=tuple(built),
            databases=tuple(databases),
            parent=previous.id if previous else None,
            stats=totals,
        )
        published = self.manifests / f"{manifest.id}.json"
        atomic_write(published, manifest.encode())
        self._remember(published, manifest)  # the rollback or next checkpoint needs no re-parse
        self.blobs.written.clear()  # named by a published manifest now: never discard them
        for index in indexes:
            try:
                index.save(self.index_dir)
            except OSError:  # a cache: without it the next checkpoint just re-hashes
                Index.file_for(self.index_dir, index.root).unlink(missing_ok=True)
        if self.bus is not None and kind == "checkpoint":
            self.bus.publish(
                CheckpointCreated(
                    checkpoint_id=manifest.id,
                    name=name,
                    kind=kind,
                    store=str(self.path),
                    files=manifest.files,
                    bytes=manifest.size,
                    new_bytes=int(totals["new_bytes"]),
                    duration_s=totals["duration_s"],
                    at=created,
                )
            )
        return manifest

    def _make_blobs_durable(self, new_bytes: int) -> None:
        """Before a manifest names them, new blobs must be on disk.

        Many, or a few while the machine holds little other dirty data, are
        flushed by one syncfs; otherwise the few are fsync'ed one by one (with
        their shard directories), since a syncfs would then wait for everyone
        else's writes too.
        """
        written = [str(p) for p in self.blobs.written]
        one_fs = os.stat(self.path).st_dev == os.stat(self.blobs.root).st_dev
        if one_fs and (len(written) > _FSYNC_EACH or (written and syncfs_is_cheap(new_bytes))):
            syncfs(self.blobs.root)
        elif written:
            fsync_paths(written + sorted({os.path.dirname(p) for p in written}))

    def _previous(self, roots: list[str]) -> Manifest | None:
        """The newest checkpoint of the same roots (ids sort by creation time)."""
        for f in sorted(self.manifests.glob("*.json"), reverse=True)[:_PARENT_SCAN]:
            m = self.load_file(f)
            if [r.path for r in m.roots] == roots:
                return m
        return None

    def _new_id(self, created: datetime, roots: list[Root], dbs: list[Database]) -> str:
        h = hashlib.sha256(created.isoformat().encode())
        for r in roots:
            h.update(r.path.encode())
            h.update(json.dumps(list(map(_ID_FIELDS, r.entries))).encode())
        for d in dbs:
            h.update(d.digest.encode())
        base = f"{created:%Y%m%dT%H%M%SZ}-{h.hexdigest()[:8]}"
        candidate, n = base, 1
        while (self.manifests / f"{candidate}.json").exists():
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def mark_verified(self, manifest_id: str, *, ok: bool) -> None:
        """Remember when a snapshot was last verified, which is what the RPO is measured from."""
        doc = {"id": manifest_id, "ok": ok, "verified_at": self.clock.now().isoformat()}
        atomic_write(self.verified_dir / f"{manifest_id}.json", json.dumps(doc).encode())

    def verified_at(self, manifest_id: str) -> datetime | None:
        try:
            doc = json.loads((self.verified_dir / f"{manifest_id}.json").read_bytes())
        except (OSError, ValueError):
            return None
        return datetime.fromisoformat(doc["verified_at"]) if doc.get("ok") else None


def _resolve_roots(paths: Sequence[str | Path]) -> list[str]:
    roots: list[str] = []
    for p in paths:
        real = os.path.realpath(p)
        if not os.path.isdir(real):
            raise InvalidInput(f"{p}: not a directory (use --db for a SQLite file)")
        roots.append(real)
    for a in roots:
        for b in roots:
            if a != b and (b + "/").startswith(a.rstrip("/") + "/"):
                raise InvalidInput(f"{b} lies inside {a}; give each directory once")
    if len(set(roots)) != len(roots):
        raise InvalidInput("the same directory was given twice")
    return roots


def _labels(paths: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for p in paths:
        base = os.path.basename(p.rstrip("/")) or "root"
        n = seen.get(base, 0) + 1
        seen[base] = n
        out.append(base if n == 1 else f"{base}-{n}")
    return out
