"""Options shared by several subcommands."""

from __future__ import annotations

import argparse


def add_no_roll(parser: argparse.ArgumentParser, help_text: str) -> None:
    """``--no-roll``: keep example dates as written (``args.roll`` is False)."""
    parser.add_argument("--no-roll", dest="roll", action="store_false", help=help_text)
