"""``ketamine-cds``: the service and the EHR side's tools on the command line.

    ketamine-cds serve | evaluate | demo | keys generate | token | seed | invoke | explain

Each subcommand lives in ``ehr/commands/`` and adds itself with ``register(subparsers)``.
"""

from __future__ import annotations

import argparse
import sys

from ehr.commands import demo, evaluate, invoke, keys, seed, serve

COMMANDS = (serve, evaluate, demo, keys, seed, invoke)
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
