"""The stores the benchmark runs the service on: a fresh SQLite file, and a fresh PostgreSQL
database when a server is reachable.

PostgreSQL: ``KETAMINE_CDS_TEST_POSTGRES_URL`` (as the tests; default
``postgresql+asyncpg://postgres@127.0.0.1:5432/test``) names a server and a role that may
create databases. The benchmark creates its own database there (``ketamine_cds_bench``),
migrates it, and drops it at the end. Nothing else on that server is touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

POSTGRES_ENV = "KETAMINE_CDS_TEST_POSTGRES_URL"
DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
BENCH_DATABASE = "ketamine_cds_bench"


@dataclass(frozen=True)
class StoreTarget:
    name: str
    """"SQLite" or "PostgreSQL"."""
    url: str


def sqlite_target(folder: Path, name: str = "store") -> StoreTarget:
    """A new SQLite file (the service migrates it at start, as in production)."""
    path = folder / f"{name}.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return StoreTarget("SQLite", f"sqlite+aiosqlite:///{path}")


def describe_store(url: str) -> str:
    """ "SQLite" or "PostgreSQL" (never the URL: it may hold a password)."""
    return "SQLite" if make_url(url).get_backend_name() == "sqlite" else "PostgreSQL"


async def _admin(server_url: str, statements: list[str]) -> None:
    engine = create_async_engine(
        server_url, isolation_level="AUTOCOMMIT", connect_args={"timeout": 5}
    )
    try:
        async with engine.connect() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def _migrate(url: str) -> None:
    from service.store import Store

    store = Store.open(url)
    try:
        await store.upgrade()
    finally:
        await store.close()


@contextlib.contextmanager
def postgres_target() -> Iterator[StoreTarget | str]:
    """A fresh, migrated PostgreSQL database, or the reason there is none (a string)."""
    server_url = os.environ.get(POSTGRES_ENV, DEFAULT_POSTGRES)
    url = make_url(server_url).set(database=BENCH_DATABASE).render_as_string(hide_password=False)
    drop = f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)'
    try:
        asyncio.run(_admin(server_url, [drop, f'CREATE DATABASE "{BENCH_DATABASE}"']))
        asyncio.run(_migrate(url))
    except Exception as exc:  # any failure: no PostgreSQL figures, and the reason why
        yield f"PostgreSQL not reachable at {make_url(server_url)!r} ({type(exc).__name__})"
        return
    try:
        yield StoreTarget("PostgreSQL", url)
    finally:
        with contextlib.suppress(Exception):
            asyncio.run(_admin(server_url, [drop]))
