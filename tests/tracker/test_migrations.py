"""The store migrates itself, once, and the migrations build exactly the declared schema."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from medic.errors import InvalidInput, StoreUnavailable
from medic.tracker import HEAD_REVISION, Tracker
from medic.tracker._migrate import alembic_config
from medic.tracker._tables import metadata


def test_head_revision_constant_matches_the_migration_scripts() -> None:
    """The fast 'already migrated?' check compares against the real Alembic head."""
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION


def test_migrations_build_exactly_the_declared_tables(store_url: str) -> None:
    """Alembic's autogenerate finds no difference between the migrated store and _tables."""
    with Tracker(store_url) as tracker, tracker.db.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diffs == []


def test_many_openers_of_a_fresh_store_migrate_it_once(tmp_path: Path) -> None:
    """Eight trackers opening one new file at once all succeed."""
    path = str(tmp_path / "fresh.db")

    def open_and_count(_: int) -> int:
        with Tracker(path) as tracker:
            return tracker.counts()["events"]

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(open_and_count, range(8))) == [0] * 8


def test_unusable_store_urls_say_what_is_wrong(tmp_path: Path) -> None:
    """Bad URLs and unreachable databases give one clear medic error."""
    with pytest.raises(InvalidInput, match="unsupported database"):
        Tracker("mysql://x@localhost/db")
    with pytest.raises(InvalidInput, match="in-memory"):
        Tracker("sqlite://")
    with pytest.raises(StoreUnavailable, match="cannot open the store"):
        Tracker("postgresql://nobody@127.0.0.1:1/none")
    (tmp_path / "notadb").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreUnavailable):
        Tracker(str(tmp_path / "notadb"))
