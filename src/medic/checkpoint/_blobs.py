"""Whole-file blobs named by their sha256, stored once and compressed only where it pays.

A blob is `objects/ab/<sha256>` (raw) or `objects/ab/<sha256>.zst` (zstd). The
choice is made per file from a 64 KiB probe: text shrinks 2-3x at ~300 MB/s with
zstd level 1, random or already-compressed data would only cost CPU, so it is
stored raw. zstd over zlib because zlib level 1 is 2.5x slower here at a worse
ratio (measured on the bench tree), which decides whether the first checkpoint of
1 GiB fits in 3 s. Raw blobs also let SQLite open a database snapshot in place.

Blobs are written to `objects/tmp/` and renamed into place: a blob file is whole
or absent, never torn. Durability comes from one `syncfs` before the manifest
that names them (see `_fs`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import zstandard

from medic.checkpoint._fs import start_writeback, tmp_name
from medic.errors import EnvironmentFault, StoreCorrupt

__all__ = ["WRITEBACK_FROM", "BlobStore", "Stored"]

CHUNK = 1 << 20
IN_MEMORY_LIMIT = 8 << 20
_PROBE = 64 << 10
_PAYS = 0.85
_MIN_COMPRESS = 512
WRITEBACK_FROM = 256 << 10
"""Smaller blobs are left to the one flush before the manifest, which merges their writes."""
_WHOLE_MAX = 16 << 20
"""A compressed blob declaring more than this is decompressed in chunks (memory stays bounded)."""


@dataclass(frozen=True, slots=True)
class Stored:
    """What storing one file produced: its hash, size, the stat it was read under, new bytes."""

    digest: str
    size: int
    st: os.stat_result
    new_bytes: int


class FileChanged(Exception):
    """The file changed while it was being read; the caller retries."""


class BlobStore:
    """The content-addressed object directory of one checkpoint store."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._root = str(root)
        self.tmp = root / "tmp"
        self._tmp = str(self.tmp)
        self._made: set[str] = set()
        self.written: list[str] = []
        """Blobs this process added; a failed checkpoint removes them (nothing names them)."""
        self._known: set[str] | None = None
        self._lock = threading.Lock()

    def ensure(self) -> None:
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path | None:
        """Where blob `digest` lives, or None when the store does not have it."""
        base = f"{self._root}/{digest[:2]}/{digest}"
        if os.path.exists(base):
            return Path(base)
        return Path(base + ".zst") if os.path.exists(base + ".zst") else None

    def has(self, digest: str) -> bool:
        known = self._known
        if known is not None:
            return digest in known
        return self.path(digest) is not None

    @contextmanager
    def listed(self) -> Iterator[None]:
        """Answer `has` from one listing of the store instead of two stats per new blob.

        Only for a writer holding the store lock (nobody else adds or removes blobs
        meanwhile) and storing many files: the listing costs O(blobs in the store).
        """
        self._known = {d for d, _ in self.all()}
        try:
            yield
        finally:
            self._known = None

    def _shard(self, digest: str) -> str:
        d = f"{self._root}/{digest[:2]}"
        if digest[:2] not in self._made:
            os.makedirs(d, exist_ok=True)
            self._made.add(digest[:2])
        return d

    def _added(self, digest: str, final: str) -> None:
        with self._lock:
            self.written.append(final)
            if self._known is not None:
                self._known.add(digest)

    def put_file(self, path: str) -> Stored:
        """Hash and store the regular file at `path` (never through a symlink)."""
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            before = os.fstat(fd)
            if not stat.S_ISREG(before.st_mode):
                raise FileChanged(path)
            if before.st_size <= IN_MEMORY_LIMIT:
                stored = self._put_small(fd, before)
            else:
                stored = self._put_stream(fd, before)
            after = os.fstat(fd)
        finally:
            os.close(fd)
        if (after.st_size, after.st_mtime_ns, after.st_ctime_ns) != (
            before.st_size,
            before.st_mtime_ns,
            before.st_ctime_ns,
        ):
            raise FileChanged(path)
        return stored

    def _put_small(self, fd: int, st: os.stat_result) -> Stored:
        chunks = [os.read(fd, st.st_size + 1)]  # one read, one allocation, for most files
        while chunks[-1] and (chunk := os.read(fd, CHUNK)):
            chunks.append(chunk)
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        digest = hashlib.sha256(data).hexdigest()
        if self.has(digest):
            return Stored(digest, len(data), st, 0)
        payload = _compressed(data)
        compress = payload is not data
        self._publish(digest, payload, compressed=compress)
        return Stored(digest, len(data), st, len(payload))

    def _put_stream(self, fd: int, st: os.stat_result) -> Stored:
        first = os.read(fd, CHUNK)
        compress = _pays(first[:_PROBE])
        h = hashlib.sha256()
        tmp = os.path.join(self._tmp, tmp_name())
        size = 0
        cctx = _cctx()
        with open(tmp, "wb") as out:
            chunk = first
            if compress:
                with cctx.stream_writer(out, closefd=False) as writer:
                    while chunk:
                        h.update(chunk)
                        size += len(chunk)
                        writer.write(chunk)
                        chunk = os.read(fd, CHUNK)
            else:
                while chunk:
                    h.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                    chunk = os.read(fd, CHUNK)
            written = out.tell()
            out.flush()
            start_writeback(out.fileno())
        digest = h.hexdigest()
        if self.has(digest):
            os.unlink(tmp)
            return Stored(digest, size, st, 0)
        final = f"{self._shard(digest)}/{digest}{'.zst' if compress else ''}"
        os.replace(tmp, final)
        self._added(digest, final)
        return Stored(digest, size, st, written)

    def _publish(self, digest: str, payload: bytes, *, compressed: bool) -> None:
        tmp = os.path.join(self._tmp, tmp_name())
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            try:
                view = memoryview(payload)
                while view:
                    view = view[os.write(fd, view) :]
                if len(payload) >= WRITEBACK_FROM:
                    start_writeback(fd)
            finally:
                os.close(fd)
            final = f"{self._shard(digest)}/{digest}{'.zst' if compressed else ''}"
            os.replace(tmp, final)
            self._added(digest, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def adopt(self, path: Path, digest: str) -> bool:
        """Move a finished raw file (a database snapshot) in as blob `digest`; False if known."""
        if self.has(digest):
            path.unlink()
            return False
        final = f"{self._shard(digest)}/{digest}"
        os.replace(path, final)
        self._added(digest, final)
        return True

    def discard_written(self) -> None:
        """Remove the blobs added since `written` was last cleared (a checkpoint failed)."""
        for p in self.written:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)
        self.written.clear()
        self.clean_tmp()

    def chunks(self, digest: str) -> Iterator[bytes]:
        """The blob's original bytes, decompressed, in bounded chunks.

        A blob up to IN_MEMORY_LIMIT on disk that says how big it decompresses
        to (up to _WHOLE_MAX) comes as one chunk, from one read and one
        decompress call with this thread's decompressor: most files of a tree
        are that small, and a rollback pays this per restored file.
        """
        base = f"{self._root}/{digest[:2]}/{digest}"
        compressed = False
        try:
            fd = os.open(base, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            try:
                fd = os.open(base + ".zst", os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                raise StoreCorrupt(f"blob {digest} is missing from {self.root}") from None
            compressed = True
        try:
            size = os.fstat(fd).st_size
            if size <= IN_MEMORY_LIMIT:
                data = _read_all(fd, size)
                if not compressed:
                    yield data
                    return
                declared = zstandard.frame_content_size(data)
                if 0 <= declared <= _WHOLE_MAX:
                    yield _dctx().decompress(data)
                    return
                reader = zstandard.ZstdDecompressor().stream_reader(data)
            else:
                f = os.fdopen(os.dup(fd), "rb")
                if not compressed:
                    with f:
                        while chunk := f.read(CHUNK):
                            yield chunk
                    return
                reader = zstandard.ZstdDecompressor().stream_reader(f, closefd=True)
            with reader:
                while chunk := reader.read(CHUNK):
                    yield chunk
        except zstandard.ZstdError as exc:
            raise StoreCorrupt(f"blob {digest} cannot be decompressed: {exc}") from exc
        finally:
            os.close(fd)

    def check(self, digest: str) -> bool:
        """Re-read blob `digest` and say whether its content still hashes to its name."""
        h = hashlib.sha256()
        try:
            for chunk in self.chunks(digest):
                h.update(chunk)
        except StoreCorrupt:
            return False
        return h.hexdigest() == digest

    def all(self) -> Iterator[tuple[str, Path]]:
        """Every blob in the store with its file."""
        if not self.root.is_dir():
            return
        for shard in sorted(self.root.iterdir()):
            if len(shard.name) != 2 or not shard.is_dir():
                continue
            for f in shard.iterdir():
                yield f.name.removesuffix(".zst"), f

    def clean_tmp(self) -> int:
        """Remove blobs half-written by a killed process; they were never named by anything."""
        n = 0
        if self.tmp.is_dir():
            for f in self.tmp.iterdir():
                f.unlink(missing_ok=True)
                n += 1
        return n

    def size_of(self, digest: str) -> int:
        p = self.path(digest)
        if p is None:
            raise EnvironmentFault(f"blob {digest} is missing from {self.root}")
        return p.stat().st_size

    def __repr__(self) -> str:
        return f"BlobStore({str(self.root)!r})"


def _compressed(data: bytes) -> bytes:
    """zstd of `data` when it pays, else `data` itself; a small file is compressed only once."""
    if len(data) < _MIN_COMPRESS:
        return data
    if len(data) > _PROBE and not _pays(data[:_PROBE]):
        return data
    packed = _cctx().compress(data)
    return packed if len(packed) < _PAYS * len(data) else data


def _pays(sample: bytes) -> bool:
    if len(sample) < _MIN_COMPRESS:
        return False
    return len(_cctx().compress(sample)) < _PAYS * len(sample)


_local = threading.local()


def _read_all(fd: int, size: int) -> bytes:
    chunks = [os.read(fd, size + 1)]
    while chunks[-1] and (chunk := os.read(fd, CHUNK)):
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _dctx() -> zstandard.ZstdDecompressor:
    """One decompressor per thread, reused like the compressor."""
    dctx: zstandard.ZstdDecompressor | None = getattr(_local, "dctx", None)
    if dctx is None:
        dctx = _local.dctx = zstandard.ZstdDecompressor()
    return dctx


def _cctx() -> zstandard.ZstdCompressor:
    """One compressor per thread: making one per file costs more than compressing a small one."""
    cctx: zstandard.ZstdCompressor | None = getattr(_local, "cctx", None)
    if cctx is None:
        cctx = _local.cctx = zstandard.ZstdCompressor(level=1)
    return cctx
