"""Alembic migrations of the tracker store."""
