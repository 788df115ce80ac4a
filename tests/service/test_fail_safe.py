"""Regressions of the fail-safe review: every former 500, the FHIR deadline, PHQ-9 shapes, the CDS
Hooks sandbox's draft orders, error bodies that echo input, feedback limits, API docs."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from tests.conformance import assert_conformant_response
from tests.conftest import FakeEhr, make_settings
from tests.factories import (
    LOINC,
    NOW,
    condition,
    course,
    draft_order,
    mdd,
    med_request,
    med_statement,
    observation,
    patient,
)
from tests.hook_requests import hook_request
from tests.scenarios import SERTRALINE_100, trd_patient

SCREEN = "trd-ketamine-screen"
SELECT = "trd-antidepressant-order"
SIGN = "ketamine-order-safety"


@pytest.fixture
def app_with() -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def make(transport: httpx.AsyncBaseTransport | None = None, **settings: Any) -> TestClient:
        app = create_app(make_settings(**settings), clock=lambda: NOW, transport=transport)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def _sertraline(**changes: Any) -> dict[str, Any]:
    name, rxcui = SERTRALINE_100
    order = med_request(name, rxcui=rxcui, weeks_ago=10, mid="odd-order")
    for path, value in changes.items():
        target = order
        *parents, leaf = path.split(".")
        for step in parents:
            target = target[int(step)] if step.isdigit() else target[step]
        target[leaf] = value
    return order


REPRODUCERS: dict[str, tuple[dict[str, Any], str]] = {
    "supply-3-million-days": (
        _sertraline(**{"dispenseRequest.expectedSupplyDuration.value": 3_000_000}),
        "implausible",
    ),
    "repeats-3-million": (
        _sertraline(**{"dispenseRequest.numberOfRepeatsAllowed": 3_000_000}),
        "implausible",
    ),
    "authored-year-9999": (_sertraline(authoredOn="9999-12-31"), "implausible date"),
    "authored-year-1": (_sertraline(authoredOn="0001-01-01"), "implausible date"),
    "dose-beyond-float": (
        _sertraline(**{"dosageInstruction.0.doseAndRate.0.doseQuantity.value": 10**400}),
        "",
    ),
    "dose-1e300": (
        _sertraline(**{"dosageInstruction.0.doseAndRate.0.doseQuantity.value": 1e300}),
        "",
    ),
    "frequency-huge": (
        _sertraline(**{"dosageInstruction.0.timing.repeat.frequency": 10**12}),
        "malformed",
    ),
    "bounds-end-year-9999": (
        _sertraline(
            **{
                "dosageInstruction.0.timing.repeat.boundsPeriod": {
                    "start": "2026-01-01",
                    "end": "9999-12-31",
                }
            }
        ),
        "",
    ),
}


@pytest.mark.parametrize("mode", ["prefetch", "fetch"])
@pytest.mark.parametrize("service", [SCREEN, SELECT, SIGN])
@pytest.mark.parametrize("case", list(REPRODUCERS), ids=list(REPRODUCERS))
def test_fail_safe_absurd_medication_values_answer_200_with_a_gap(
    case: str, service: str, mode: str, app_with: Callable[..., TestClient]
) -> None:
    """Verify that each former 500 (overflow in date or number arithmetic) now answers 200 on
    every hook, in both modes, with a conformant body and (where the value is absurd) a gap
    naming the record."""
    order, words = REPRODUCERS[case]
    resources = [patient(), mdd(), order]
    ehr = FakeEhr(resources, page_size=50)
    client = app_with(httpx.MockTransport(ehr.handler))
    drafts = [draft_order("esketamine 28 MG Nasal Spray (SPRAVATO)", dose=56, unit="mg")]
    body = hook_request(service, resources, mode=mode, draft_orders=drafts)
    response = client.post(f"/cds-services/{service}/explain", json=body)
    assert response.status_code == 200, response.text
    assert_conformant_response({"cards": response.json()["cards"]})
    assert "null" not in response.text
    if words:
        gaps = response.json()["assessment"].get("data_gaps", [])
        assert any("MedicationRequest/odd-order" in g and words in g for g in gaps), gaps


def test_fail_safe_integer_beyond_64_bits_in_a_fhir_answer_is_read(
    app_with: Callable[..., TestClient],
) -> None:
    """Verify that valid JSON with an integer beyond 64 bits (which orjson refuses) in a FHIR
    answer is read, not treated as a failed query."""
    order = _sertraline()
    order["dispenseRequest"]["numberOfRepeatsAllowed"] = 0
    raw = json.dumps(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": order}],
        }
    ).replace('"numberOfRepeatsAllowed": 0', '"numberOfRepeatsAllowed": ' + "9" * 40)
    ehr = FakeEhr([patient(), mdd()], page_size=50)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/MedicationRequest"):
            return httpx.Response(200, text=raw, headers={"Content-Type": "application/fhir+json"})
        return ehr.handler(request)

    client = app_with(httpx.MockTransport(handler))
    body = hook_request(SCREEN, [patient(), mdd(), order], mode="fetch")
    response = client.post(f"/cds-services/{SCREEN}/explain", json=body)
    assert response.status_code == 200, response.text
    gaps = response.json()["assessment"].get("data_gaps", [])
    assert not any(g.startswith("medicationRequests:") for g in gaps), gaps


# --- the FHIR deadline ---------------------------------------------------------------------


def test_fail_safe_slow_paging_server_answer_within_deadline_with_truncation_gap(
    app_with: Callable[..., TestClient],
) -> None:
    """Verify that a FHIR server answering each page slowly cannot hold a hook call past the
    deadline (plus a small margin): paging stops, what was read is used, the rest is a gap."""
    deadline = 1.0
    conditions = [mdd(cid=f"c{i}") for i in range(30)]
    resources = [patient(), *conditions, *trd_patient()[2:]]
    ehr = FakeEhr(resources, page_size=1)

    async def slow(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Condition"):
            await asyncio.sleep(0.3)
        return ehr.handler(request)

    client = app_with(httpx.MockTransport(slow), fhir_deadline_seconds=deadline, fhir_page_cap=1000)
    started = time.monotonic()
    response = client.post(
        f"/cds-services/{SCREEN}/explain", json=hook_request(SCREEN, resources, mode="fetch")
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert elapsed < deadline + 0.75, elapsed
    gaps = response.json()["assessment"]["data_gaps"]
    assert any(
        g.startswith("conditions:") and "deadline" in g and "not checked" in g for g in gaps
    ), gaps
    assert response.json()["assessment"]["recommendation"] != "refer-for-evaluation"


@pytest.mark.parametrize(
    ("retry_after", "calls", "ok"),
    [("0", 2, True), ("30", 1, False)],
    ids=["retry-after-within-deadline", "retry-after-beyond-deadline"],
)
def test_fail_safe_retry_after_honoured_only_within_the_deadline(
    retry_after: str, calls: int, ok: bool, app_with: Callable[..., TestClient]
) -> None:
    """Verify that a 429's Retry-After is waited for when it fits in the deadline, and that
    otherwise the query fails at once (no waiting past the deadline)."""
    resources = trd_patient()
    ehr = FakeEhr(resources, page_size=50)
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/AllergyIntolerance"):
            seen.append(str(request.url))
            if len(seen) == 1:
                return httpx.Response(429, headers={"Retry-After": retry_after})
        return ehr.handler(request)

    client = app_with(httpx.MockTransport(handler), fhir_deadline_seconds=2.0)
    started = time.monotonic()
    response = client.post(
        f"/cds-services/{SCREEN}/explain", json=hook_request(SCREEN, resources, mode="fetch")
    )
    assert time.monotonic() - started < 2.0
    assert response.status_code == 200, response.text
    assert len(seen) == calls
    gaps = response.json()["assessment"].get("data_gaps", [])
    assert any(g.startswith("allergies:") for g in gaps) is not ok, gaps


def test_fail_safe_next_link_repeating_a_page_ends_paging_no_double_count(
    app_with: Callable[..., TestClient],
) -> None:
    """Verify that a next link pointing at a page already read ends paging: entries are not
    counted twice, and the answer is reported as possibly incomplete."""
    resources = trd_patient()
    ehr = FakeEhr(resources, page_size=50)
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        response = ehr.handler(request)
        if request.url.path.endswith("/MedicationRequest"):
            calls.append(str(request.url))
            bundle = json.loads(response.content)
            bundle["link"] = [{"relation": "next", "url": str(request.url)}]
            return httpx.Response(200, json=bundle)
        return response

    client = app_with(httpx.MockTransport(handler))
    response = client.post(
        f"/cds-services/{SCREEN}/explain", json=hook_request(SCREEN, resources, mode="fetch")
    )
    assert response.status_code == 200, response.text
    assert len(calls) == 1
    body = response.json()
    orders = sum(r["resourceType"] == "MedicationRequest" for r in resources)
    assert body["explanation"]["resources_by_key"]["medicationRequests"] == orders
    assert any("already read" in g for g in body["assessment"]["data_gaps"])


# --- PHQ-9 in every shape -----------------------------------------------------------------------


def _coded_item9(answer: str) -> dict[str, Any]:
    return observation(
        "44260-8",
        "Thoughts that you would be better off dead",
        None,
        weeks_ago=1,
        value_code=(LOINC, answer, "answer"),
    )


def _panel(item9: dict[str, Any], total: dict[str, Any] | None) -> dict[str, Any]:
    panel = observation("44249-1", "PHQ-9 panel", None, weeks_ago=1)
    components = [{"code": {"coding": [{"system": LOINC, "code": "44260-8"}]}, **item9}]
    if total is not None:
        components.append({"code": {"coding": [{"system": LOINC, "code": "44261-6"}]}, **total})
    panel["component"] = components
    return panel


PHQ9_SHAPES: dict[str, tuple[dict[str, Any], bool]] = {
    "item9-loinc-answer-several-days": (_coded_item9("LA6569-3"), True),
    "item9-loinc-answer-nearly-every-day": (_coded_item9("LA6571-9"), True),
    "item9-loinc-answer-not-at-all": (_coded_item9("LA6568-5"), False),
    "panel-item9-coded": (
        _panel({"valueCodeableConcept": {"coding": [{"system": LOINC, "code": "LA6570-1"}]}}, None),
        True,
    ),
    "panel-item9-integer": (_panel({"valueInteger": 2}, {"valueInteger": 21}), True),
    "panel-item9-quantity-zero": (
        _panel({"valueQuantity": {"value": 0}}, {"valueQuantity": {"value": 21}}),
        False,
    ),
}


@pytest.mark.parametrize("mode", ["prefetch", "fetch"])
@pytest.mark.parametrize("case", list(PHQ9_SHAPES), ids=list(PHQ9_SHAPES))
def test_fail_safe_phq9_item9_read_in_every_shape(
    case: str, mode: str, app_with: Callable[..., TestClient]
) -> None:
    """Verify that PHQ-9 item 9 is read as a LOINC answer code, inside a panel (coded, integer or
    quantity), and that "not at all" is not suicidal ideation."""
    observation_resource, positive = PHQ9_SHAPES[case]
    resources = [patient(), mdd(), copy.deepcopy(observation_resource)]
    ehr = FakeEhr(resources, page_size=50)
    client = app_with(httpx.MockTransport(ehr.handler))
    body = hook_request(SCREEN, resources, mode=mode)
    response = client.post(f"/cds-services/{SCREEN}/explain", json=body)
    assert response.status_code == 200, response.text
    screens = {s["id"]: s for s in response.json()["assessment"]["screens"]}
    assert (screens["suicidal-ideation"]["status"] == "found") is positive, screens


def test_fail_safe_phq9_panel_total_component_counts_as_severity(
    app_with: Callable[..., TestClient],
) -> None:
    """Verify that the total component of a PHQ-9 panel is read as the PHQ-9 total (severity
    is a candidate reason after a failed trial, so the patient has one)."""
    panel = _panel({"valueInteger": 0}, {"valueInteger": 24})
    failed = course(
        SERTRALINE_100[0],
        rxcui=SERTRALINE_100[1],
        start_weeks_ago=30,
        weeks=12,
        last_reason="ineffective",
    )
    resources = [patient(), mdd(), *failed, panel]
    client = app_with()
    body = hook_request(SCREEN, resources)
    assessment = client.post(f"/cds-services/{SCREEN}/explain", json=body).json()["assessment"]
    screens = {s["id"]: s for s in assessment["screens"]}
    assert screens["severe-depression"]["status"] == "found"
    assert screens["severe-depression"]["evidence"] == [f"Observation/{panel['id']}"]


# --- draft orders as the CDS Hooks sandbox sends them -------------------------------------------


def _sandbox_draft(*, drug: bool, ketamine: bool = True) -> dict[str, Any]:
    """The sandbox's draft MedicationRequest (src/reducers/medication-reducers.js): category as
    one object, and no intent until a drug is chosen."""
    order: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": "request-123",
        "status": "draft",
        "subject": {"reference": "Patient/p1"},
        "authoredOn": NOW.date().isoformat(),
    }
    if drug:
        order["dosageInstruction"] = [
            {
                "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [
                    {
                        "doseQuantity": {
                            "value": 2 if ketamine else 1,
                            "system": "http://unitsofmeasure.org",
                            "code": "{pill}",
                        }
                    }
                ],
            }
        ]
        order["intent"] = "order"
        order["category"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
                    "code": "community",
                }
            ]
        }
        name = "esketamine 28 MG Nasal Spray" if ketamine else "mirtazapine 30 MG Oral Tablet"
        code = "2119365" if ketamine else "314111"
        order["medicationCodeableConcept"] = {
            "text": name,
            "coding": [
                {
                    "display": name,
                    "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                    "code": code,
                }
            ],
        }
    return order


@pytest.mark.parametrize(
    ("service", "draft", "expect"),
    [
        (SIGN, _sandbox_draft(drug=True), "critical"),
        (SIGN, _sandbox_draft(drug=False), None),
        (SELECT, _sandbox_draft(drug=True, ketamine=False), "info"),
        (SELECT, _sandbox_draft(drug=False), None),
    ],
    ids=[
        "order-sign-esketamine-category-object",
        "order-sign-no-drug-chosen-yet",
        "order-select-mirtazapine-category-object",
        "order-select-no-drug-chosen-yet",
    ],
)
def test_fail_safe_sandbox_draft_order_read_not_dropped(
    service: str, draft: dict[str, Any], expect: str | None, app_with: Callable[..., TestClient]
) -> None:
    """Verify that the sandbox's draft order (category as an object; no intent before a drug is
    chosen) is read and checked, not dropped as malformed: esketamine for a patient with
    schizophrenia gets the critical card; mirtazapine after two failed trials gets the card."""
    resources = trd_patient(condition("F20.9", "Schizophrenia, unspecified"))
    if service == SELECT:
        resources = trd_patient()
    body = hook_request(service, resources, draft_orders=[draft])
    response = app_with().post(f"/cds-services/{service}/explain", json=body)
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    assert_conformant_response({"cards": cards})
    indicators = [c["indicator"] for c in cards]
    assert (expect in indicators) if expect else indicators == [], cards


def test_fail_safe_unidentifiable_draft_order_gets_a_card(
    app_with: Callable[..., TestClient],
) -> None:
    """Verify that a draft order whose drug cannot be identified (a Medication reference that
    was not sent) is never passed silently at order-sign."""
    draft = draft_order("x", mid="mystery")
    del draft["medicationCodeableConcept"]
    draft["medicationReference"] = {"reference": "Medication/not-sent"}
    body = hook_request(SIGN, trd_patient(), draft_orders=[draft])
    response = app_with().post(f"/cds-services/{SIGN}/explain", json=body)
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    assert [c["indicator"] for c in cards] == ["warning"]
    assert "could not be read" in cards[0]["summary"]
    assert "MedicationRequest/mystery" in cards[0]["detail"]


# --- the HTTP edge -------------------------------------------------------------------------------


def test_fail_safe_error_body_quotes_only_a_short_excerpt(
    app_with: Callable[..., TestClient],
) -> None:
    """Verify that a 1 MB hook value comes back as a short excerpt in the 400 body."""
    body = hook_request(SCREEN, trd_patient())
    body["hook"] = "x" * 1_000_000
    response = app_with().post(f"/cds-services/{SCREEN}", json=body)
    assert response.status_code == 400
    assert len(response.content) < 1_000
    assert "xxxxx" in response.text


def test_fail_safe_feedback_item_limit_413_not_thousands_of_log_lines(
    app_with: Callable[..., TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    """Verify that a feedback body over the item limit is refused before any item is logged."""
    item = {
        "card": "0f6c1d9a-4a2e-4a45-9c9f-000000000001",
        "outcome": "overridden",
        "outcomeTimestamp": "2026-11-27T10:00:00Z",
    }
    client = app_with(max_feedback_items=100)
    response = client.post(f"/cds-services/{SCREEN}/feedback", json={"feedback": [item] * 20_000})
    assert response.status_code == 413
    assert "at most 100" in response.json()["issue"][0]["diagnostics"]
    assert not [r for r in caplog.records if r.getMessage().startswith("feedback ")]


@pytest.mark.parametrize(("enabled", "status"), [(False, 404), (True, 200)], ids=["off", "on"])
def test_fail_safe_api_docs_only_when_enabled(
    enabled: bool, status: int, app_with: Callable[..., TestClient]
) -> None:
    """Verify that /docs and /openapi.json are off unless KETAMINE_CDS_API_DOCS turns them on."""
    client = app_with(api_docs=enabled)
    assert client.get("/openapi.json").status_code == status
    assert client.get("/docs").status_code == status


def test_fail_safe_explain_has_no_null_or_empty_value(app_with: Callable[..., TestClient]) -> None:
    """Verify that the explain answer (ongoing trial, unknown dose) has no null or empty value."""
    resources = [
        *trd_patient(),
        med_statement("Wellbutrin", start_weeks_ago=80, end_weeks_ago=70),
    ]
    body = hook_request(SCREEN, resources)
    response = app_with().post(f"/cds-services/{SCREEN}/explain", json=body)
    assert response.status_code == 200

    def walk(value: Any, path: str) -> None:
        assert value is not None and value not in ("", [], {}), path
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]")

    walk(response.json(), "body")
    trials = response.json()["assessment"]["trials"]
    assert any(t["outcome"] == "ongoing" and "end" not in t for t in trials), trials
    assert any(t["outcome"] == "unknown-dose" and "max_daily_dose_mg" not in t for t in trials)


def test_fail_safe_malformed_record_log_line_names_type_not_id(
    app_with: Callable[..., TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    """Verify that the log line of a malformed record names its type and elements, never its
    id (ids are patient data)."""
    bad = condition("F20.9", "Schizophrenia", cid="cond-SECRET-77")
    bad["clinicalStatus"] = 5
    body = hook_request(SCREEN, [*trd_patient(), bad])
    response = app_with().post(f"/cds-services/{SCREEN}/explain", json=body)
    assert response.status_code == 200
    lines = [r.getMessage() for r in caplog.records]
    assert any("malformed" in line and "Condition" in line for line in lines), lines
    assert not any("SECRET" in line for line in lines), lines
