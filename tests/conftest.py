"""Shared fixtures: frozen clock (UTC+4), knowledge, a dev-mode app, the EHR's FHIR server, and
a fresh SQLite store per test (tests/store/support.py).

The ``corpus`` marker and its skip-or-fail rule live in tests/shared_data.py; its hooks are
registered here by name."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import respx
import time_machine
from fastapi.testclient import TestClient

from ehr.memory_fhir import MemoryFhirServer
from hooks.rules.knowledge import Knowledge, default_knowledge
from service.main import create_app
from service.settings import Settings
from tests.factories import NOW
from tests.shared_data import (  # noqa: F401  (pytest hooks, registered by their names)
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_report_header,
    pytest_runtest_call,
)
from tests.store.support import (  # noqa: F401  (fixtures, registered by their names)
    _store_template,
    isolated_store,
)

EHR = "https://ehr.example/fhir"


@pytest.fixture(autouse=True)
def frozen_time() -> Iterator[None]:
    """Every test runs at the same instant (a non-UTC offset), so relative dates never drift."""
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture(scope="session")
def knowledge() -> Knowledge:
    return default_knowledge()


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "allow_unauthenticated": True,
        "allowed_fhir_servers": EHR,
        "fhir_page_cap": 50,
        "suppression_secret": "test-suppression-secret-0123456789abcdef",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = create_app(make_settings(), clock=lambda: NOW)
    with TestClient(app) as test_client:
        yield test_client


class FakeEhr(MemoryFhirServer):
    """The EHR's FHIR server for respx (``ehr.memory_fhir``), with the tests' base URL and
    pages of two entries."""

    def __init__(
        self, resources: list[dict[str, Any]], *, page_size: int = 2, base: str = EHR
    ) -> None:
        super().__init__(resources, base=base, page_size=page_size)


@pytest.fixture
def fake_ehr() -> Iterator[Any]:
    """Install a FakeEhr for the given resources: ``ehr = fake_ehr(resources)``."""
    with respx.mock(assert_all_called=False) as router:

        def install(resources: list[dict[str, Any]], **kw: Any) -> FakeEhr:
            ehr = FakeEhr(resources, **kw)
            router.route(url__regex=re.escape(ehr.base) + r"/.*").mock(side_effect=ehr.handler)
            return ehr

        yield install
