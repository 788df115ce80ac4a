"""Running a command's coroutine: a problem the user can fix is a message and exit code 2."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from rich.markup import escape

from ehr.errors import EhrError
from ehr.output import errors


def run(work: Coroutine[Any, Any, int]) -> int:
    try:
        return asyncio.run(work)
    except EhrError as exc:
        errors.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True, highlight=False)
        return 2
