"""Gathering through the HTTP API (explain endpoint of trd-ketamine-screen): prefetch values,
FHIR fallback, paging, retries, redirects, timeouts, concurrency and malformed data
(checklist D items 40-50, E items 54-59, M items 111-114, Q1, Q2, Q16)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import respx
from fastapi.testclient import TestClient

from hooks.relevance import observation_lists
from hooks.rules.knowledge import default_knowledge
from service.main import create_app
from tests.conftest import EHR, FakeEhr, make_settings
from tests.factories import (
    NOW,
    allergy,
    condition,
    mdd,
    med_request,
    medication,
    patient,
    phq9,
    searchset,
)
from tests.hook_requests import hook_request
from tests.scenarios import SERTRALINE_100, trd_patient

SCREEN = "trd-ketamine-screen"
EXPLAIN = f"/cds-services/{SCREEN}/explain"
TOKEN = "secret-token-abc"
AUTH = hook_request(SCREEN, [], mode="fetch")["fhirAuthorization"]
REQUIRED = ("patient", "conditions", "medicationRequests")
OPTIONAL = (
    "medicationStatements",
    "observations",
    "allergies",
    "medicationAdministrations",
    "medicationDispenses",
    "serviceRequests",
)
ALL_KEYS = REQUIRED + OPTIONAL
IN_PROGRESS_KEYS = ("medicationAdministrations", "medicationDispenses", "serviceRequests")
TYPE_OF_KEY = {
    "patient": "Patient",
    "conditions": "Condition",
    "medicationRequests": "MedicationRequest",
    "medicationStatements": "MedicationStatement",
    "observations": "Observation",
    "allergies": "AllergyIntolerance",
    "medicationAdministrations": "MedicationAdministration",
    "medicationDispenses": "MedicationDispense",
    "serviceRequests": "ServiceRequest",
}
OBS_CODES = {
    code
    for name in observation_lists(default_knowledge())
    for _, code in default_knowledge().code_list(name).codes
}
MISSING = object()
ELSEWHERE = r"^(?!https://ehr\.example/fhir/)"
"""Any URL that is not below the allowed fhirServer (look-alike hosts, other schemes/ports...)."""


def _outcome(bundle_wrapped: bool, severity: str = "error") -> dict[str, Any]:
    outcome = {
        "resourceType": "OperationOutcome",
        "id": "oo-1",
        "issue": [{"severity": severity, "code": "exception", "diagnostics": "query failed"}],
    }
    if not bundle_wrapped:
        return outcome
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": outcome, "search": {"mode": "outcome"}}],
    }


def _prefetched(
    resources: list[dict[str, Any]],
    keys: dict[str, Any] | None = None,
    *,
    server: bool = False,
    token: bool = True,
) -> dict[str, Any]:
    """A full-prefetch request; ``keys`` replaces values (MISSING removes the key)."""
    body = hook_request(SCREEN, resources, mode="prefetch", observation_codes=OBS_CODES)
    for key, value in (keys or {}).items():
        if value is MISSING:
            del body["prefetch"][key]
        else:
            body["prefetch"][key] = value
    if server:
        body["fhirServer"] = EHR
        if token:
            body["fhirAuthorization"] = dict(AUTH)
    return body


def _gaps(response: httpx.Response) -> list[str]:
    gaps: list[str] = response.json()["assessment"].get("data_gaps", [])
    return gaps


def _assert_outcome(response: httpx.Response, status: int, *mentions: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    issue = body["issue"][0]
    assert issue["severity"] in ("error", "fatal")
    assert issue["code"]
    for mention in mentions:
        assert mention in issue["diagnostics"], issue["diagnostics"]


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    """respx for all outbound HTTP; route ``elsewhere`` catches any URL outside fhirServer."""
    with respx.mock(assert_all_called=False) as mock:
        mock.route(name="elsewhere", url__regex=ELSEWHERE).mock(
            return_value=httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset"})
        )
        yield mock


@pytest.fixture(autouse=True)
def no_retry_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("service.fhir_gateway.RETRY_DELAY_SECONDS", 0.0)


def _install(router: respx.MockRouter, resources: list[dict[str, Any]], **kw: Any) -> FakeEhr:
    ehr = FakeEhr(resources, **kw)
    router.route(name="ehr", url__startswith=EHR + "/").mock(side_effect=ehr.handler)
    return ehr


def _capped_client(page_cap: int) -> TestClient:
    return TestClient(create_app(make_settings(fhir_page_cap=page_cap), clock=lambda: NOW))


def _types(ehr: FakeEhr) -> list[str]:
    return [r.url.path.removeprefix("/fhir/").split("/")[0] for r in ehr.requests]


# --- prefetch values: null, missing, OperationOutcome --------------------------------------------


@pytest.mark.parametrize("keys", [(k,) for k in ALL_KEYS] + [ALL_KEYS], ids=[*ALL_KEYS, "all-keys"])
def test_gather_null_prefetch_key_no_query_no_412(
    keys: tuple[str, ...], client: TestClient, router: respx.MockRouter
) -> None:
    """Verify that a null prefetch value is 'found nothing': no FHIR query and no 412."""
    ehr = _install(router, trd_patient())
    body = _prefetched(trd_patient(), dict.fromkeys(keys), server=True)
    response = client.post(EXPLAIN, json=body)
    assert response.status_code == 200, response.text
    explanation = response.json()["explanation"]
    assert explanation.get("fetched_by_service", []) == []
    assert all(explanation["resources_by_key"][k] == 0 for k in keys)
    assert ehr.requests == []
    assert router.calls.call_count == 0


@pytest.mark.parametrize("key", ALL_KEYS)
def test_gather_missing_key_with_fhir_server_fetched(
    key: str, client: TestClient, router: respx.MockRouter
) -> None:
    """Verify that a missing prefetch key is queried on fhirServer with the bearer token."""
    resources = trd_patient(phq9(21, weeks_ago=3), allergy("Penicillin"))
    ehr = _install(router, resources, page_size=100)
    full = client.post(EXPLAIN, json=_prefetched(resources))
    fetched = client.post(EXPLAIN, json=_prefetched(resources, {key: MISSING}, server=True))
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["explanation"].get("fetched_by_service", []) == [key]
    assert fetched.json()["assessment"] == full.json()["assessment"]
    assert _types(ehr) == [TYPE_OF_KEY[key]]
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in ehr.requests)
    assert router["elsewhere"].call_count == 0


def test_gather_missing_key_server_without_token_no_authorization_header(
    client: TestClient, router: respx.MockRouter
) -> None:
    """Verify that an open fhirServer (no fhirAuthorization) is queried with no Authorization."""
    ehr = _install(router, trd_patient())
    body = _prefetched(trd_patient(), {"conditions": MISSING}, server=True, token=False)
    response = client.post(EXPLAIN, json=body)
    assert response.status_code == 200, response.text
    assert len(ehr.requests) == 1
    assert "authorization" not in ehr.requests[0].headers


@pytest.mark.parametrize("key", REQUIRED)
def test_gather_missing_required_key_without_fhir_server_412(
    key: str, client: TestClient, router: respx.MockRouter
) -> None:
    """Verify that a required key neither prefetched nor fetchable gives 412 OperationOutcome."""
    response = client.post(EXPLAIN, json=_prefetched(trd_patient(), {key: MISSING}))
    _assert_outcome(response, 412, f"'{key}'", "fhirServer")
    assert response.json()["issue"][0]["code"] == "not-found"
    assert router.calls.call_count == 0


@pytest.mark.parametrize("key", OPTIONAL)
def test_gather_missing_optional_key_without_fhir_server_gap(
    key: str, client: TestClient, router: respx.MockRouter
) -> None:
    """Verify that an optional key neither prefetched nor fetchable is a data gap, not a 412."""
    response = client.post(EXPLAIN, json=_prefetched(trd_patient(), {key: MISSING}))
    assert response.status_code == 200, response.text
    assert any(g.startswith(f"{key}:") and "not checked" in g for g in _gaps(response))
    assert router.calls.call_count == 0


OUTCOME_FORMS = {
    "bare": _outcome(bundle_wrapped=False),
    "bare-warning": _outcome(bundle_wrapped=False, severity="warning"),
    "bundle-error": _outcome(bundle_wrapped=True),
    "bundle-fatal": _outcome(bundle_wrapped=True, severity="fatal"),
}


@pytest.mark.parametrize("form", ["bare", "bundle-error", "bundle-fatal"])
@pytest.mark.parametrize("key", REQUIRED)
def test_gather_operation_outcome_for_required_key_412_no_query(
    key: str, form: str, client: TestClient, router: respx.MockRouter
) -> None:
    """Verify that an OperationOutcome for a required key gives 412 and is not re-queried."""
    ehr = _install(router, trd_patient())
    body = _prefetched(trd_patient(), {key: OUTCOME_FORMS[form]}, server=True)
    response = client.post(EXPLAIN, json=body)
    _assert_outcome(response, 412, f"'{key}'")
    assert ehr.requests == []
    assert router.calls.call_count == 0


@pytest.mark.parametrize("form", ["bare", "bare-warning", "bundle-error", "bundle-fatal"])
@pytest.mark.parametrize("key", OPTIONAL)
def test_gather_operation_outcome_for_optional_key_gap_no_query(
    key: str, form: str, client: TestClient, router: respx.MockRouter
) -> None:
    """Verify that an OperationOutcome for an optional key gives 200 and a gap naming the key;
    a contraindication source that could not be read stops the referral, a source of treatment
    or referral in progress never withholds it (the card shows, with the gap)."""
    ehr = _install(router, trd_patient())
    body = _prefetched(trd_patient(), {key: OUTCOME_FORMS[form]}, server=True)
    response = client.post(EXPLAIN, json=body)
    assert response.status_code == 200, response.text
    assert any(
        g.startswith(f"{key}: the EHR reported that its query failed; not checked: ")
        for g in _gaps(response)
    ), _gaps(response)
    recommendation = response.json()["assessment"]["recommendation"]
    if key in IN_PROGRESS_KEYS:
        assert recommendation == "refer-for-evaluation"
        assert [c["indicator"] for c in response.json()["cards"]] == ["info"]
    else:
        assert recommendation != "refer-for-evaluation"
    assert response.json()["explanation"]["resources_by_key"][key] == 0
    assert ehr.requests == []


def test_gather_bundle_with_warning_outcome_and_matches_used_as_data(
    client: TestClient, router: respx.MockRouter
) -> None:
    """Verify that a searchset with matches plus a warning OperationOutcome entry is data."""
    resources = trd_patient()
    conditions = searchset([r for r in resources if r["resourceType"] == "Condition"])
    conditions["entry"].append(_outcome(bundle_wrapped=True, severity="warning")["entry"][0])
    response = client.post(
        EXPLAIN, json=_prefetched(resources, {"conditions": conditions}, server=True)
    )
    assert response.status_code == 200, response.text
    assert response.json()["explanation"]["resources_by_key"]["conditions"] == 1
    assert not any(g.startswith("conditions:") for g in _gaps(response))
    assert router.calls.call_count == 0


# --- paging ------------------------------------------------------------------------------------


def _first_page(resources: list[dict[str, Any]], rtype: str, next_url: str) -> dict[str, Any]:
    page = searchset([r for r in resources if r["resourceType"] == rtype][:2])
    page["link"] = [
        {"relation": "self", "url": f"{EHR}/{rtype}?patient=p1"},
        {"relation": "next", "url": next_url},
    ]
    return page


def test_gather_prefetch_next_link_same_host_followed_with_token(
    client: TestClient, router: respx.MockRouter
) -> None:
    """Verify that a prefetch Bundle's next link on fhirServer is followed with the bearer token."""
    resources = trd_patient()
    ehr = _install(router, resources, page_size=2)
    orders = [r for r in resources if r["resourceType"] == "MedicationRequest"]
    assert len(orders) > 4
    page = _first_page(
        resources, "MedicationRequest", f"{EHR}/MedicationRequest?patient=p1&_page=2"
    )
    full = client.post(EXPLAIN, json=_prefetched(resources))
    response = client.post(
        EXPLAIN, json=_prefetched(resources, {"medicationRequests": page}, server=True)
    )
    assert response.status_code == 200, response.text
    assert response.json()["explanation"]["resources_by_key"]["medicationRequests"] == len(orders)
    assert response.json()["assessment"] == full.json()["assessment"]
    assert ehr.requests, "the next link was not followed"
    assert "_page=1" not in str(ehr.requests[0].url)
    assert set(_types(ehr)) == {"MedicationRequest"}
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in ehr.requests)
    assert router["elsewhere"].call_count == 0


def test_gather_prefetch_next_link_without_fhir_server_first_page_gap(
    client: TestClient, router: respx.MockRouter
) -> None:
    """Verify that without fhirServer only the first prefetch page is used and a gap says so."""
    resources = trd_patient()
    page = _first_page(
        resources, "MedicationRequest", f"{EHR}/MedicationRequest?patient=p1&_page=2"
    )
    response = client.post(EXPLAIN, json=_prefetched(resources, {"medicationRequests": page}))
    assert response.status_code == 200, response.text
    assert response.json()["explanation"]["resources_by_key"]["medicationRequests"] == 2
    assert any(
        g.startswith("medicationRequests:") and "no fhirServer was given" in g
        for g in _gaps(response)
    ), _gaps(response)
    assert router.calls.call_count == 0


FOREIGN_NEXT = {
    "other-host": "https://evil.example/fhir/Condition?patient=p1&_page=2",
    "look-alike-host": "https://ehr.example.evil.com/fhir/Condition?patient=p1&_page=2",
    "look-alike-path": "https://ehr.example/fhirx/Condition?patient=p1&_page=2",
    "http-downgrade": "http://ehr.example/fhir/Condition?patient=p1&_page=2",
    "other-port": "https://ehr.example:8443/fhir/Condition?patient=p1&_page=2",
    "userinfo-host": "https://ehr.example@evil.example/fhir/Condition?patient=p1&_page=2",
    "dot-dot-path": "https://ehr.example/fhir/../admin/Condition?patient=p1&_page=2",
}


@pytest.mark.parametrize("origin", ["prefetch", "fetched"])
@pytest.mark.parametrize("next_url", list(FOREIGN_NEXT.values()), ids=list(FOREIGN_NEXT))
def test_gather_next_link_outside_fhir_server_not_followed_truncation_gap(
    next_url: str, origin: str, client: TestClient, router: respx.MockRouter
) -> None:
    """Verify that a next link outside fhirServer is never requested and the result is truncated."""
    resources = [patient(), mdd(cid="c1"), mdd(cid="c2"), *trd_patient()[2:]]
    page = _first_page(resources, "Condition", next_url)
    router.route(name="ehr", url__startswith=EHR + "/Condition").mock(
        return_value=httpx.Response(200, json=page)
    )
    if origin == "prefetch":
        body = _prefetched(resources, {"conditions": page}, server=True)
    else:
        body = _prefetched(resources, {"conditions": MISSING}, server=True)
    response = client.post(EXPLAIN, json=body)
    assert response.status_code == 200, response.text
    assert router["elsewhere"].call_count == 0, [str(c.request.url) for c in router.calls]
    assert router["ehr"].call_count == (1 if origin == "fetched" else 0)
    gaps = _gaps(response)
    assert any(
        g.startswith("conditions:") and "outside fhirServer" in g and "not checked" in g
        for g in gaps
    ), gaps
    assert response.json()["explanation"]["resources_by_key"]["conditions"] == 2


@pytest.mark.parametrize("origin", ["fetch", "prefetch-follow"])
def test_gather_page_cap_hit_truncated_gap(origin: str, router: respx.MockRouter) -> None:
    """Verify that paging stops at the page cap and the gap says the result was truncated."""
    conditions = [mdd(cid=f"c{i}") for i in range(5)]
    resources = [patient(), *conditions, *trd_patient()[2:]]
    ehr = _install(router, resources, page_size=1)
    if origin == "fetch":
        body = _prefetched(resources, {"conditions": MISSING}, server=True)
        expected_requests = 2
    else:
        first = _first_page(resources, "Condition", f"{EHR}/Condition?patient=p1&_page=2")
        first["entry"] = first["entry"][:1]
        body = _prefetched(resources, {"conditions": first}, server=True)
        expected_requests = 1
    with _capped_client(2) as capped:
        response = capped.post(EXPLAIN, json=body)
    assert response.status_code == 200, response.text
    assert _types(ehr) == ["Condition"] * expected_requests
    assert any(
        g.startswith("conditions: results truncated after 2 pages (page cap)")
        and "the rest were not checked" in g
        for g in _gaps(response)
    ), _gaps(response)
    assert response.json()["explanation"]["resources_by_key"]["conditions"] == 2


# --- failures of the FHIR server ----------------------------------------------------------------


TEMPORARY = {
    "429": httpx.Response(429, headers={"Retry-After": "1"}),
    "500": httpx.Response(500),
    "502": httpx.Response(502),
    "503": httpx.Response(503),
    "504": httpx.Response(504),
    "read-timeout": httpx.ReadTimeout,
    "connect-timeout": httpx.ConnectTimeout,
    "connect-error": httpx.ConnectError,
}


@pytest.mark.parametrize("first", list(TEMPORARY.values()), ids=list(TEMPORARY))
def test_gather_temporary_failure_then_success_one_retry(
    first: Any, client: TestClient, router: respx.MockRouter
) -> None:
    """Verify that one temporary FHIR failure is retried once and the retry's answer is used."""
    resources = trd_patient()
    route = router.get(f"{EHR}/Patient/p1").mock(
        side_effect=[first, httpx.Response(200, json=resources[0])]
    )
    response = client.post(EXPLAIN, json=_prefetched(resources, {"patient": MISSING}, server=True))
    assert response.status_code == 200, response.text
    assert route.call_count == 2
    assert response.json()["explanation"].get("fetched_by_service", []) == ["patient"]
    assert not any(g.startswith("patient:") for g in _gaps(response))


FAILURES: dict[str, tuple[Callable[[], list[Any]], int, str]] = {
    "503-twice": (lambda: [httpx.Response(503)] * 2, 2, "HTTP 503"),
    "429-twice": (lambda: [httpx.Response(429)] * 2, 2, "HTTP 429"),
    "read-timeout-twice": (lambda: [httpx.ReadTimeout] * 2, 2, "timed out"),
    "pool-timeout-twice": (lambda: [httpx.PoolTimeout] * 2, 2, "timed out"),
    "connect-error-twice": (lambda: [httpx.ConnectError] * 2, 2, "failed to connect"),
    "401": (lambda: [httpx.Response(401)], 1, "HTTP 401"),
    "403": (lambda: [httpx.Response(403)], 1, "HTTP 403"),
    "404": (lambda: [httpx.Response(404)], 1, "HTTP 404"),
    "redirect": (
        lambda: [httpx.Response(302, headers={"Location": "https://evil.example/fhir/x"})],
        1,
        "redirected",
    ),
    "not-json": (lambda: [httpx.Response(200, text="<html>login</html>")], 1, "JSON"),
    "json-array": (lambda: [httpx.Response(200, json=[1, 2])], 1, "FHIR resource"),
    "operation-outcome": (
        lambda: [httpx.Response(200, json=_outcome(bundle_wrapped=False))],
        1,
        "OperationOutcome",
    ),
}


@pytest.mark.parametrize("failure", list(FAILURES), ids=list(FAILURES))
@pytest.mark.parametrize("key", ["patient", "conditions", "observations", "allergies"])
def test_gather_fhir_failure_required_412_optional_gap(
    key: str, failure: str, client: TestClient, router: respx.MockRouter
) -> None:
    """Verify that a failed fallback query is 412 for a required key, a gap for an optional one."""
    effects, calls, words = FAILURES[failure]
    rtype = TYPE_OF_KEY[key]
    route = router.get(url__startswith=f"{EHR}/{rtype}").mock(side_effect=effects())
    response = client.post(EXPLAIN, json=_prefetched(trd_patient(), {key: MISSING}, server=True))
    assert route.call_count == calls
    assert router["elsewhere"].call_count == 0
    if key in REQUIRED:
        _assert_outcome(response, 412, f"'{key}'", words)
    else:
        assert response.status_code == 200, response.text
        gaps = [g for g in _gaps(response) if g.startswith(f"{key}:")]
        assert len(gaps) == 1 and words in gaps[0] and "not checked" in gaps[0], gaps


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_gather_redirect_to_other_host_not_followed(
    status: int, client: TestClient, router: respx.MockRouter
) -> None:
    """Verify that a FHIR redirect is never followed (no request, no token to the target)."""
    route = router.get(f"{EHR}/Patient/p1").mock(
        return_value=httpx.Response(
            status, headers={"Location": "https://evil.example/fhir/Patient/p1"}
        )
    )
    evil = router.get(url__startswith="https://evil.example/").mock(
        return_value=httpx.Response(200, json=patient())
    )
    response = client.post(
        EXPLAIN, json=_prefetched(trd_patient(), {"patient": MISSING}, server=True)
    )
    _assert_outcome(response, 412, "'patient'", "redirect")
    assert route.call_count == 1
    assert evil.call_count == 0
    assert router["elsewhere"].call_count == 0


@pytest.mark.parametrize("error", [httpx.ReadTimeout, httpx.WriteTimeout, httpx.ConnectTimeout])
def test_gather_fhir_timeout_handled_not_500(
    error: type[Exception], client: TestClient, router: respx.MockRouter
) -> None:
    """Verify that FHIR timeouts become a gap for optional data, and never a 500."""
    router.get(url__startswith=f"{EHR}/Observation").mock(side_effect=error)
    router.get(url__startswith=f"{EHR}/AllergyIntolerance").mock(side_effect=error)
    body = _prefetched(trd_patient(), {"observations": MISSING, "allergies": MISSING}, server=True)
    response = client.post(EXPLAIN, json=body)
    assert response.status_code == 200, response.text
    gaps = _gaps(response)
    assert any(g.startswith("observations: FHIR Observation query timed out") for g in gaps)
    assert any(g.startswith("allergies: FHIR AllergyIntolerance query timed out") for g in gaps)
    assert response.json()["assessment"]["recommendation"] == "insufficient-data"


# --- the fallback queries ------------------------------------------------------------------------


def test_gather_fallback_queries_run_concurrently(
    client: TestClient, router: respx.MockRouter
) -> None:
    """Verify that all missing prefetch keys are queried at the same time, not one after another."""
    ehr = FakeEhr(trd_patient(), page_size=100)
    state = {"in_flight": 0, "peak": 0}

    async def slow(request: httpx.Request) -> httpx.Response:
        state["in_flight"] += 1
        state["peak"] = max(state["peak"], state["in_flight"])
        await asyncio.sleep(0.05)
        state["in_flight"] -= 1
        return ehr.handler(request)

    router.route(name="ehr", url__startswith=EHR + "/").mock(side_effect=slow)
    response = client.post(EXPLAIN, json=hook_request(SCREEN, [], mode="fetch"))
    assert response.status_code == 200, response.text
    assert len(ehr.requests) == len(ALL_KEYS)
    assert state["peak"] == len(ALL_KEYS)
    assert sorted(response.json()["explanation"].get("fetched_by_service", [])) == sorted(ALL_KEYS)


LOINC_REQUIRED = ("44261-6", "44260-8", "85354-9", "8480-6", "8462-4", "29463-7")

QUERY_SHAPES: dict[str, tuple[str, dict[str, str]]] = {
    "Patient": ("/fhir/Patient/p1", {}),
    "Condition": ("/fhir/Condition", {"patient": "p1"}),
    "MedicationRequest": (
        "/fhir/MedicationRequest",
        {"patient": "p1", "_include": "MedicationRequest:medication"},
    ),
    "MedicationStatement": (
        "/fhir/MedicationStatement",
        {"patient": "p1", "_include": "MedicationStatement:medication"},
    ),
    "Observation": ("/fhir/Observation", {"patient": "p1"}),
    "AllergyIntolerance": ("/fhir/AllergyIntolerance", {"patient": "p1"}),
}


@pytest.mark.parametrize("rtype", list(QUERY_SHAPES))
def test_gather_fallback_query_shape_matches_template(
    rtype: str, client: TestClient, router: respx.MockRouter
) -> None:
    """Verify that each fallback query is the rendered discovery template (path and parameters)."""
    ehr = _install(router, trd_patient(), page_size=100)
    response = client.post(EXPLAIN, json=hook_request(SCREEN, [], mode="fetch"))
    assert response.status_code == 200, response.text
    path, params = QUERY_SHAPES[rtype]
    matching = [r for r in ehr.requests if r.url.path == path]
    assert len(matching) == 1, [str(r.url) for r in ehr.requests]
    query = matching[0].url.params
    for name, value in params.items():
        assert query.get_list(name) == [value]
    if rtype == "Observation":
        assert query.get_list("code") and len(query.get_list("code")) == 1
        codes = query["code"].split(",")
        assert all(c.startswith("http://loinc.org|") for c in codes), codes
        assert {c.removeprefix("http://loinc.org|") for c in codes} >= set(LOINC_REQUIRED)
        assert set(query.keys()) == {"patient", "code"}
    else:
        assert set(query.keys()) == set(params)


def test_gather_medication_include_resolves_referenced_medication(
    client: TestClient, router: respx.MockRouter
) -> None:
    """Verify that Medications returned by _include are used to identify referenced orders."""
    name, rxcui = SERTRALINE_100
    drug = medication("med-sert", name, rxcui=rxcui)
    orders = [
        med_request(
            name,
            weeks_ago=w,
            supply_days=28,
            medication_ref="Medication/med-sert",
            status="stopped" if w == 30 else "completed",
        )
        for w in (42, 38, 34, 30)
    ]
    resources = [patient(), mdd(), drug, *orders]
    ehr = _install(router, resources, page_size=100)
    response = client.post(EXPLAIN, json=hook_request(SCREEN, resources, mode="fetch"))
    assert response.status_code == 200, response.text
    assert response.json()["explanation"]["resources_by_key"]["medicationRequests"] > len(orders)
    assert [t["ingredient"] for t in response.json()["assessment"].get("trials", [])] == [
        "sertraline"
    ]
    assert not any("Medication that was not provided" in g for g in _gaps(response))
    assert len(ehr.requests) == len(ALL_KEYS)


@pytest.mark.parametrize(
    ("pid", "raw_read_path"),
    [
        ("p1&patient=p2", b"/fhir/Patient/p1%26patient%3Dp2"),
        ("a/b", b"/fhir/Patient/a%2Fb"),
        ("x?_count=1000", b"/fhir/Patient/x%3F_count%3D1000"),
    ],
    ids=["ampersand", "slash", "question-mark"],
)
def test_gather_odd_patient_id_encoded_in_fallback_queries(
    pid: str, raw_read_path: bytes, client: TestClient, router: respx.MockRouter
) -> None:
    """Verify that an odd patientId stays one encoded value in every fallback query."""
    ehr = _install(router, [], page_size=100)
    client.post(EXPLAIN, json=hook_request(SCREEN, [], mode="fetch", pid=pid))
    assert len(ehr.requests) == len(ALL_KEYS)
    reads = [r for r in ehr.requests if r.url.raw_path.startswith(b"/fhir/Patient/")]
    assert [r.url.raw_path for r in reads] == [raw_read_path]
    for request in ehr.requests:
        if request not in reads:
            assert request.url.params.get_list("patient") == [pid], str(request.url)
    assert router["elsewhere"].call_count == 0


# --- malformed resources ---------------------------------------------------------------------


def _bad_condition() -> dict[str, Any]:
    resource = condition("F33.1", "Secret condition text", cid="bad-cond")
    resource["clinicalStatus"] = 5
    return resource


def _bad_observation() -> dict[str, Any]:
    resource = phq9(24, weeks_ago=1)
    resource["id"] = "bad-obs"
    resource["status"] = "bogus"
    return resource


def _bad_order() -> dict[str, Any]:
    name, rxcui = SERTRALINE_100
    resource = med_request(name, rxcui=rxcui, weeks_ago=5, mid="bad-mr")
    resource["dosageInstruction"] = "one tablet daily"
    return resource


def _bad_allergy() -> dict[str, Any]:
    resource = allergy("Secret allergy text")
    resource["id"] = "bad-alg"
    resource["patient"] = "Patient/p1"
    return resource


MALFORMED: dict[str, tuple[Callable[[], dict[str, Any]], str | None]] = {
    "condition-clinical-status-number": (_bad_condition, "malformed (clinicalStatus)"),
    "observation-status-bogus": (_bad_observation, "malformed (status)"),
    "medication-request-dosage-string": (_bad_order, "malformed (dosageInstruction)"),
    # AllergyIntolerance.patient is read by no rule: the record is used, nothing is reported.
    "allergy-patient-string": (_bad_allergy, None),
}


@pytest.mark.parametrize("mode", ["prefetch", "fetch"])
@pytest.mark.parametrize("case", list(MALFORMED.values()), ids=list(MALFORMED))
def test_gather_malformed_resource_reported_by_type_id_and_element(
    case: tuple[Callable[[], dict[str, Any]], str | None],
    mode: str,
    client: TestClient,
    router: respx.MockRouter,
) -> None:
    """Verify that a record malformed in an element a rule reads is reported with its Type/id
    and the element (never its content), and that a defect no rule reads is tolerated; 200."""
    make, words = case
    bad = make()
    resources = [*trd_patient(), bad]
    _install(router, resources, page_size=100)
    if mode == "prefetch":
        body = _prefetched(resources)
    else:
        body = hook_request(SCREEN, resources, mode="fetch")
    response = client.post(EXPLAIN, json=body)
    assert response.status_code == 200, response.text
    ref = f"{bad['resourceType']}/{bad['id']}"
    naming = [g for g in _gaps(response) if bad["id"] in g]
    if words is None:
        assert naming == [], _gaps(response)
    else:
        assert len(naming) == 1 and naming[0].startswith(f"{ref} is {words}; not checked: ")
    assessment = response.json()["assessment"]
    assert "severe-depression" not in assessment.get("candidate_reasons", [])
    assert "Secret" not in response.text
