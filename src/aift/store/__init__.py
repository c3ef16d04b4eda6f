"""Metadata store: SQLAlchemy tables, sessions and Alembic migrations."""

from aift.store.db import Database, rows_changed, utcnow

__all__ = ["Database", "rows_changed", "utcnow"]
