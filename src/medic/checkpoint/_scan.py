"""Walking a tree and deciding, by stat alone, which files need hashing.

The index remembers (size, mtime_ns, ino, ctime_ns) and the hash of every file
seen, so a later checkpoint reads only what changed. Two traps are avoided:
rsync's whole-second quick check (a same-size edit in the same second is
missed) by comparing nanoseconds and the inode and ctime too; and git's "racy"
file, edited within one filesystem timestamp tick of being stat'ed, whose
stat then does not change, by re-hashing any entry whose mtime is within
RACY_NS of the moment the index was taken.

Only the mtime decides racy, as in git: an edit sets mtime to the current
tick, so a file whose recorded mtime is older than the window cannot be
edited without its key changing. A recent ctime alone (chmod, rename, the
utime of a file rollback just restored with its old mtime) says nothing about
the content; counting it made every file a rollback restores be re-hashed by
the next look at the tree.
"""

from __future__ import annotations

import gc
import hashlib
import itertools
import json
import operator
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from medic.checkpoint._blobs import BlobStore, FileChanged, Stored
from medic.checkpoint._fs import TMP_PREFIX, Progress, atomic_write
from medic.checkpoint._manifest import DIR, FILE, LINK, Entry
from medic.errors import EnvironmentFault

__all__ = ["RACY_NS", "Index", "Scan", "hash_file", "no_gc", "scan_tree"]

RACY_NS = 100_000_000
"""Filesystem timestamps come from a coarse clock (a kernel tick, 1-10 ms) that can
lag the real time; 100 ms leaves a wide margin at the cost of re-hashing files
touched in the last tenth of a second before an index was written."""

SKIP_NAMES = frozenset({".git", ".medic"})
WORKERS = 4
_BATCH = 64  # files per worker task: see `in_batches`
LIST_ABOVE = 1000
"""Storing more files than this, one listing of the store beats two stats per file."""
_RETRIES = 3
_ONE_READ = 4 << 20
_HASH_CHUNK = 1 << 20
_NEVER_BITS = stat.S_ISUID | stat.S_ISGID
"""setuid/setgid are never recorded, so no rollback or restore can plant them."""

Key = tuple[int, int, int, int]
_PATH = operator.attrgetter("path")


T = TypeVar("T")
R = TypeVar("R")


def in_batches(
    items: list[T], work: Callable[[list[T]], list[R]]
) -> Iterator[tuple[list[T], list[R]]]:
    """`work` over runs of `_BATCH` items on the worker threads, results in order.

    One task per file spent more time handing futures between threads (and fighting
    for the GIL to do it) than hashing or storing a small file: batches of 64 took
    verify of the bench tree from about 1.3 s to 0.7 s on two cores.
    """
    batches = [items[i : i + _BATCH] for i in range(0, len(items), _BATCH)]
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        yield from zip(batches, pool.map(work, batches), strict=True)


@contextmanager
def no_gc() -> Iterator[None]:
    """Hold off Python's cycle collector while a checkpoint or rollback runs.

    They allocate a few tuples per path, and the collector then repeatedly
    traverses every object alive in the process (cached manifests and indexes:
    several per 10,000 paths), about a fifth of a 1,000-file rollback's time.
    They create no cycles that need collecting meanwhile; the collector is
    switched back on (if it was on) at the end, whatever happens.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def stat_key(st: os.stat_result) -> Key:
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


@dataclass
class Index:
    """What one store knows about one root: stat key and hash per file, and when it looked."""

    root: str
    stamp_ns: int = 0
    entries: dict[str, tuple[Key, str]] = field(default_factory=dict)

    def known(self, rel: str, st: os.stat_result) -> str | None:
        """The file's hash when its stat proves it unchanged, else None (hash it again)."""
        hit = self.entries.get(rel)
        if hit is None or hit[0] != stat_key(st):
            return None
        if st.st_mtime_ns >= self.stamp_ns - RACY_NS:
            return None
        return hit[1]

    @staticmethod
    def file_for(index_dir: Path, root: str) -> Path:
        return index_dir / (hashlib.sha256(root.encode()).hexdigest()[:24] + ".json")

    @classmethod
    def load(cls, index_dir: Path, root: str) -> Index:
        """The stored index, or an empty one: the index is a cache, never the truth.

        The last few are kept parsed in memory, keyed by the file's bytes: reading
        and comparing them costs far less than parsing 10,000 entries of JSON again
        for every checkpoint or rollback made in one process (`medic up`, the API).
        """
        path = cls.file_for(index_dir, root)
        try:
            raw = path.read_bytes()
            hit = _LOADED.get(str(path))
            if hit is not None and hit[0] == raw and hit[1].root == root:
                return cls(root, hit[1].stamp_ns, dict(hit[1].entries))
            doc = json.loads(raw)
            if doc["root"] != root:
                return cls(root)
            entries = {k: ((v[0], v[1], v[2], v[3]), v[4]) for k, v in doc["entries"].items()}
            index = cls(root, int(doc["stamp_ns"]), entries)
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return cls(root)
        _remember(str(path), raw, index)
        return cls(root, index.stamp_ns, dict(entries))

    def save(self, index_dir: Path, *, durable: bool = False) -> None:
        """Publish the index whole (tmp + rename); fsync'ed only when asked.

        A cache needs no fsync: after a power cut an old index is still right
        (each entry proves itself by stat key), a torn one reads as empty. Only
        prune needs `durable`, since it must never leave an index that trusts a
        blob it is about to delete.
        """
        doc = {
            "root": self.root,
            "stamp_ns": self.stamp_ns,
            "entries": {k: [*key, h] for k, (key, h) in self.entries.items()},
        }
        path = self.file_for(index_dir, self.root)
        raw = json.dumps(doc, separators=(",", ":")).encode()  # a third faster to write
        atomic_write(path, raw, durable=durable)
        _remember(str(path), raw, Index(self.root, self.stamp_ns, dict(self.entries)))


_LOADED: dict[str, tuple[bytes, Index]] = {}
_LOADED_MAX = 8


def _remember(path: str, raw: bytes, index: Index) -> None:
    _LOADED.pop(path, None)
    if len(_LOADED) >= _LOADED_MAX:
        _LOADED.pop(next(iter(_LOADED)))
    _LOADED[path] = (raw, index)


@dataclass
class Scan:
    """The result of walking one root: entries, the new index, and what it cost."""

    entries: list[Entry]
    index: Index
    hashed_files: int = 0
    hashed_bytes: int = 0
    new_bytes: int = 0
    skipped: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)


def walk(
    root: str, exclude: Iterable[str] = (), leftovers: list[str] | None = None
) -> tuple[list[tuple[str, os.DirEntry[str]]], list[str]]:
    """Every (relative path, DirEntry) below `root`, not following symlinks.

    Skips `.git`, `.medic` and the absolute paths in `exclude` (the store itself
    when it lives inside the tree, captured databases). Returns also the paths
    skipped because they are neither file, dir nor symlink. medic's own temporary
    files (left by a killed rollback) go to `leftovers`, never into a checkpoint.
    """
    excluded = set(exclude)
    # DirEntry.path builds a new string each time: only names that could be excluded pay it
    suspects = SKIP_NAMES | {os.path.basename(x) for x in excluded}
    out: list[tuple[str, os.DirEntry[str]]] = []
    odd: list[str] = []
    stack = [("", root)]
    while stack:
        rel, full = stack.pop()
        try:
            it = os.scandir(full)
        except FileNotFoundError:
            continue
        with it:
            for e in it:
                name = e.name
                if name in suspects and (name in SKIP_NAMES or e.path in excluded):
                    continue
                p = f"{rel}/{name}" if rel else name
                if name.startswith(TMP_PREFIX):
                    if leftovers is not None:
                        leftovers.append(p)
                    continue
                if e.is_dir(follow_symlinks=False):
                    out.append((p, e))
                    stack.append((p, e.path))
                elif e.is_file(follow_symlinks=False) or e.is_symlink():
                    out.append((p, e))
                else:
                    odd.append(p)
    return out, odd


def scan_tree(
    root: str,
    *,
    blobs: BlobStore | None,
    index: Index,
    exclude: Iterable[str] = (),
    rehash_all: bool = False,
    progress: Progress | None = None,
    reuse: Mapping[str, Entry] | None = None,
    ordered: bool = True,
) -> Scan:
    """Describe `root` as entries, hashing (and with `blobs`, storing) only what changed.

    `reuse` maps paths to entries already made (the checkpoint a rollback goes
    back to, or the previous checkpoint): an unchanged file gets that very
    object instead of a new one, which a rollback's plan then recognises by
    identity. `ordered=False` leaves the entries in walk order.
    """
    leftovers: list[str] = []
    found, odd = walk(root, exclude, leftovers)
    entries: list[Entry] = []
    new_index = Index(root)
    todo: list[tuple[str, os.stat_result]] = []
    # the known() test inlined: this loop runs once per path of the tree, for every
    # checkpoint and rollback, and is most of a no-op rollback's time
    known = {} if rehash_all else index.entries
    known_get = known.get
    reuse_get = (reuse or {}).get
    racy_from = index.stamp_ns - RACY_NS
    new_entries = new_index.entries
    append = entries.append
    s_isreg, s_isdir = stat.S_ISREG, stat.S_ISDIR
    keep_bits = 0o7777 & ~_NEVER_BITS
    for rel, e in found:
        st = e.stat(follow_symlinks=False)
        st_mode = st.st_mode
        if s_isreg(st_mode):
            mtime_ns = st.st_mtime_ns
            key = (st.st_size, mtime_ns, st.st_ino, st.st_ctime_ns)
            hit = known_get(rel)
            # an index hit needs no blob check: prune drops index entries with the blobs
            if hit is not None and hit[0] == key and mtime_ns < racy_from:
                digest = hit[1]
                mode = st_mode & keep_bits
                prev = reuse_get(rel)
                if (  # exactly the entry that would be built (a manifest may be foreign)
                    prev is not None
                    and prev.digest == digest
                    and prev.mtime_ns == mtime_ns
                    and prev.mode == mode
                    and prev.size == key[0]
                    and prev.type == FILE
                    and not prev.target
                ):
                    append(prev)
                else:
                    append(Entry(rel, FILE, mode, key[0], mtime_ns, digest))
                new_entries[rel] = hit
            else:
                todo.append((rel, st))
        elif s_isdir(st_mode):
            append(Entry(rel, DIR, st_mode & keep_bits))
        elif stat.S_ISLNK(st_mode):
            append(Entry(rel, LINK, st_mode & keep_bits, target=os.readlink(e.path)))
        else:  # became something else since the walk: a regular file by the old rule
            todo.append((rel, st))
    result = Scan(entries, new_index, skipped=odd, leftovers=leftovers)
    total = sum(st.st_size for _, st in todo)
    done = 0
    listed = blobs.listed() if blobs is not None and len(todo) > LIST_ABOVE else nullcontext()

    def store(batch: list[str]) -> list[Stored | None]:
        return [_store_one(root, name, blobs) for name in batch]

    rels = [rel for rel, _ in todo]
    with listed:
        stored_all = itertools.chain.from_iterable(r for _, r in in_batches(rels, store))
        for rel, stored in zip(rels, stored_all, strict=True):
            if stored is None:
                continue
            st = stored.st
            entries.append(
                Entry(
                    rel,
                    FILE,
                    stat.S_IMODE(st.st_mode) & ~_NEVER_BITS,
                    stored.size,
                    st.st_mtime_ns,
                    stored.digest,
                )
            )
            new_index.entries[rel] = (stat_key(st), stored.digest)
            result.hashed_files += 1
            result.hashed_bytes += stored.size
            result.new_bytes += stored.new_bytes
            done += stored.size
            if progress is not None:
                progress(done, total)
    if ordered:
        entries.sort(key=_PATH)
    new_index.stamp_ns = time.time_ns()
    return result


def _store_one(root: str, rel: str, blobs: BlobStore | None) -> Stored | None:
    path = os.path.join(root, rel)
    for _ in range(_RETRIES):
        try:
            if blobs is None:
                return hash_file(path)
            return blobs.put_file(path)
        except FileNotFoundError:
            return None
        except FileChanged:
            continue
        except OSError as exc:
            if exc.errno is not None and exc.errno in (28, 122):  # ENOSPC, EDQUOT
                raise
            raise EnvironmentFault(f"cannot read {path}: {exc.strerror}") from exc
    raise EnvironmentFault(f"{path} kept changing while it was read; try again when it is quiet")


def hash_file(path: str) -> Stored:
    """Hash a file without storing it (verification, rollback planning)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        before = os.fstat(fd)
        # most files in one read sized by fstat; big ones through one reused buffer, since
        # a fresh 1 MiB bytes per read costs page faults that show up in verify's time
        data = os.read(fd, before.st_size + 1) if before.st_size < _ONE_READ else b""
        h = hashlib.sha256(data)
        size = len(data)
        if size == 0 or size > before.st_size:
            buf = bytearray(_HASH_CHUNK)
            view = memoryview(buf)
            while n := os.readv(fd, [buf]):
                h.update(view[:n])
                size += n
        after = os.fstat(fd)
    finally:
        os.close(fd)
    if stat_key(after) != stat_key(before):
        raise FileChanged(path)
    return Stored(h.hexdigest(), size, before, 0)
