"""The store's one door: only service/store talks to the database libraries."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATABASE_LIBRARIES = ("sqlalchemy", "alembic", "aiosqlite", "asyncpg")
PACKAGES = ("service", "hooks", "fhir_mappers")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


MODULES = sorted(
    path
    for package in PACKAGES
    for path in (ROOT / package).rglob("*.py")
    if not path.is_relative_to(ROOT / "service" / "store")
)


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(ROOT)) for p in MODULES])
def test_layering_database_libraries_only_in_store(path: Path) -> None:
    """Verify that no module outside service/store imports a database library (no SQL
    elsewhere: the repository is the only door)."""
    for name in _imports(path):
        assert name.split(".")[0] not in DATABASE_LIBRARIES, f"{path.relative_to(ROOT)}: {name}"


def test_layering_store_found_database_libraries() -> None:
    """Verify that the check looks where the libraries are used (service/store imports them)."""
    used = set().union(*(_imports(p) for p in (ROOT / "service" / "store").rglob("*.py")))
    assert {name.split(".")[0] for name in used} >= {"sqlalchemy", "alembic"}
