"""Opening a store: URLs, SQLite pragmas, the one-writer rule, and self-migration.

SQLite: WAL mode so readers never block the writer; every write transaction
starts with ``BEGIN IMMEDIATE`` so it holds the write lock from its first
statement (no deadlocking upgrade from a read lock, datasette's lesson) and
waits up to `busy_timeout` for another writer. ``synchronous=NORMAL`` in WAL
mode survives a killed process: a committed transaction is in the WAL before
the commit returns. Foreign keys are declared but, as is SQLite's default, not
enforced: checking them costs a third of the recording rate, every write goes
through `_record`/`_tracker`, and the same tests run on PostgreSQL, which does
enforce them.

PostgreSQL: each write transaction takes one transaction-scoped advisory lock,
so concurrent agents serialise their grouping decisions the way SQLite does.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)

from medic.errors import InvalidInput, MedicInternalError, StoreUnavailable

__all__ = ["HEAD_REVISION", "Database", "normalize_url"]

# The newest Alembic revision; tests check it matches migrations/versions.
HEAD_REVISION = "0005"
_WRITE_LOCK_KEY = 0x6D65646963  # "medic"


def normalize_url(url_or_path: str) -> str:
    """A SQLAlchemy URL for a store given as a URL or as a plain file path."""
    value = url_or_path.strip()
    if not value:
        raise InvalidInput("store: empty URL or path")
    if "://" not in value:
        return f"sqlite:///{Path(value).expanduser().resolve()}"
    for prefix in ("postgresql://", "postgres://"):
        if value.startswith(prefix):
            return "postgresql+psycopg://" + value[len(prefix) :]
    return value


class Database:
    """One engine per store, with the write discipline described above."""

    def __init__(self, url_or_path: str, *, busy_timeout_s: float = 30.0) -> None:
        self.url = normalize_url(url_or_path)
        try:
            parsed = make_url(self.url)
        except ArgumentError as exc:
            raise InvalidInput(f"store: not a database URL: {url_or_path!r}") from exc
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {}
        if self.dialect == "sqlite":
            database = parsed.database or ""
            if database in ("", ":memory:"):
                raise InvalidInput("store: an in-memory SQLite store cannot be shared; give a file")
            self.sqlite_path: Path | None = Path(database)
            try:
                self.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreUnavailable(f"cannot create {self.sqlite_path.parent}: {exc}") from exc
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": busy_timeout_s}
        elif self.dialect == "postgresql":
            self.sqlite_path = None
            kwargs["pool_pre_ping"] = True
        else:
            raise InvalidInput(
                f"store: unsupported database {self.dialect!r}; use SQLite or PostgreSQL"
            )
        try:
            self.engine: Engine = create_engine(self.url, **kwargs)
        except (ArgumentError, ImportError) as exc:
            raise InvalidInput(f"store: cannot use {url_or_path!r}: {exc}") from exc
        if self.dialect == "sqlite":
            _install_sqlite_discipline(self.engine, busy_timeout_s)

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction holding the store's single write lock for its whole length."""
        with self.engine.connect() as conn:
            conn.info["medic_write"] = True
            with conn.begin():
                if self.dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _WRITE_LOCK_KEY})
                yield conn

    @contextlib.contextmanager
    def write_sqlite(self) -> Iterator[sqlite3.Connection]:
        """`write` on the bare sqlite3 connection, for the recording path of a SQLite store.

        The same transaction (BEGIN IMMEDIATE … COMMIT on a pooled connection with the
        same pragmas), without SQLAlchemy's Connection: its checkout, begin event and
        commit cost more than a one-signal transaction spends in SQLite itself.
        """
        if self.dialect != "sqlite":
            raise MedicInternalError(f"write_sqlite on a {self.dialect} store")
        proxied = self.engine.raw_connection()
        try:
            raw = proxied.driver_connection
            if not isinstance(raw, sqlite3.Connection):
                raise MedicInternalError("the SQLite store has no sqlite3 connection")
            try:
                raw.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"store {self.display_url}: {exc}") from exc
            try:
                yield raw
            except sqlite3.Error as exc:  # a row fetch can fail as well as an execute
                with contextlib.suppress(sqlite3.Error):
                    raw.rollback()
                raise StoreUnavailable(f"store {self.display_url}: {exc}") from exc
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    raw.rollback()
                raise
            try:
                raw.commit()
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    raw.rollback()
                raise StoreUnavailable(f"store {self.display_url}: {exc}") from exc
        finally:
            proxied.close()

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction: one consistent snapshot, never blocking the writer."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def migrate(self) -> None:
        """Bring the schema to HEAD_REVISION, once, even with several processes opening it."""
        try:
            if self._revision() == HEAD_REVISION:
                return
            with self._migration_lock():
                if self._revision() != HEAD_REVISION:
                    from medic.tracker._migrate import upgrade

                    upgrade(self.engine)
        except DBAPIError as exc:
            raise StoreUnavailable(f"cannot open the store {self.display_url}: {exc.orig}") from exc

    def _revision(self) -> str | None:
        with self.engine.connect() as conn:
            try:
                row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
            except (OperationalError, ProgrammingError):
                return None
            return None if row is None else str(row[0])

    @contextlib.contextmanager
    def _migration_lock(self) -> Iterator[None]:
        if self.sqlite_path is not None:
            lock_path = self.sqlite_path.with_name(self.sqlite_path.name + ".migrate-lock")
            fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)
        else:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _WRITE_LOCK_KEY + 1})
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _WRITE_LOCK_KEY + 1})
                    conn.commit()

    @property
    def display_url(self) -> str:
        """The URL without a password, fit for messages and logs."""
        return make_url(self.url).render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()


def _install_sqlite_discipline(engine: Engine, busy_timeout_s: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event, not the driver, decide how transactions start.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.pop("medic_write", False) else "BEGIN")


def translate(exc: SQLAlchemyError, display_url: str) -> StoreUnavailable:
    """A database failure as medic's error, keeping the driver's words."""
    detail = getattr(exc, "orig", None) or exc
    return StoreUnavailable(f"store {display_url}: {detail}")
