"""Engines for ``KETAMINE_CDS_DATABASE_URL``: SQLite (aiosqlite) for one machine, PostgreSQL
(asyncpg) for several replicas. Every wait has a deadline: connecting, a statement, a pooled
connection. The URL holds a password: only ``describe`` output (no password) is ever shown.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import URL, event, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

CONNECT_TIMEOUT_SECONDS = 5.0
STATEMENT_TIMEOUT_SECONDS = 10.0
SQLITE_BUSY_TIMEOUT_MS = 5000


def parse(url: str) -> URL:
    return make_url(url)


def is_sqlite(url: str | URL) -> bool:
    return (make_url(url) if isinstance(url, str) else url).get_backend_name() == "sqlite"


def describe(url: str | URL) -> str:
    """The URL with its password hidden, for messages."""
    parsed = make_url(url) if isinstance(url, str) else url
    return parsed.render_as_string(hide_password=True)


def sqlite_path(url: str | URL) -> Path | None:
    """The database file of an SQLite URL (None for an in-memory database)."""
    parsed = make_url(url) if isinstance(url, str) else url
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


QUIET_LOGGERS = ("sqlalchemy", "aiosqlite", "asyncpg", "alembic")
"""Loggers that would print statements and their parameters at INFO/DEBUG (and Alembic's
start-up chatter): kept at WARNING whatever the service's log level. The parameters are also
hidden from error messages (``hide_parameters``)."""


def quiet_driver_logs() -> None:
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


quiet_driver_logs()  # at import, before Alembic logs its plugin set-up


def make_engine(url: str) -> AsyncEngine:
    quiet_driver_logs()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(parsed)
        if path is not None:
            # Created on first start, with its folder, so that the demo and the tests need no
            # set-up (the default is ./ketamine-cds.sqlite3). A folder that cannot be made shows
            # up as StoreUnavailable when the file is opened.
            with contextlib.suppress(OSError):
                path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            parsed,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            pool_size=4,
            max_overflow=4,
            pool_timeout=CONNECT_TIMEOUT_SECONDS,
            hide_parameters=True,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    connect_args: dict[str, Any] = {
        "timeout": CONNECT_TIMEOUT_SECONDS,
        "command_timeout": STATEMENT_TIMEOUT_SECONDS,
        "server_settings": {"application_name": "ketamine-cds"},
    }
    return create_async_engine(
        parsed,
        connect_args=connect_args,
        pool_size=5,
        max_overflow=5,
        pool_timeout=CONNECT_TIMEOUT_SECONDS,
        pool_pre_ping=True,
        pool_recycle=1800,
        hide_parameters=True,
    )


def _sqlite_pragmas(dbapi_connection: Any, record: Any) -> None:
    """WAL (readers do not block the writer; several worker processes share the file), a busy
    timeout instead of immediate "database is locked" errors, and foreign keys enforced."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
