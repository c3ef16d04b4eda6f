"""Alembic environment: runs migrations on the connection handed over by Database."""

from alembic import context

from aift.store.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only through Database.migrate
    raise RuntimeError("Run migrations through aift.store.Database.migrate()")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
