"""Engine, sessions and schema migration of the metadata store."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config
from filelock import FileLock
from sqlalchemy import CursorResult, Engine, Result, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
LOCK_KEY = 0x41494654  # "AIFT": the advisory lock key of schema migrations


def utcnow() -> datetime:
    """Current time, timezone-aware UTC (the only kind stored)."""
    return datetime.now(UTC)


def rows_changed(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE changed."""
    return cast(CursorResult[Any], result).rowcount


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL and foreign keys on every new SQLite connection (a DB-API connection)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL mode and a busy timeout for many processes."""
    if url.startswith("sqlite"):
        path = url.split("sqlite:///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 15})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _foreign_keys(connection: Any, *, on: bool) -> None:
    """Turn SQLite's foreign keys on or off for this connection (outside a transaction,
    where SQLite ignores the pragma)."""
    connection.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    connection.commit()


def _check_foreign_keys(connection: Any) -> None:
    """Refuse a migration that left a row pointing at nothing (SQLite checks no foreign
    key while migrations rebuild tables)."""
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        raise RuntimeError(f"The migration broke foreign keys: {broken[:5]}")


class Database:
    """The metadata database of one workspace: engine, session factory, migrations."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def migrate(self, target: str = "head") -> None:
        """Bring the schema to the newest migration (or to `target`, for tests of
        upgrades from an earlier release).

        Safe to call on every start, from several processes at once (server, worker,
        CLI): SQLite migrations are serialised by a file lock beside the database,
        PostgreSQL ones by an advisory lock.
        """
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self._migration_lock(), self.engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:  # a rebuilt table's DROP must not cascade into its children's rows
                _foreign_keys(connection, on=False)
            try:
                with connection.begin():
                    if not sqlite:
                        connection.execute(
                            text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY}
                        )
                    cfg.attributes["connection"] = connection
                    command.upgrade(cfg, target)
                    if sqlite:
                        _check_foreign_keys(connection)
            finally:
                if sqlite:
                    _foreign_keys(connection, on=True)

    def revision(self) -> str | None:
        """The schema migration this database is at (None before the first)."""
        with self.engine.connect() as connection:
            try:
                return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
            except Exception:  # noqa: BLE001 - no table yet: an empty database
                return None

    def _migration_lock(self) -> AbstractContextManager:
        path = self.engine.url.database if self.engine.url.get_backend_name() == "sqlite" else None
        if not path or path == ":memory:":
            return nullcontext()
        return FileLock(f"{path}.migrate.lock", timeout=120)

    def dispose(self) -> None:
        self.engine.dispose()
