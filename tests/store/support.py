"""Stores for the tests: SQLite files and a PostgreSQL database of the test session's own.

- ``isolated_store`` (autouse, registered by tests/conftest.py): every test of the suite gets
  its own migrated SQLite file as ``KETAMINE_CDS_DATABASE_URL`` (a copy of one migrated
  template: milliseconds), so that apps, CLI commands and subprocesses started by a test never
  write into the working directory or see another test's JWT ids.
- ``store_url`` (parametrised ``sqlite`` / ``postgresql``): the store tests run once per backend.
  PostgreSQL: ``KETAMINE_CDS_TEST_POSTGRES_URL`` (default
  ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``) names a server and a role that may
  create databases; the session creates its own database there, migrates it, empties its tables
  before each test and drops it at the end. Without a reachable server the PostgreSQL cases are
  skipped with a message saying how to run them, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from service.store import Store

POSTGRES_ENV = "KETAMINE_CDS_TEST_POSTGRES_URL"
DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
TABLES = (
    "card_feedback",
    "card_shown",
    "hook_call",
    "token_use",
    "referral_card",
    "suppression",
)
BACKENDS = ("sqlite", "postgresql")


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def _upgrade(url: str) -> None:
    store = Store.open(url)
    try:
        await store.upgrade()
    finally:
        await store.close()


def migrate(url: str) -> None:
    asyncio.run(_upgrade(url))


_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def _store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("stores")
    template = folder / "template.sqlite3"
    migrate(sqlite_url(template))
    return template


@pytest.fixture(autouse=True)
def isolated_store(_store_template: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, migrated SQLite store for this test, as KETAMINE_CDS_DATABASE_URL."""
    path = _store_template.with_name(f"test-{next(_numbers)}.sqlite3")
    shutil.copyfile(_store_template, path)
    url = sqlite_url(path)
    monkeypatch.setenv("KETAMINE_CDS_DATABASE_URL", url)
    yield url
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def ci_requires_services() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def postgres_admin_url() -> str:
    return os.environ.get(POSTGRES_ENV) or DEFAULT_POSTGRES


def _unavailable(why: str) -> str:
    shown = make_url(postgres_admin_url()).render_as_string(hide_password=True)
    how = (
        f"start PostgreSQL there, or set {POSTGRES_ENV}=postgresql+asyncpg://USER@HOST:PORT/DB "
        "(a role that may CREATE DATABASE)"
    )
    if ci_requires_services():
        return f"PostgreSQL at {shown} is required under CI=true but {why}; {how}"
    return (
        f"PostgreSQL at {shown} {why}: the PostgreSQL store tests are skipped; to run them: {how}"
    )


async def _admin(statement: str) -> None:
    engine = create_async_engine(
        postgres_admin_url(), isolation_level="AUTOCOMMIT", connect_args={"timeout": 5}
    )
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database of this test session's own on the PostgreSQL server (dropped at the end)."""
    name = f"ketamine_cds_test_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # connection refused, authentication, missing driver...
        message = _unavailable(f"cannot be used ({type(exc).__name__})")
        if ci_requires_services():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    url = make_url(postgres_admin_url()).set(database=name).render_as_string(hide_password=False)
    try:
        migrate(url)
        yield url
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _empty(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY"))
    finally:
        await engine.dispose()


def empty_postgres(url: str) -> None:
    asyncio.run(_empty(url))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(backend: str, isolated_store: str, request: pytest.FixtureRequest) -> str:
    """A migrated, empty store of each backend (the test's own SQLite file; the session's
    PostgreSQL database, emptied)."""
    if backend == "sqlite":
        return isolated_store
    url = str(request.getfixturevalue("postgres_database"))
    empty_postgres(url)
    return url
