"""Where the shared reference folder is: ``../shared`` beside the repository, or
``$KETAMINE_CDS_SHARED``. Tests that need it fail (never skip) when it is missing: CI has it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared"


def shared_dir() -> Path:
    path = Path(os.environ.get("KETAMINE_CDS_SHARED", DEFAULT))
    if not path.is_dir():
        pytest.fail(f"shared reference folder not found at {path}; set KETAMINE_CDS_SHARED")
    return path
