"""Shared fixtures: where the real services live, and how a test that needs one behaves.

In CI (CI=true) a test that cannot reach PostgreSQL or Redis fails; elsewhere it
skips with the reason.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from medic.tracker import Tracker

IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_URL = os.environ.get(
    "MEDIC_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("MEDIC_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def need_service(name: str, host: str, port: int) -> None:
    """Skip (or, in CI, fail) the calling test when `name` is not listening."""
    if _reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if IN_CI:
        pytest.fail(f"{message} (CI must start it)")
    pytest.skip(message)


@pytest.fixture
def postgres_url() -> str:
    """The URL of the local PostgreSQL test database."""
    need_service("PostgreSQL", "127.0.0.1", 5432)
    return POSTGRES_URL


@pytest.fixture
def redis_url() -> str:
    """The URL of the local Redis."""
    need_service("Redis", "127.0.0.1", 6379)
    return REDIS_URL


@pytest.fixture
def pg_schema_url(postgres_url: str) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped after the test.

    Tests (and the helpers' test runs) share one database; a schema each keeps
    them apart without creating databases.
    """
    import sqlalchemy as sa

    schema = f"medic_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{postgres_url}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store: a SQLite file, then the real PostgreSQL (same tests on both)."""
    if request.param == "sqlite":
        return str(tmp_path / "medic.db")
    return str(request.getfixturevalue("pg_schema_url"))


@pytest.fixture
def tracker(store_url: str) -> Iterator[Tracker]:
    """A Tracker on a fresh store, closed after the test."""
    from medic.tracker import Tracker

    t = Tracker(store_url)
    try:
        yield t
        assert_event_links(t)
    finally:
        t.close()


@pytest.fixture
def event_links() -> Callable[[Tracker], None]:
    """The event-link check, for tests that open their own trackers."""
    return assert_event_links


def assert_event_links(tracker: Tracker) -> None:
    """Every event names an issue and an incident that exist.

    The store has no foreign keys on events (they cost half of PostgreSQL's time per
    batch), so this check, run after every test on the `tracker` fixture, holds the links.
    """
    import sqlalchemy as sa

    with tracker.db.engine.connect() as conn:
        dangling = conn.execute(
            sa.text(
                "SELECT e.id, e.issue_id, e.incident_id FROM events e "
                "LEFT JOIN issues i ON i.id = e.issue_id "
                "LEFT JOIN incidents n ON n.id = e.incident_id "
                "WHERE (e.issue_id IS NOT NULL AND i.id IS NULL) "
                "OR (e.incident_id IS NOT NULL AND n.id IS NULL) LIMIT 5"
            )
        ).all()
    assert not dangling, f"events name issues or incidents that do not exist: {dangling}"
