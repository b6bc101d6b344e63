"""Store administration for the faces: `medic db upgrade` without reaching into privates."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from medic.errors import StoreUnavailable
from medic.tracker._engine import Database, translate

__all__ = ["store_revision", "upgrade_store"]


def upgrade_store(url: str) -> str:
    """Run Alembic up to the newest revision (a no-op when current); returns the revision.

    Goes through `Database.migrate`, so several processes upgrading one store at
    once take turns instead of racing.
    """
    db = Database(url)
    try:
        db.migrate()
        return store_revision(db)
    finally:
        db.dispose()


def store_revision(db: Database) -> str:
    try:
        with db.read() as conn:
            row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    except SQLAlchemyError as exc:
        raise translate(exc, db.display_url) from exc
    if row is None:
        raise StoreUnavailable(f"store {db.display_url}: no schema revision after the upgrade")
    return str(row[0])
