"""SQLite databases captured and restored while in use, through the online backup API.

A plain copy of a database file under a writer can be torn; the backup API
copies a consistent snapshot, and restoring through it into the live file is
one transaction, so readers see the old or the new database, never a mix.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

from medic.checkpoint._fs import start_writeback
from medic.errors import EnvironmentFault, InvalidInput, StoreCorrupt

__all__ = ["capture_db", "check_db", "restore_db"]

_BUSY_MS = 10_000


def _connect(path: str, *, readonly: bool, immutable: bool = False) -> sqlite3.Connection:
    uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
    if immutable:
        uri += "&immutable=1"  # a stored snapshot: no -shm or -wal beside the blob
    con = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=_BUSY_MS / 1000)
    con.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
    return con


def capture_db(src: str, dest: Path) -> tuple[str, int]:
    """Copy database `src` consistently into `dest`; returns (sha256, size) of the copy."""
    if not os.path.isfile(src):
        raise InvalidInput(f"--db {src}: no such database file")
    try:
        with open(src, "rb") as f:
            if f.read(16) != b"SQLite format 3\x00" and os.path.getsize(src) > 0:
                raise InvalidInput(f"--db {src}: not a SQLite database")
        source = _connect(src, readonly=True)
        try:
            target = sqlite3.connect(dest, isolation_level=None)
            try:
                # the copy is a scratch file made durable by the store's syncfs before any
                # manifest names it, so its own journal and fsyncs would be paid twice
                target.execute("PRAGMA synchronous=OFF")
                source.backup(target)
                target.execute("PRAGMA journal_mode=DELETE")  # a plain file, not a WAL db
            finally:
                target.close()
        finally:
            source.close()
    except sqlite3.Error as exc:
        raise EnvironmentFault(f"cannot back up database {src}: {exc}") from exc
    h = hashlib.sha256()
    size = 0
    with open(dest, "rb") as f:
        start_writeback(f.fileno())  # the disk writes the copy while it is hashed
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def restore_db(snapshot: Path, live: str) -> None:
    """Put the snapshot's content into the live database in one transaction."""
    try:
        source = _connect(str(snapshot), readonly=True, immutable=True)
        try:
            target = _connect(live, readonly=False)
            try:
                source.backup(target)
            finally:
                target.close()
        finally:
            source.close()
    except sqlite3.Error as exc:
        raise EnvironmentFault(f"cannot restore database {live}: {exc}") from exc


def check_db(path: str) -> None:
    """PRAGMA quick_check, raising when the database is damaged."""
    try:
        con = _connect(path, readonly=True)
        try:
            rows = con.execute("PRAGMA quick_check").fetchall()
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise StoreCorrupt(f"database {path} cannot be checked: {exc}") from exc
    if rows != [("ok",)]:
        raise StoreCorrupt(f"database {path} failed quick_check: {rows[:3]}")
