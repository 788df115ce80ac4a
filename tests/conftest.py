"""Shared fixtures: frozen clock (UTC+4), knowledge, a dev-mode app, a fake EHR FHIR server, and
a fresh SQLite store per test (tests/store/support.py).

The ``corpus`` marker and its skip-or-fail rule live in tests/shared_data.py; its hooks are
registered here by name."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import respx
import time_machine
from fastapi.testclient import TestClient

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
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = create_app(make_settings(), clock=lambda: NOW)
    with TestClient(app) as test_client:
        yield test_client


class FakeEhr:
    """A FHIR server double for respx: reads, type searches with patient/code filters,
    ``_include`` of Medication, and paging (``_page``) with ``next`` links."""

    def __init__(
        self, resources: list[dict[str, Any]], *, page_size: int = 2, base: str = EHR
    ) -> None:
        self.resources = resources
        self.page_size = page_size
        self.base = base
        self.requests: list[httpx.Request] = []

    def _search(self, rtype: str, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        found = [r for r in self.resources if r["resourceType"] == rtype]
        codes = query.get("code")
        if codes:
            wanted = set()
            for value in codes[0].split(","):
                system, _, code = value.rpartition("|")
                wanted.add((system, code))
            found = [
                r
                for r in found
                if any(
                    (c.get("system"), c.get("code")) in wanted
                    for c in r.get("code", {}).get("coding", [])
                )
            ]
        return found

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        parts = urlsplit(str(request.url))
        path = parts.path.removeprefix(urlsplit(self.base).path).strip("/")
        query = parse_qs(parts.query)
        segments = path.split("/")
        if len(segments) == 2:
            for resource in self.resources:
                if resource["resourceType"] == segments[0] and resource["id"] == segments[1]:
                    return httpx.Response(200, json=resource)
            return httpx.Response(
                404,
                json={
                    "resourceType": "OperationOutcome",
                    "issue": [{"severity": "error", "code": "not-found"}],
                },
            )
        rtype = segments[0]
        matches = self._search(rtype, query)
        page = int(query.get("_page", ["1"])[0])
        start = (page - 1) * self.page_size
        chunk = matches[start : start + self.page_size]
        entries = [
            {
                "fullUrl": f"{self.base}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in chunk
        ]
        include = query.get("_include", [""])[0]
        if include.endswith(":medication"):
            for r in chunk:
                ref = r.get("medicationReference", {}).get("reference", "")
                if ref.startswith("Medication/"):
                    for med in self.resources:
                        if med["resourceType"] == "Medication" and f"Medication/{med['id']}" == ref:
                            entries.append(
                                {
                                    "fullUrl": f"{self.base}/{ref}",
                                    "resource": med,
                                    "search": {"mode": "include"},
                                }
                            )
        bundle: dict[str, Any] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(matches),
            "entry": entries,
        }
        if start + self.page_size < len(matches):
            next_query = {k: v[0] for k, v in query.items()}
            next_query["_page"] = str(page + 1)
            bundle["link"] = [
                {"relation": "next", "url": f"{self.base}/{rtype}?{urlencode(next_query)}"}
            ]
        return httpx.Response(200, json=bundle)


@pytest.fixture
def fake_ehr() -> Iterator[Any]:
    """Install a FakeEhr for the given resources: ``ehr = fake_ehr(resources)``."""
    with respx.mock(assert_all_called=False) as router:

        def install(resources: list[dict[str, Any]], **kw: Any) -> FakeEhr:
            ehr = FakeEhr(resources, **kw)
            router.route(url__regex=re.escape(ehr.base) + r"/.*").mock(side_effect=ehr.handler)
            return ehr

        yield install
