"""Schema revisions: where the database is, where this release needs it, and the upgrade.

- ``ketamine-cds db upgrade`` applies the shipped Alembic migrations (``upgrade``).
- At start (``prepare``): an SQLite store is upgraded automatically (one machine, nobody else to
  run the step); a PostgreSQL store must already be at this release's revision (or at a later
  one, during a rolling update), else start-up stops with ``StoreNotMigrated``, whose message
  names the command.

A database at a revision this release does not know is taken to be newer (the next release
migrated it while this one still runs): migrations keep the previous release working, so this
release starts and serves, with a warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from service.store.engine import is_sqlite

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
UPGRADE_COMMAND = "ketamine-cds db upgrade"

Status = Literal["current", "behind", "empty", "ahead"]


class StoreNotMigrated(Exception):
    """The database's schema is older than this release needs (or absent)."""


@dataclass(frozen=True)
class RevisionState:
    current: tuple[str, ...]
    head: str
    status: Status

    @property
    def usable(self) -> bool:
        """Whether this release can serve on this schema."""
        return self.status in ("current", "ahead")

    def explain(self) -> str:
        where = ", ".join(self.current) or "no schema"
        if self.status == "current":
            return f"the database schema is current (revision {self.head})"
        if self.status == "ahead":
            return (
                f"the database schema is at revision {where}, newer than this release's "
                f"{self.head} (a rolling update?); serving on it"
            )
        return (
            f"the database schema is at {where}; this release needs revision {self.head}: "
            f"run `{UPGRADE_COMMAND}` (with the same KETAMINE_CDS_DATABASE_URL) first"
        )


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = _scripts().get_current_head()
    assert head is not None, "no migration shipped"
    return head


def _known(revision: str) -> bool:
    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


def _state(connection: Connection) -> RevisionState:
    current = tuple(MigrationContext.configure(connection).get_current_heads())
    head = head_revision()
    status: Status
    if not current:
        status = "empty"
    elif head in current:
        status = "current"
    elif all(_known(revision) for revision in current):
        status = "behind"
    else:
        status = "ahead"
    return RevisionState(current, head, status)


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def revision_state(engine: AsyncEngine) -> RevisionState:
    async with engine.connect() as connection:
        return await connection.run_sync(_state)


async def upgrade(engine: AsyncEngine) -> tuple[RevisionState, RevisionState]:
    """Bring the schema to this release's head (nothing to do when it is there or beyond);
    returns the states before and after."""
    before = await revision_state(engine)
    if before.status in ("current", "ahead"):
        return before, before
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)
    after = await revision_state(engine)
    logger.info("store schema upgraded from=%s to=%s", ",".join(before.current) or "-", after.head)
    return before, after


async def prepare(engine: AsyncEngine) -> RevisionState:
    """What start-up does: SQLite is upgraded in place; PostgreSQL must be current (or newer),
    else ``StoreNotMigrated``."""
    if is_sqlite(engine.url):
        _, state = await upgrade(engine)
    else:
        state = await revision_state(engine)
    if not state.usable:
        raise StoreNotMigrated(state.explain())
    if state.status == "ahead":
        logger.warning("store %s", state.explain())
    return state
