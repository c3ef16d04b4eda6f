"""Metadata store: SQLAlchemy tables, sessions and Alembic migrations."""

from aift.store.db import Database, utcnow

__all__ = ["Database", "utcnow"]
