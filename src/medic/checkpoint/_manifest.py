"""The manifest: the one file that makes a checkpoint or backup exist.

It is written last, atomically, after every blob it names is durable, so a
killed process leaves either a whole checkpoint or none. It is also input that
may come from someone else (a backup repository handed over for restore), so
`parse` validates every field and every path before anything acts on it.
"""

from __future__ import annotations

import json
import operator
import posixpath
import re
import stat
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from medic.errors import InvalidInput, StoreCorrupt

__all__ = ["DIR", "FILE", "LINK", "Database", "Entry", "Manifest", "Root", "check_relpath"]

FORMAT = "medic-checkpoint/1"
FILE, DIR, LINK = "f", "d", "l"
_DIGEST = re.compile(r"[0-9a-f]{64}")
_TYPES = frozenset((FILE, DIR, LINK))
_SETID = stat.S_ISUID | stat.S_ISGID


@dataclass(frozen=True, slots=True)
class Entry:
    """One path below a root: type, permission bits, size, mtime, content hash, link target."""

    path: str
    type: str
    mode: int
    size: int = 0
    mtime_ns: int = 0
    digest: str = ""
    target: str = ""

    def encode(self) -> list[Any]:
        return list(_FIELDS(self))


_FIELDS = operator.attrgetter("path", "type", "mode", "size", "mtime_ns", "digest", "target")
"""An entry's fields in manifest order, fetched in C (a manifest holds one per path)."""


@dataclass(frozen=True, slots=True)
class Root:
    """One checkpointed directory: where it was, its short label, its entries, its git HEAD."""

    path: str
    label: str
    entries: tuple[Entry, ...]
    git: dict[str, str] | None = None

    @property
    def files(self) -> int:
        return sum(1 for e in self.entries if e.type == FILE)

    @property
    def size(self) -> int:
        """Bytes of file content."""
        return sum(e.size for e in self.entries if e.type == FILE)


@dataclass(frozen=True, slots=True)
class Database:
    """One SQLite database captured through the online backup API."""

    path: str
    label: str
    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class Manifest:
    """A checkpoint or backup snapshot: roots and databases at one moment."""

    id: str
    name: str
    kind: str
    created_at: datetime
    roots: tuple[Root, ...]
    databases: tuple[Database, ...] = ()
    parent: str | None = None
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def files(self) -> int:
        return sum(r.files for r in self.roots)

    @property
    def size(self) -> int:
        """Bytes of file and database content."""
        return sum(r.size for r in self.roots) + sum(d.size for d in self.databases)

    def digests(self) -> set[str]:
        out = {e.digest for r in self.roots for e in r.entries if e.type == FILE}
        out.update(d.digest for d in self.databases)
        return out

    def encode(self) -> bytes:
        doc = {
            "format": FORMAT,
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "created_at": self.created_at.isoformat(),
            "parent": self.parent,
            "stats": self.stats,
            "roots": [
                {
                    "path": r.path,
                    "label": r.label,
                    "git": r.git,
                    "entries": list(map(_FIELDS, r.entries)),  # tuples: json writes them as lists
                }
                for r in self.roots
            ],
            "databases": [
                {"path": d.path, "label": d.label, "digest": d.digest, "size": d.size}
                for d in self.databases
            ],
        }
        return json.dumps(doc, separators=(",", ":")).encode()

    def __repr__(self) -> str:
        return (
            f"Manifest(id={self.id!r}, name={self.name!r}, kind={self.kind!r}, files={self.files})"
        )


def check_relpath(path: str) -> None:
    """Refuse a manifest path that could leave its root: absolute, `..`, empty parts, NUL."""
    wrapped = f"/{path}/"
    if (
        not path
        or path[0] == "/"
        or "\x00" in path
        or "\\" in path
        or "//" in wrapped
        or "/./" in wrapped
        or "/../" in wrapped
    ):
        raise InvalidInput(f"unsafe path in manifest: {path!r}")


def check_label(label: str) -> None:
    """A label becomes one directory name under a restore target."""
    check_relpath(label)
    if "/" in label:
        raise InvalidInput(f"unsafe label in manifest: {label!r}")


def link_escapes(path: str, target: str) -> bool:
    """Whether symlink `path` -> `target` would point outside the root it lives in."""
    if not target or target.startswith("/") or "\x00" in target:
        return True
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    return resolved == ".." or resolved.startswith("../")


def _digest(value: object, where: str) -> str:
    if type(value) is not str or _DIGEST.fullmatch(value) is None:
        raise InvalidInput(f"{where}: not a sha256 hex digest: {value!r}")
    return value


def _entry(raw: object, where: str) -> Entry:
    # called once per path of every manifest read, so cheap type() checks come first
    if type(raw) is not list or len(raw) != 7:
        raise InvalidInput(f"{where}: an entry must be a list of 7 fields")
    path, typ, mode, size, mtime_ns, digest, target = raw
    if type(path) is not str or type(target) is not str:
        raise InvalidInput(f"{where}: path and target must be strings")
    check_relpath(path)
    if typ not in _TYPES:
        raise InvalidInput(f"{where}: {path!r} has type {typ!r}; only files, dirs, symlinks")
    if type(mode) is not int or type(size) is not int or type(mtime_ns) is not int:
        raise InvalidInput(f"{where}: {path!r} has a non-integer mode, size or mtime")
    if mode < 0 or size < 0 or mtime_ns < 0:
        raise InvalidInput(f"{where}: {path!r} has a negative mode, size or mtime")
    if mode & ~0o7777:
        raise InvalidInput(f"{where}: {path!r} mode {mode:o} carries a file type (device?)")
    if mode & _SETID:
        raise InvalidInput(f"{where}: {path!r} has a setuid/setgid bit (mode {mode:o})")
    if typ == FILE:
        if type(digest) is not str or _DIGEST.fullmatch(digest) is None:
            raise InvalidInput(f"{where}: {path!r}: not a sha256 hex digest: {digest!r}")
    elif typ == LINK and not target:
        raise InvalidInput(f"{where}: symlink {path!r} has no target")
    return Entry(path, typ, mode, size, mtime_ns, str(digest), target)


def _root(raw: object, where: str) -> Root:
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where}: a root must be an object")
    path, label, entries = raw.get("path"), raw.get("label"), raw.get("entries")
    if not isinstance(path, str) or not path.startswith("/") or not isinstance(label, str):
        raise InvalidInput(f"{where}: root needs an absolute path and a label")
    check_label(label)
    if not isinstance(entries, list):
        raise InvalidInput(f"{where}: root entries must be a list")
    out = tuple(_entry(e, f"{where} entry {i}") for i, e in enumerate(entries))
    types = {e.path: e.type for e in out}
    if len(types) != len(out):
        raise InvalidInput(f"{where}: duplicate paths")
    for e in out:
        parent = e.path.rpartition("/")[0]
        if parent and types.get(parent) != DIR:
            raise InvalidInput(f"{where}: {e.path!r} lies under {parent!r}, which is not a dir")
    git = raw.get("git")
    if git is not None and not (
        isinstance(git, dict) and all(isinstance(v, str) for v in git.values())
    ):
        raise InvalidInput(f"{where}: git must be an object of strings")
    return Root(path, label, out, git)


def parse(data: bytes, *, origin: str) -> Manifest:
    """Decode and validate a manifest; anything unsafe raises before anyone acts on it."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StoreCorrupt(f"{origin}: not a readable manifest ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InvalidInput(f"{origin}: not a {FORMAT} manifest")
    try:
        created = datetime.fromisoformat(str(doc["created_at"]))
        roots = tuple(_root(r, f"{origin} root {i}") for i, r in enumerate(doc["roots"]))
        dbs = []
        for i, d in enumerate(doc.get("databases", [])):
            check_label(d["label"])
            if not str(d["path"]).startswith("/"):
                raise InvalidInput(f"{origin} database {i}: path must be absolute")
            dbs.append(
                Database(str(d["path"]), d["label"], _digest(d["digest"], origin), int(d["size"]))
            )
        labels = [r.label for r in roots] + [d.label for d in dbs]
        if len(set(labels)) != len(labels):
            raise InvalidInput(f"{origin}: labels must be unique")
        stats = doc.get("stats") or {}
        return Manifest(
            id=str(doc["id"]),
            name=str(doc.get("name", "")),
            kind=str(doc.get("kind", "checkpoint")),
            created_at=created,
            roots=roots,
            databases=tuple(dbs),
            parent=doc.get("parent"),
            stats={str(k): float(v) for k, v in stats.items()},
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidInput(f"{origin}: malformed manifest ({exc!r})") from exc
