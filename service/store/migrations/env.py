"""Alembic's environment for the store. It never opens a connection of its own: the caller
(``service.store.migrate``) passes one in ``config.attributes["connection"]``, taken from the
service's async engine (Alembic's "connection sharing" recipe), so that one code path serves
``ketamine-cds db upgrade``, the automatic SQLite upgrade at start and the tests."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from service.store.models import Base

MIGRATION_LOCK_ID = 7_304_512_019
"""PostgreSQL advisory lock held while migrating: two `db upgrade` runs never interleave."""


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run `ketamine-cds db upgrade`")
_connection = context.config.attributes.get("connection")
if not isinstance(_connection, Connection):
    raise SystemExit("run migrations with `ketamine-cds db upgrade`, not the alembic command")
_run(_connection)
