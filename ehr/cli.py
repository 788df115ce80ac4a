"""``ketamine-cds``: the service and the EHR side's tools on the command line.

    ketamine-cds serve | evaluate | demo | keys generate | token | seed | invoke | explain
    ketamine-cds db upgrade | db current | report

The EHR side's subcommands live in ``ehr/commands/``; running and operating the service (``serve``
with its workers, ``db``, ``report``) in ``service/``. Each module adds itself with
``register(subparsers)``.
"""

from __future__ import annotations

import argparse
import sys

from ehr.commands import demo, evaluate, invoke, keys, seed
from service import db_cli, report, serving

COMMANDS = (serving, evaluate, demo, keys, seed, invoke, db_cli, report)
"""In the order ``--help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ketamine-cds",
        description="run the CDS Hooks service, or play the EHR against it",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
