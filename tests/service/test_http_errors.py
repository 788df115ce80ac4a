"""HTTP errors of the service endpoints: 400, 401, 403, 404, 405, 412, 413 with OperationOutcome
bodies that never echo secrets or patient data (checklist C items 23-32, E 59, J 95, M 110-114, Q10,
Q11, Q17)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import respx
from fastapi.testclient import TestClient

from service.main import create_app
from tests.conftest import EHR, FakeEhr, make_settings
from tests.factories import NOW, draft_order, patient
from tests.hook_requests import hook_request
from tests.scenarios import trd_patient

SCREEN = "trd-ketamine-screen"
ORDER_SELECT = "trd-antidepressant-order"
ORDER_SIGN = "ketamine-order-safety"
SERVICES = (SCREEN, ORDER_SELECT, ORDER_SIGN)
HOOK_OF = {SCREEN: "patient-view", ORDER_SELECT: "order-select", ORDER_SIGN: "order-sign"}

PID = "pt-SECRET-4242"
TOKEN = "tok-SECRET-9999"
MARKER = "BODY-MARKER-7777"
FEEDBACK: dict[str, Any] = {
    "feedback": [
        {
            "card": str(uuid.uuid4()),
            "outcome": "overridden",
            "overrideReason": {"userComment": f"{MARKER} comment"},
            "outcomeTimestamp": "2026-11-27T06:30:00Z",
        }
    ]
}


def _valid(service: str = SCREEN, **kw: Any) -> dict[str, Any]:
    """A valid request: prefetch of a TRD patient, with drafts/selections for order services."""
    orders = [draft_order("sertraline 50 MG Oral Tablet", mid="draft-1")]
    body = hook_request(
        service, trd_patient(), draft_orders=orders if service != SCREEN else None, **kw
    )
    return body


def _with_server(body: dict[str, Any], server: str = EHR, token: str = TOKEN) -> dict[str, Any]:
    body = copy.deepcopy(body)
    body.pop("prefetch", None)
    body["fhirServer"] = server
    body["fhirAuthorization"] = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "user/Patient.read",
        "subject": "ketamine-cds",
    }
    return body


def _assert_outcome(response: httpx.Response, status: int, code: str | None = None) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    assert isinstance(body["issue"], list) and body["issue"]
    issue = body["issue"][0]
    assert issue["severity"] in ("error", "fatal")
    if code is not None:
        assert issue["code"] == code, issue
    diagnostics: str = issue["diagnostics"]
    assert diagnostics
    return diagnostics


class Outbound(respx.MockRouter):
    """A respx router that also records every outbound request, matched by a route or not."""

    sent: list[httpx.Request]


@pytest.fixture
def router() -> Iterator[Outbound]:
    """respx for all outbound HTTP; ``router.sent`` lists every request the service tried."""
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> None:
        sent.append(request)

    with respx.mock(assert_all_called=False) as mock:
        mock.route(name="recorder").mock(side_effect=record)
        mock.sent = sent  # type: ignore[attr-defined]
        yield mock  # type: ignore[misc]


@pytest.fixture
def locked_client() -> Iterator[TestClient]:
    """The service with development mode off (JWT verification not configured)."""
    app = create_app(make_settings(allow_unauthenticated=False), clock=lambda: NOW)
    with TestClient(app) as test_client:
        yield test_client


def _small_client() -> TestClient:
    return TestClient(create_app(make_settings(max_body_bytes=2048), clock=lambda: NOW))


# --- 400 ----------------------------------------------------------------------------------------

NOT_JSON = {
    "text": b"not json",
    "empty": b"",
    "truncated": b'{"hook": "patient-view"',
    "invalid-utf8": b"\xff\xfe{}",
    "array": b"[]",
    "null": b"null",
    "string": b'"patient-view"',
    "number": b"42",
}


@pytest.mark.parametrize("path", ["", "/explain", "/feedback"], ids=["hook", "explain", "feedback"])
@pytest.mark.parametrize("raw", list(NOT_JSON.values()), ids=list(NOT_JSON))
def test_http_errors_body_not_json_object_400(
    raw: bytes, path: str, client: TestClient, router: Outbound
) -> None:
    """Verify that a body that is not a JSON object gets 400 with an OperationOutcome."""
    response = client.post(
        f"/cds-services/{SCREEN}{path}", content=raw, headers={"content-type": "application/json"}
    )
    _assert_outcome(response, 400, "invalid")
    assert router.sent == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("hook", None),
        ("hookInstance", None),
        ("context", None),
        ("hook", ""),
        ("hookInstance", ""),
        ("hook", 5),
        ("context", []),
        ("context", "patientId=p1"),
        ("prefetch", []),
        ("prefetch", {"patient": "p1"}),
        ("fhirAuthorization", "Bearer x"),
    ],
    ids=[
        "no-hook",
        "no-hookInstance",
        "no-context",
        "empty-hook",
        "empty-hookInstance",
        "hook-number",
        "context-array",
        "context-string",
        "prefetch-array",
        "prefetch-value-string",
        "fhirAuthorization-string",
    ],
)
def test_http_errors_required_field_missing_or_wrong_type_400(
    field: str, value: Any, client: TestClient
) -> None:
    """Verify that a missing or mistyped CDS Hooks request field gets 400 (never 404 or 500)."""
    body = _valid()
    if value is None:
        del body[field]
    else:
        body[field] = value
    diagnostics = _assert_outcome(client.post(f"/cds-services/{SCREEN}", json=body), 400, "invalid")
    assert field in diagnostics


@pytest.mark.parametrize(
    ("service", "hook"),
    [
        (SCREEN, "order-sign"),
        (SCREEN, "order-select"),
        (SCREEN, "encounter-start"),
        (SCREEN, "Patient-View"),
        (ORDER_SELECT, "patient-view"),
        (ORDER_SELECT, "order-sign"),
        (ORDER_SIGN, "order-select"),
        (ORDER_SIGN, "patient-view"),
    ],
    ids=lambda v: v,
)
def test_http_errors_hook_not_of_service_400(service: str, hook: str, client: TestClient) -> None:
    """Verify that a hook name that is not the service's hook gets 400 naming both hooks."""
    body = _valid(service)
    body["hook"] = hook
    diagnostics = _assert_outcome(
        client.post(f"/cds-services/{service}", json=body), 400, "invalid"
    )
    assert HOOK_OF[service] in diagnostics and hook in diagnostics


CONTEXT_CASES: list[tuple[str, str, Any]] = [
    (SCREEN, "patientId", None),
    (SCREEN, "patientId", ""),
    (SCREEN, "patientId", 123),
    (SCREEN, "userId", None),
    (ORDER_SELECT, "patientId", None),
    (ORDER_SELECT, "draftOrders", None),
    (ORDER_SELECT, "selections", None),
    (ORDER_SELECT, "selections", []),
    (ORDER_SELECT, "selections", "MedicationRequest/draft-1"),
    (ORDER_SELECT, "selections", [1]),
    (ORDER_SELECT, "draftOrders", [{"resourceType": "MedicationRequest"}]),
    (ORDER_SIGN, "patientId", None),
    (ORDER_SIGN, "draftOrders", None),
    (ORDER_SIGN, "draftOrders", {}),
    (ORDER_SIGN, "draftOrders", "Bundle/1"),
]


@pytest.mark.parametrize(
    ("service", "field", "value"),
    CONTEXT_CASES,
    ids=[
        f"{s}-{f}-{'absent' if v is None else type(v).__name__ + ('-empty' if not v else '')}"
        for s, f, v in CONTEXT_CASES
    ],
)
def test_http_errors_required_context_missing_or_invalid_400(
    service: str, field: str, value: Any, client: TestClient
) -> None:
    """Verify that each service's required context fields are checked (absent/empty/mistyped)."""
    body = _valid(service)
    if value is None:
        del body["context"][field]
    else:
        body["context"][field] = value
    diagnostics = _assert_outcome(
        client.post(f"/cds-services/{service}", json=body), 400, "invalid"
    )
    assert field in diagnostics


@pytest.mark.parametrize(
    "auth",
    [
        {
            "access_token": TOKEN,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "x",
            "subject": "s",
        },
        {
            "access_token": "",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "x",
            "subject": "s",
        },
    ],
    ids=["complete-token", "empty-token"],
)
def test_http_errors_fhir_authorization_without_fhir_server_400(
    auth: dict[str, Any], client: TestClient, router: Outbound
) -> None:
    """Verify that fhirAuthorization without fhirServer gets 400 (cds-r-1) and no request."""
    body = _valid()
    body["fhirAuthorization"] = auth
    diagnostics = _assert_outcome(client.post(f"/cds-services/{SCREEN}", json=body), 400, "invalid")
    assert "fhirAuthorization" in diagnostics
    assert router.sent == []


# --- 404 / 405 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["", "/explain", "/feedback"], ids=["hook", "explain", "feedback"])
def test_http_errors_unknown_service_404(path: str, client: TestClient) -> None:
    """Verify that an unknown service id gets 404 with an OperationOutcome."""
    body = FEEDBACK if path == "/feedback" else _valid()
    response = client.post(f"/cds-services/no-such-service{path}", json=body)
    _assert_outcome(response, 404, "not-found")


METHOD_CASES = [
    ("GET", f"/cds-services/{SCREEN}"),
    ("PUT", f"/cds-services/{SCREEN}"),
    ("DELETE", f"/cds-services/{SCREEN}"),
    ("PATCH", f"/cds-services/{SCREEN}"),
    ("GET", f"/cds-services/{SCREEN}/explain"),
    ("GET", f"/cds-services/{SCREEN}/feedback"),
    ("GET", f"/cds-services/{ORDER_SIGN}"),
    ("POST", "/cds-services"),
]


@pytest.mark.parametrize(
    ("method", "path"), METHOD_CASES, ids=[f"{m}-{p}" for m, p in METHOD_CASES]
)
def test_http_errors_wrong_method_405(method: str, path: str, client: TestClient) -> None:
    """Verify that a method other than the endpoint's own gets 405 with an OperationOutcome."""
    response = client.request(method, path)
    _assert_outcome(response, 405)


@pytest.mark.parametrize(
    ("path", "allowed"),
    [(f"/cds-services/{SCREEN}", "POST"), ("/cds-services", "GET")],
    ids=["service", "discovery"],
)
def test_http_errors_wrong_method_405_lists_allowed_methods(
    path: str, allowed: str, client: TestClient
) -> None:
    """Verify that a 405 answer carries the Allow header (RFC 9110 section 15.5.6)."""
    response = client.request("DELETE", path)
    assert response.status_code == 405
    assert allowed in response.headers.get("allow", ""), dict(response.headers)


# --- 413 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("path", ["", "/explain", "/feedback"], ids=["hook", "explain", "feedback"])
def test_http_errors_body_over_max_body_bytes_413(
    path: str, chunked: bool, router: Outbound
) -> None:
    """Verify that a body over max_body_bytes gets 413, with or without a Content-Length."""
    body = copy.deepcopy(FEEDBACK) if path == "/feedback" else _valid()
    body["extension"] = {"com.example.pad": "x" * 3000}
    raw = httpx.Request("POST", "http://x", json=body).content
    content: Any = iter([raw[:1000], raw[1000:]]) if chunked else raw
    with _small_client() as small:
        response = small.post(
            f"/cds-services/{SCREEN}{path}",
            content=content,
            headers={"content-type": "application/json"},
        )
    _assert_outcome(response, 413)
    assert router.sent == []


def test_http_errors_body_under_max_body_bytes_accepted() -> None:
    """Verify that a body under max_body_bytes is answered normally."""
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/1", "patientId": "p1"},
        "prefetch": {"patient": patient(), "conditions": None, "medicationRequests": None},
    }
    assert len(httpx.Request("POST", "http://x", json=body).content) < 2048
    with _small_client() as small:
        response = small.post(f"/cds-services/{SCREEN}", json=body)
    assert response.status_code == 200, response.text


# --- 403 ----------------------------------------------------------------------------------------

FORBIDDEN_SERVERS = {
    "other-host": "https://evil.example/fhir",
    "look-alike-subdomain": "https://ehr.example.evil.com/fhir",
    "look-alike-path": "https://ehr.example/fhirx",
    "parent-path": "https://ehr.example",
    "sibling-path": "https://ehr.example/other",
    "dot-dot-path": "https://ehr.example/fhir/../admin",
    "http-downgrade": "http://ehr.example/fhir",
    "other-port": "https://ehr.example:8443/fhir",
    "userinfo": "https://ehr.example@evil.example/fhir",
    "userinfo-same-host": "https://user:pw@ehr.example/fhir",
    "backslash-userinfo": "https://ehr.example\\@evil.example/fhir",
    "fragment": "https://ehr.example#@evil.example/fhir",
    "ftp": "ftp://ehr.example/fhir",
    "file": "file:///etc/passwd",
    "relative": "/fhir",
    "no-scheme": "ehr.example/fhir",
    "metadata-ip": "http://169.254.169.254/latest/meta-data",
}


@pytest.mark.parametrize("server", list(FORBIDDEN_SERVERS.values()), ids=list(FORBIDDEN_SERVERS))
@pytest.mark.parametrize("service", SERVICES)
def test_http_errors_fhir_server_not_allowed_403_no_request(
    service: str, server: str, client: TestClient, router: Outbound
) -> None:
    """Verify that a fhirServer off the allow-list gets 403 and no request is sent anywhere."""
    response = client.post(f"/cds-services/{service}", json=_with_server(_valid(service), server))
    diagnostics = _assert_outcome(response, 403, "forbidden")
    assert "fhirServer" in diagnostics
    assert router.sent == []


def test_http_errors_fhir_server_not_allowed_with_full_prefetch_403(
    client: TestClient, router: Outbound
) -> None:
    """Verify that a foreign fhirServer is refused even when prefetch would need no query."""
    body = _valid()
    body["fhirServer"] = "https://evil.example/fhir"
    _assert_outcome(client.post(f"/cds-services/{SCREEN}", json=body), 403, "forbidden")
    assert router.sent == []


@pytest.mark.parametrize(
    "server",
    [EHR, EHR + "/", "https://EHR.example/fhir", "https://ehr.example/fhir/tenant-1"],
    ids=["exact", "trailing-slash", "host-case", "sub-path"],
)
def test_http_errors_fhir_server_allowed_variants_queried(server: str, client: TestClient) -> None:
    """Verify that spellings of an allowed base (and paths under it) are accepted and queried."""
    base = server.rstrip("/").replace("EHR.", "ehr.")
    ehr = FakeEhr(trd_patient(), page_size=100, base=base)
    with respx.mock(assert_all_called=False) as mock:
        mock.route(url__startswith=base + "/").mock(side_effect=ehr.handler)
        response = client.post(f"/cds-services/{SCREEN}", json=_with_server(_valid(), server))
    assert response.status_code == 200, response.text
    templates = client.get("/cds-services").json()["services"][0]["prefetch"]
    assert len(ehr.requests) == len(templates)


# --- 401 ----------------------------------------------------------------------------------------


def _call(kind: str) -> tuple[str, dict[str, Any]]:
    if kind == "feedback":
        return f"/cds-services/{SCREEN}/feedback", FEEDBACK
    path = f"/cds-services/{SCREEN}" + ("/explain" if kind == "explain" else "")
    return path, _with_server(_valid())


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer eyJhbGciOiJFUzM4NCJ9.e30.sig", "Basic dXNlcjpwdw=="],
    ids=["no-header", "bearer-jwt", "basic"],
)
@pytest.mark.parametrize("kind", ["hook", "explain", "feedback"])
def test_http_errors_dev_mode_off_401_with_www_authenticate(
    kind: str, authorization: str | None, locked_client: TestClient, router: Outbound
) -> None:
    """Verify that without dev mode hook, explain and feedback calls get 401 + WWW-Authenticate."""
    path, body = _call(kind)
    headers = {"authorization": authorization} if authorization else {}
    response = locked_client.post(path, json=body, headers=headers)
    _assert_outcome(response, 401, "login")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert router.sent == []


@pytest.mark.parametrize("path", ["/cds-services", "/healthz"], ids=["discovery", "health"])
def test_http_errors_dev_mode_off_discovery_still_200(path: str, locked_client: TestClient) -> None:
    """Verify that discovery and health answer 200 when hook calls need authentication."""
    response = locked_client.get(path)
    assert response.status_code == 200, response.text
    if path == "/cds-services":
        assert {s["id"] for s in response.json()["services"]} == set(SERVICES)


# --- no secrets in error bodies -------------------------------------------------------------------


def _secret_body(service: str = SCREEN) -> dict[str, Any]:
    body = _valid(service, pid=PID)
    body["extension"] = {"com.example.marker": MARKER}
    return body


def _case_hook_mismatch(c: TestClient, r: Outbound) -> Any:
    body = _secret_body()
    body["hook"] = "order-sign"
    return c.post(f"/cds-services/{SCREEN}", json=body)


def _case_context_missing(c: TestClient, r: Outbound) -> Any:
    body = _secret_body(ORDER_SELECT)
    del body["context"]["selections"]
    return c.post(f"/cds-services/{ORDER_SELECT}", json=body)


def _case_patient_id_object(c: TestClient, r: Outbound) -> Any:
    body = _secret_body()
    body["context"]["patientId"] = {"id": PID}
    return c.post(f"/cds-services/{SCREEN}", json=body)


def _case_auth_without_server(c: TestClient, r: Outbound) -> Any:
    body = _with_server(_secret_body())
    del body["fhirServer"]
    return c.post(f"/cds-services/{SCREEN}", json=body)


def _case_prefetch_value_string(c: TestClient, r: Outbound) -> Any:
    body = _secret_body()
    body["prefetch"]["patient"] = f"Patient/{PID} {TOKEN}"
    return c.post(f"/cds-services/{SCREEN}", json=body)


def _case_forbidden_server(c: TestClient, r: Outbound) -> Any:
    body = _with_server(_secret_body(), f"https://evil.example/{PID}")
    return c.post(f"/cds-services/{SCREEN}", json=body)


def _case_required_missing(c: TestClient, r: Outbound) -> Any:
    body = _secret_body()
    del body["prefetch"]["conditions"]
    return c.post(f"/cds-services/{SCREEN}/explain", json=body)


def _upstream_failure(pid: str) -> Callable[[TestClient, Outbound], Any]:
    def case(c: TestClient, r: Outbound) -> Any:
        r.route(url__startswith=EHR + "/").mock(return_value=httpx.Response(503))
        body = _with_server(_valid(pid=pid))
        body["extension"] = {"com.example.marker": MARKER}
        return c.post(f"/cds-services/{SCREEN}", json=body)

    return case


def _case_not_json(c: TestClient, r: Outbound) -> Any:
    raw = f'{{"context": {{"patientId": "{PID}"}}, "token": "{TOKEN}", "m": "{MARKER}"'.encode()
    return c.post(f"/cds-services/{SCREEN}", content=raw)


def _case_unknown_service(c: TestClient, r: Outbound) -> Any:
    return c.post("/cds-services/nope", json=_with_server(_secret_body()))


def _case_feedback_invalid(c: TestClient, r: Outbound) -> Any:
    body = copy.deepcopy(FEEDBACK)
    body["feedback"][0]["outcome"] = "accepted"
    body["feedback"][0]["overrideReason"]["userComment"] = f"{PID} {MARKER}"
    return c.post(f"/cds-services/{SCREEN}/feedback", json=body)


def _case_too_large(c: TestClient, r: Outbound) -> Any:
    body = _with_server(_secret_body())
    body["extension"]["pad"] = "x" * 3000
    with _small_client() as small:
        return small.post(f"/cds-services/{SCREEN}", json=body)


def _case_unauthenticated(c: TestClient, r: Outbound) -> Any:
    app = create_app(make_settings(allow_unauthenticated=False), clock=lambda: NOW)
    with TestClient(app) as locked:
        return locked.post(
            f"/cds-services/{SCREEN}",
            json=_with_server(_secret_body()),
            headers={"authorization": f"Bearer {TOKEN}"},
        )


SECRET_CASES: dict[str, tuple[Callable[[TestClient, Outbound], Any], int]] = {
    "hook-mismatch": (_case_hook_mismatch, 400),
    "context-missing": (_case_context_missing, 400),
    "patient-id-object": (_case_patient_id_object, 400),
    "auth-without-server": (_case_auth_without_server, 400),
    "prefetch-value-string": (_case_prefetch_value_string, 400),
    "not-json": (_case_not_json, 400),
    "feedback-invalid": (_case_feedback_invalid, 400),
    "unauthenticated": (_case_unauthenticated, 401),
    "forbidden-server": (_case_forbidden_server, 403),
    "unknown-service": (_case_unknown_service, 404),
    "required-missing": (_case_required_missing, 412),
    "upstream-failure": (_upstream_failure(PID), 412),
    "upstream-failure-capitalised-id": (_upstream_failure("PT-SECRET-4242"), 412),
    "too-large": (_case_too_large, 413),
}


@pytest.mark.parametrize("case", list(SECRET_CASES))
def test_http_errors_error_body_no_token_patient_id_or_body_echo(
    case: str, client: TestClient, router: Outbound
) -> None:
    """Verify that every non-2xx body is an OperationOutcome echoing no token, patient id, body."""
    make, status = SECRET_CASES[case]
    response: httpx.Response = make(client, router)
    _assert_outcome(response, status)
    text = response.text
    for secret in ("SECRET", TOKEN, MARKER, "secret-token-abc", "Testpatient"):
        assert secret not in text, f"{secret!r} echoed in {text}"
    assert set(response.json()) == {"resourceType", "issue"}


# --- lenient input --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["prefetch", "fetch"])
def test_http_errors_patient_prefix_in_patient_id_accepted(
    mode: str, client: TestClient, router: Outbound
) -> None:
    """Verify that a 'Patient/p1' patientId is accepted as 'p1' (Q11) in both modes."""
    resources = trd_patient()
    ehr = FakeEhr(resources, page_size=100)
    router.route(url__startswith=EHR + "/").mock(side_effect=ehr.handler)
    bare = hook_request(SCREEN, resources, mode=mode)
    prefixed = copy.deepcopy(bare)
    prefixed["context"]["patientId"] = "Patient/p1"
    expected = client.post(f"/cds-services/{SCREEN}/explain", json=bare)
    ehr.requests.clear()
    response = client.post(f"/cds-services/{SCREEN}/explain", json=prefixed)
    assert response.status_code == 200, response.text
    assert response.json()["assessment"] == expected.json()["assessment"]
    assert response.json()["assessment"]["recommendation"] == "refer-for-evaluation"
    if mode == "fetch":
        paths = {r.url.raw_path.split(b"?")[0] for r in ehr.requests}
        assert b"/fhir/Patient/p1" in paths
        assert all(r.url.params.get("patient") in (None, "p1") for r in ehr.requests)
