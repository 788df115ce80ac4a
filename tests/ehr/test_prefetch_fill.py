"""Prefetch filled from the discovery templates, from an in-memory or an HTTP FHIR server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from ehr.memory_fhir import MemoryFhirServer
from ehr.prefetch_fill import PrefetchRead, prefetch_from_memory, read_prefetch, without_parameters
from ehr.services import local_service
from tests.factories import blood_pressure, med_request, medication, observation, patient

BASE = "https://ehr.example/fhir"
TEMPLATES = local_service("trd-ketamine-screen")["prefetch"]
CONTEXT = {"patientId": "p1", "userId": "Practitioner/x"}


def _chart() -> list[dict[str, Any]]:
    orders = [
        med_request("sertraline", weeks_ago=w, mid=f"mr-{w}", medication_ref="Medication/med-1")
        for w in (9, 5, 1)
    ]
    return [
        patient(),
        blood_pressure(120, 80, days_ago=5),
        observation("2345-7", "Glucose", 100, weeks_ago=1, unit="mg/dL"),
        medication("med-1", "sertraline 50 MG Oral Tablet", rxcui="312941"),
        *orders,
    ]


def _types(value: dict[str, Any] | None) -> list[str]:
    if value is None:
        return []
    return [e["resource"]["resourceType"] for e in value["entry"]]


@pytest.mark.parametrize(
    ("ignore", "observations"),
    [((), 1), (("code",), 2)],
    ids=["code-filter-applied", "code-filter-ignored"],
)
def test_prefetch_from_memory_every_key_filled_or_null(
    ignore: tuple[str, ...], observations: int
) -> None:
    """Verify that each template key holds its search (pages merged, Medication included once)
    or null when nothing matched, and that an ignored parameter widens the search."""
    server = MemoryFhirServer(_chart(), base=BASE, page_size=2)
    prefetch = prefetch_from_memory(server, TEMPLATES, CONTEXT, ignore=ignore)
    assert set(prefetch) == set(TEMPLATES)
    assert prefetch["patient"]["id"] == "p1"
    assert prefetch["conditions"] is None and prefetch["allergies"] is None
    assert _types(prefetch["medicationRequests"]) == ["MedicationRequest"] * 2 + [
        "Medication",
        "MedicationRequest",
    ]
    assert prefetch["medicationRequests"]["total"] == 3
    assert "link" not in prefetch["medicationRequests"]
    assert len(_types(prefetch["observations"])) == observations


def _serve(change: Callable[[httpx.Request, MemoryFhirServer], httpx.Response | None]) -> Any:
    server = MemoryFhirServer(_chart(), base=BASE, page_size=2)

    def handler(request: httpx.Request) -> httpx.Response:
        return change(request, server) or server.handler(request)

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def _read(change: Callable[[httpx.Request, MemoryFhirServer], httpx.Response | None]) -> Any:
    async def go() -> PrefetchRead:
        async with _serve(change) as client:
            return await read_prefetch(client, BASE, TEMPLATES, CONTEXT)

    return asyncio.run(go())


def _failing_conditions(request: httpx.Request, _server: MemoryFhirServer) -> Any:
    if request.url.path.endswith("/Condition"):
        return httpx.Response(500, json={"resourceType": "OperationOutcome", "issue": []})
    return None


def _next_elsewhere(request: httpx.Request, server: MemoryFhirServer) -> Any:
    if request.url.path.endswith("/MedicationRequest"):
        answer = server.handler(request).json()
        answer["link"] = [{"relation": "next", "url": "https://evil.example/fhir/x"}]
        return httpx.Response(200, json=answer)
    return None


def _no_patient(request: httpx.Request, _server: MemoryFhirServer) -> Any:
    if request.url.path.endswith("/Patient/p1"):
        return httpx.Response(404, json={"resourceType": "OperationOutcome", "issue": []})
    return None


@pytest.mark.parametrize(
    ("change", "key", "problem", "check"),
    [
        (
            _failing_conditions,
            "conditions",
            "conditions: HTTP 500",
            lambda v: v["resourceType"] == "OperationOutcome",
        ),
        (
            _next_elsewhere,
            "medicationRequests",
            "medicationRequests: a paging link left the FHIR server; not followed",
            lambda v: len(v["entry"]) == 3,
        ),
        (_no_patient, "patient", None, lambda v: v is None),
    ],
    ids=["failed-query-outcome", "foreign-next-link-not-followed", "missing-read-null"],
)
def test_read_prefetch_server_trouble_reported_not_hidden(
    change: Any, key: str, problem: str | None, check: Callable[[Any], bool]
) -> None:
    """Verify that a failed query becomes an OperationOutcome, a foreign next link is not
    followed, and a read of nothing is null; problems are listed."""
    read = _read(change)
    assert check(read.prefetch[key]), read.prefetch[key]
    assert read.problems == ([problem] if problem else [])


@pytest.mark.parametrize(
    ("rendered", "names", "expected"),
    [
        ("Observation?patient=p1&code=a|b,c|d", ["code"], "Observation?patient=p1"),
        ("Observation?code=a|b", ["code"], "Observation"),
        ("Patient/p1", ["code"], "Patient/p1"),
        ("Condition?patient=p%26x", [], "Condition?patient=p%26x"),
    ],
    ids=["dropped", "only-parameter", "read", "nothing-to-drop"],
)
def test_without_parameters_drops_named_keeps_rest_verbatim(
    rendered: str, names: list[str], expected: str
) -> None:
    """Verify that only the named parameters go and the rest is kept byte for byte."""
    assert without_parameters(rendered, names) == expected
