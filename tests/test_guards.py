"""Guards that keep the architecture honest: import direction, error mapping, registry coverage."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from hooks.registry import build_registry
from service import errors
from tests.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "ehr": ("tests", "benchmarks", "scripts"),
    "service": ("ehr",),
    "fhir_mappers": ("ehr", "service", "hooks", "fastapi", "starlette", "httpx"),
    "hooks": ("ehr", "service", "fastapi", "starlette", "httpx"),
    "hooks/rules": ("ehr", "service", "fastapi", "starlette", "httpx", "fhir.resources", "logging"),
}
"""Layers: ehr -> service -> hooks -> fhir_mappers (the EHR side may use every layer, no layer
uses it); rules are pure (no I/O, no fhir.resources, no logs)."""


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layers_import_only_downwards(package: str) -> None:
    """Verify that no module imports a higher layer or an I/O library it must not use."""
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in _imports(path):
            for banned in FORBIDDEN[package]:
                assert not (name == banned or name.startswith(banned + ".")), (
                    f"{path.relative_to(ROOT)} imports {name}"
                )


def test_rules_never_read_the_clock() -> None:
    """Verify that the pure rules get `now` as an argument and never call now()/today()."""
    for path in sorted((ROOT / "hooks").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert ".now(" not in text and ".today(" not in text, path.relative_to(ROOT)


def test_every_service_error_maps_to_an_http_status() -> None:
    """Verify that each CdsServiceError subclass carries a 4xx/5xx status for the one handler."""
    classes = [errors.CdsServiceError]
    seen = []
    while classes:
        cls = classes.pop()
        seen.append(cls)
        classes.extend(cls.__subclasses__())
    for cls in seen:
        assert 400 <= cls.status_code < 600, cls


def test_every_registered_service_has_scenarios(knowledge) -> None:
    """Verify that each CDS service in the registry is exercised by clinical scenarios."""
    ids = [s.id for s in build_registry(knowledge)]
    assert ids == ["trd-ketamine-screen", "trd-antidepressant-order", "ketamine-order-safety"]
    for service_id in ids:
        assert sum(s.service == service_id for s in SCENARIOS) >= 3, service_id
