"""Fault injection: every fault a FHIR server or an EHR's prefetch can produce, injected into each
of the six queries, for a patient whose contraindication (or treatment evidence) lives in that
resource type. Whatever the fault: no 5xx, a named gap, and never a clean referral or a silent
order-sign (a check that could not be done is never reported as passed).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from tests.conformance import assert_conformant_response
from tests.conftest import EHR, FakeEhr, make_settings
from tests.factories import (
    NOW,
    allergy,
    blood_pressure,
    condition,
    draft_order,
    mdd,
    med_statement,
    patient,
)
from tests.hook_requests import hook_request
from tests.scenarios import trd_patient

SCREEN = "trd-ketamine-screen"
SIGN = "ketamine-order-safety"
DEADLINE = 1.0
"""A short FHIR deadline, so that the hanging server costs little test time (long enough for the
queries that work to finish on a loaded machine)."""


def _statements_patient() -> list[dict[str, Any]]:
    """TRD documented only by MedicationStatements (both stopped as ineffective)."""
    return [
        patient(),
        mdd(),
        med_statement(
            "Zoloft 150 mg daily",
            start_weeks_ago=70,
            end_weeks_ago=58,
            dose_mg=150,
            status="stopped",
            status_reason="ineffective",
        ),
        med_statement(
            "Lexapro",
            start_weeks_ago=56,
            end_weeks_ago=46,
            dose_mg=20,
            status="stopped",
            status_reason="No response",
        ),
        blood_pressure(118, 76, days_ago=3),
    ]


@dataclass(frozen=True)
class Target:
    key: str
    build: Callable[[], list[dict[str, Any]]]
    screen: str
    """The screen whose evidence lives in this resource type."""
    baseline: str
    """The recommendation with no fault (proves the evidence is there to lose)."""
    required: bool


TARGETS: dict[str, Target] = {
    "Patient": Target(
        "patient", lambda: trd_patient(birth="2012-03-01"), "minor", "not-recommended", True
    ),
    "Condition": Target(
        "conditions",
        lambda: trd_patient(condition("F20.9", "Schizophrenia, unspecified")),
        "psychosis-history",
        "not-recommended",
        True,
    ),
    "MedicationRequest": Target(
        "medicationRequests",
        trd_patient,
        "treatment-resistant-depression",
        "refer-for-evaluation",
        True,
    ),
    "MedicationStatement": Target(
        "medicationStatements",
        _statements_patient,
        "treatment-resistant-depression",
        "refer-for-evaluation",
        False,
    ),
    "Observation": Target(
        "observations",
        lambda: trd_patient(blood_pressure(178, 108, days_ago=1)),
        "uncontrolled-hypertension",
        "not-recommended",
        False,
    ),
    "AllergyIntolerance": Target(
        "allergies",
        lambda: trd_patient(allergy("ketamine", rxcui="6130")),
        "ketamine-hypersensitivity",
        "not-recommended",
        False,
    ),
}

Fault = Callable[[httpx.Request], Awaitable[httpx.Response]]


def _bundle(entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": entries}


ERROR_OUTCOME = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "exception", "diagnostics": "backend down"}],
}


def _respond(make: Callable[[], httpx.Response]) -> Fault:
    async def fault(request: httpx.Request) -> httpx.Response:
        return make()

    return fault


async def _hang(request: httpx.Request) -> httpx.Response:
    await asyncio.sleep(DEADLINE * 5)
    return httpx.Response(200, json=_bundle([]))


HTTP_FAULTS: dict[str, Fault] = {
    "500": _respond(lambda: httpx.Response(500)),
    "503": _respond(lambda: httpx.Response(503)),
    "429": _respond(lambda: httpx.Response(429, headers={"Retry-After": "0"})),
    "401": _respond(lambda: httpx.Response(401)),
    "404": _respond(lambda: httpx.Response(404, json=ERROR_OUTCOME)),
    "hang": _hang,
    "html": _respond(
        lambda: httpx.Response(
            200, text="<html>Login</html>", headers={"Content-Type": "text/html"}
        )
    ),
    "truncated-json": _respond(
        lambda: httpx.Response(200, text='{"resourceType": "Bundle", "entry": [')
    ),
    "non-bundle": _respond(lambda: httpx.Response(200, json={"resourceType": "Basic", "id": "x"})),
    "error-outcome-bundle": _respond(
        lambda: httpx.Response(200, json=_bundle([{"resource": ERROR_OUTCOME}]))
    ),
    "wrong-entry-type": _respond(
        lambda: httpx.Response(
            200, json=_bundle([{"resource": {"resourceType": "Basic", "id": "b1"}}])
        )
    ),
    "entry-without-resource": _respond(
        lambda: httpx.Response(200, json=_bundle([{"fullUrl": f"{EHR}/Basic/b1"}]))
    ),
}
"""What a FHIR server answers instead of the search (or read) the service sent."""

PREFETCH_FAULTS: dict[str, Any] = {
    "operation-outcome": ERROR_OUTCOME,
    "missing-key": ...,
    "error-outcome-bundle": _bundle([{"resource": ERROR_OUTCOME}]),
    "non-bundle-answer": {"resourceType": "Basic", "id": "x"},
    "wrong-entry-type": _bundle([{"resource": {"resourceType": "Basic", "id": "b1"}}]),
    "entry-without-resource": _bundle([{"fullUrl": "urn:uuid:1"}]),
}
"""What an EHR puts in the prefetch key instead of the answer (``...``: the key is left out and
no fhirServer is sent)."""


class FaultyEhr:
    """A FHIR server double that answers every query correctly except those of one type."""

    def __init__(self, resources: list[dict[str, Any]], broken: str, fault: Fault) -> None:
        self._ehr = FakeEhr(resources, page_size=50)
        self._broken = broken
        self._fault = fault
        self.broken_calls = 0

    async def handle(self, request: httpx.Request) -> httpx.Response:
        path = urlsplit(str(request.url)).path.removeprefix(urlsplit(EHR).path).strip("/")
        if path.split("/")[0] == self._broken:
            self.broken_calls += 1
            return await self._fault(request)
        return self._ehr.handler(request)


@pytest.fixture
def app_for() -> Iterator[Callable[[FaultyEhr | None], TestClient]]:
    clients: list[TestClient] = []

    def make(ehr: FaultyEhr | None) -> TestClient:
        transport = httpx.MockTransport(ehr.handle) if ehr is not None else None
        settings = make_settings(fhir_deadline_seconds=DEADLINE, fhir_timeout_seconds=DEADLINE)
        client = TestClient(create_app(settings, clock=lambda: NOW, transport=transport))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def _orders() -> list[dict[str, Any]]:
    return [
        draft_order("esketamine 28 MG Nasal Spray (SPRAVATO)", mid="draft-esk", dose=56, unit="mg")
    ]


def _request(service: str, target: Target, mode: str) -> dict[str, Any]:
    orders = _orders() if service == SIGN else None
    return hook_request(service, target.build(), mode=mode, draft_orders=orders)


def _check_answer(service: str, target: Target, response: httpx.Response) -> None:
    """The fault-safe answer: 412 naming the key for required data; otherwise a named gap, no
    referral, and (order-sign) a card that names what could not be checked."""
    assert response.status_code < 500, response.text
    if target.required:
        assert response.status_code == 412, response.text
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert f"'{target.key}'" in outcome["issue"][0]["diagnostics"]
        return
    assert response.status_code == 200, response.text
    body = response.json()
    assert_conformant_response({"cards": body["cards"]})
    assert "null" not in json.dumps(body)
    assessment = body["assessment"]
    gaps = assessment.get("data_gaps", [])
    named = [g for g in gaps if g.startswith(f"{target.key}:") and "not checked: " in g]
    assert named, gaps
    screen = next(s for s in assessment["screens"] if s["id"] == target.screen)
    assert screen.get("why"), screen
    assert assessment["recommendation"] != "refer-for-evaluation"
    assert not any(c.get("suggestions") for c in body["cards"] if c["indicator"] == "info")
    if service == SCREEN and target.screen == "treatment-resistant-depression":
        # Nothing read shows a failed trial: the patient is not shown as a candidate, and the
        # explain answer names the query that failed (one failure short would be a card).
        assert assessment["recommendation"] == "not-a-candidate"
    elif service == SCREEN:
        assert assessment["recommendation"] == "insufficient-data"
        assert [c["indicator"] for c in body["cards"]] == ["info"]
    else:
        cards = [c for c in body["cards"] if c["indicator"] in ("warning", "critical")]
        assert cards, body["cards"]
        assert any(f"{target.key}:" in c.get("detail", "") for c in cards), cards


@pytest.mark.parametrize("service", [SCREEN, SIGN], ids=["patient-view", "order-sign"])
@pytest.mark.parametrize("rtype", list(TARGETS), ids=list(TARGETS))
def test_fault_free_baseline_shows_the_evidence(
    rtype: str, service: str, app_for: Callable[..., TestClient]
) -> None:
    """Verify that without a fault each patient shows the evidence the faults will hide."""
    target = TARGETS[rtype]
    ehr = FaultyEhr(target.build(), "None", _respond(lambda: httpx.Response(500)))
    client = app_for(ehr)
    response = client.post(
        f"/cds-services/{service}/explain", json=_request(service, target, "fetch")
    )
    assert response.status_code == 200, response.text
    assessment = response.json()["assessment"]
    assert assessment["recommendation"] == target.baseline
    screen = next(s for s in assessment["screens"] if s["id"] == target.screen)
    assert screen["status"] == "found"


@pytest.mark.parametrize("service", [SCREEN, SIGN], ids=["patient-view", "order-sign"])
@pytest.mark.parametrize("fault", list(HTTP_FAULTS), ids=list(HTTP_FAULTS))
@pytest.mark.parametrize("rtype", list(TARGETS), ids=list(TARGETS))
def test_fault_in_fhir_query_never_a_clean_answer(
    rtype: str, fault: str, service: str, app_for: Callable[..., TestClient]
) -> None:
    """Verify that a FHIR query failing in any way is a named gap (or 412 for required data),
    never "nothing found": no clean referral, no silent order-sign, no 5xx."""
    target = TARGETS[rtype]
    ehr = FaultyEhr(target.build(), rtype, HTTP_FAULTS[fault])
    client = app_for(ehr)
    response = client.post(
        f"/cds-services/{service}/explain", json=_request(service, target, "fetch")
    )
    assert ehr.broken_calls >= 1
    _check_answer(service, target, response)


@pytest.mark.parametrize("service", [SCREEN, SIGN], ids=["patient-view", "order-sign"])
@pytest.mark.parametrize("fault", list(PREFETCH_FAULTS), ids=list(PREFETCH_FAULTS))
@pytest.mark.parametrize("rtype", list(TARGETS), ids=list(TARGETS))
def test_fault_in_prefetch_never_a_clean_answer(
    rtype: str, fault: str, service: str, app_for: Callable[..., TestClient]
) -> None:
    """Verify that a prefetch key holding a failure or garbage (or missing, with no fhirServer)
    is a named gap (or 412 for required data), never "nothing found"."""
    target = TARGETS[rtype]
    body = _request(service, target, "prefetch")
    value = PREFETCH_FAULTS[fault]
    if value is ...:
        del body["prefetch"][target.key]
    else:
        body["prefetch"][target.key] = value
    response = app_for(None).post(f"/cds-services/{service}/explain", json=body)
    _check_answer(service, target, response)
