"""The in-memory FHIR server: reads, searches (patient, code, _include), paging, its request log."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ehr.memory_fhir import MemoryFhirServer
from tests.factories import blood_pressure, med_request, medication, patient, phq9

BASE = "https://ehr.example/fhir"
LOINC = "http://loinc.org"


def _chart() -> list[dict[str, Any]]:
    other = blood_pressure(150, 95, days_ago=3, pid="p2")
    other["id"] = "bp-other"
    unnamed = phq9(12, weeks_ago=2)
    unnamed["id"] = "phq-unnamed"
    del unnamed["subject"]
    bp = blood_pressure(120, 80, days_ago=5)
    bp["id"] = "bp-1"
    score = phq9(18, weeks_ago=1)
    score["id"] = "phq-1"
    orders = [
        med_request(
            "sertraline 50 MG Oral Tablet",
            weeks_ago=w,
            mid=f"mr-{w}",
            medication_ref="Medication/med-1",
        )
        for w in (9, 5, 1)
    ]
    return [
        patient(),
        patient("p2"),
        bp,
        score,
        other,
        unnamed,
        medication("med-1", "sertraline 50 MG Oral Tablet", rxcui="312941"),
        *orders,
    ]


def _ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    return [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == mode]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("patient=p1", ["bp-1", "phq-1", "phq-unnamed"]),
        ("patient=Patient/p2", ["bp-other", "phq-unnamed"]),
        (f"patient=p1&code={LOINC}|85354-9", ["bp-1"]),
        (f"patient=p1&code={LOINC}|85354-9,{LOINC}|44261-6", ["bp-1", "phq-1", "phq-unnamed"]),
        ("patient=p1&code=85354-9", ["bp-1"]),
        ("patient=p1&code=|85354-9", []),
        ("patient=p1&code=http://snomed.info/sct|85354-9", []),
    ],
    ids=[
        "patient",
        "patient-reference",
        "system-and-code",
        "code-list",
        "bare-code-any-system",
        "empty-system-only-codings-without-one",
        "other-system",
    ],
)
def test_memory_fhir_search_filters_patient_and_code_matches(
    query: str, expected: list[str]
) -> None:
    """Verify that a type search keeps the patient's resources (and unnamed ones) with the codes."""
    status, bundle = MemoryFhirServer(_chart(), base=BASE).handle("/fhir/Observation", query)
    assert status == 200
    assert sorted(_ids(bundle)) == expected
    assert bundle["total"] == len(expected)


@pytest.mark.parametrize(
    ("path", "status", "kind"),
    [
        ("/fhir/Patient/p2", 200, "Patient"),
        ("/fhir/Patient/nobody", 404, "OperationOutcome"),
        ("/fhir/Patient/p1/_history", 400, "OperationOutcome"),
        ("/other/Patient/p1", 404, "OperationOutcome"),
    ],
    ids=["read", "unknown-id", "history", "outside-base"],
)
def test_memory_fhir_read_known_and_unknown_status(path: str, status: int, kind: str) -> None:
    """Verify that reads answer the resource, 404 for an unknown id, 400/404 for other paths."""
    answer_status, body = MemoryFhirServer(_chart(), base=BASE).handle(path, "")
    assert (answer_status, body["resourceType"]) == (status, kind)


def test_memory_fhir_include_medication_once_per_page() -> None:
    """Verify that _include adds each referenced Medication once, marked as an include."""
    server = MemoryFhirServer(_chart(), base=BASE)
    query = "patient=p1&_include=MedicationRequest:medication"
    status, bundle = server.handle("/fhir/MedicationRequest", query)
    assert status == 200
    assert _ids(bundle) == ["mr-9", "mr-5", "mr-1"]
    assert _ids(bundle, "include") == ["med-1"]
    assert bundle["total"] == 3


@pytest.mark.parametrize(
    ("page_size", "count", "pages"),
    [(2, None, [["mr-9", "mr-5"], ["mr-1"]]), (100, "1", [["mr-9"], ["mr-5"], ["mr-1"]])],
    ids=["server-page-size", "count-parameter"],
)
def test_memory_fhir_paging_next_links_reach_every_match(
    page_size: int, count: str | None, pages: list[list[str]]
) -> None:
    """Verify that pages follow each other through next links until every match is read."""
    server = MemoryFhirServer(_chart(), base=BASE, page_size=page_size)
    url: str | None = f"{BASE}/MedicationRequest?patient=p1" + (f"&_count={count}" if count else "")
    seen = []
    while url is not None:
        path, _, query = url.removeprefix("https://ehr.example").partition("?")
        status, bundle = server.handle(path, query)
        assert status == 200 and bundle["total"] == 3
        seen.append(_ids(bundle))
        url = next((k["url"] for k in bundle["link"] if k["relation"] == "next"), None)
    assert seen == pages


@pytest.mark.parametrize("query", ["_count=0", "_page=x"], ids=["zero-count", "bad-page"])
def test_memory_fhir_bad_paging_parameter_400(query: str) -> None:
    """Verify that a paging parameter that is not a positive number is refused."""
    status, body = MemoryFhirServer(_chart(), base=BASE).handle("/fhir/Observation", query)
    assert status == 400 and body["resourceType"] == "OperationOutcome"


def test_memory_fhir_transport_answers_and_logs_requests() -> None:
    """Verify that the httpx transport answers FHIR JSON, logs each request, refuses writes."""
    server = MemoryFhirServer(_chart(), base=BASE)
    with httpx.Client(transport=server.transport()) as client:
        read = client.get(f"{BASE}/Patient/a%2Fb")
        search = client.get(f"{BASE}/Observation", params={"patient": "p1"})
        write = client.post(f"{BASE}/Observation", json={})
    assert [read.status_code, search.status_code, write.status_code] == [404, 200, 405]
    assert search.headers["content-type"] == "application/fhir+json"
    assert search.json()["total"] == 3
    assert [r.url.raw_path for r in server.requests] == [
        b"/fhir/Patient/a%2Fb",
        b"/fhir/Observation?patient=p1",
        b"/fhir/Observation",
    ]
