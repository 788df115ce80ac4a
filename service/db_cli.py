"""``ketamine-cds db upgrade`` (apply the shipped migrations) and ``ketamine-cds db current``
(where the schema is), on ``KETAMINE_CDS_DATABASE_URL``. Run ``db upgrade`` for every new release
before its servers start (docs/deploy.md, "The migration step"); it does nothing when the schema
is current."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any


def register(sub: Any) -> None:
    db = sub.add_parser("db", help="the store's schema: upgrade, current")
    commands = db.add_subparsers(dest="db_command", required=True)
    upgrade = commands.add_parser(
        "upgrade", help="apply the migrations this release ships (KETAMINE_CDS_DATABASE_URL)"
    )
    upgrade.set_defaults(func=cmd_upgrade)
    current = commands.add_parser(
        "current", help="print the schema revision; exit 1 when this release cannot serve on it"
    )
    current.set_defaults(func=cmd_current)


def _run(operation: str) -> int:
    from service.errors import StoreUnavailable
    from service.logging_setup import configure_logging
    from service.serving import load_settings
    from service.store import Store

    settings = load_settings()
    configure_logging(settings.log_level)

    async def run() -> int:
        store = Store.open(settings.database_url)
        try:
            if operation == "upgrade":
                before, after = await store.upgrade()
                if before == after:
                    print(f"{store.description}: {after.explain()}; nothing to do")  # noqa: T201
                else:
                    was = ",".join(before.current) or "no schema"
                    print(  # noqa: T201
                        f"{store.description}: upgraded from {was} to revision {after.head}"
                    )
                return 0
            state = await store.readiness()
            print(f"{store.description}: {state.explain()}")  # noqa: T201
            return 0 if state.usable else 1
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except StoreUnavailable:
        from service.store.engine import describe

        print(  # noqa: T201
            f"error: the store {describe(settings.database_url)} cannot be reached or opened "
            "(KETAMINE_CDS_DATABASE_URL)",
            file=sys.stderr,
        )
        return 1


def cmd_upgrade(args: argparse.Namespace) -> int:
    return _run("upgrade")


def cmd_current(args: argparse.Namespace) -> int:
    return _run("current")
