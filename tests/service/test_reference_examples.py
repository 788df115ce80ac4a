"""The published CDS Hooks examples against the service (checklist B, C, D, F, G, I, K, O, Q).

Sources (read-only, ``tests/data/cds-hooks/``, copied from the shared folder's
``reference/cds-hooks/``): the 2.0.1 and 3.0.0-ballot spec examples, the CDS Hooks Library hook
examples (R4, STU3, DSTU2) and the HL7 validator's good/bad request cases (their expected validator
outcomes are in the shared folder, ``outcomes/java/*.json``). With the ``corpus`` marker, the
inventory is also checked against the whole shared folder, so that a reference request added there
is noticed.

- Every hook request for patient-view, order-select or order-sign is POSTed to our service for
  that hook. The examples name FHIR servers (``fhirServer``) and use prefetch keys that are not
  ours (``item1``, ``patientToGreet``...), which the service ignores (item 48) and replaces by its
  own queries (items 41, 45): a respx FHIR server double answers at the example's own base URL,
  holding the resources the example prefetched.
- The hook-library examples are context fragments without ``hook``/``hookInstance``: completed
  as an EHR would send them, they get 412 with no prefetch and no fhirServer (item 46) and 200
  once the service can query a FHIR server.
- The validator's "bad" requests are accepted unless their defect is one the service checks
  (EXPECTED_REQUESTS says why for each); the defects the service does check are exercised on
  mutated copies of the good requests.
- Discovery is compared with the spec's discovery example; feedback examples are POSTed to the
  feedback endpoint.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from tests.conformance import assert_conformant_response
from tests.conftest import EHR, make_settings
from tests.factories import NOW
from tests.shared_data import CORPUS, CORPUS_CDS_HOOKS, SUBSET_CDS_HOOKS, corpus_subdir

SERVICE_OF_HOOK = {
    "patient-view": "trd-ketamine-screen",
    "order-select": "trd-antidepressant-order",
    "order-sign": "ketamine-order-safety",
}

EXAMPLE_SERVERS = (
    EHR,
    "http://localhost:8080/fhir",  # HL7 validator test cases
    "http://hooks.smarthealthit.org:9080",  # 2.0.1 spec request, validator pv-good, tools IG
    "http://fhir.example.org:9080",  # 2.0.1 extension example
    "https://ehr.example.org/fhir",  # 3.0.0-ballot paginated prefetch example
)
"""The FHIR servers the examples name; the test app's allow-list holds exactly these."""


def reference_dir() -> Path:
    return SUBSET_CDS_HOOKS


def load(relative: str) -> dict[str, Any]:
    path = reference_dir() / relative
    assert path.is_file(), f"reference example {relative} is missing from {reference_dir()}"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), relative
    return data


@dataclass(frozen=True)
class Expect:
    status: int
    why: str
    """Why the service answers this status (for the bad cases: the validator's complaints and
    why the service accepts them, or the defect the service rejects)."""


VALIDATOR = "fhir-test-cases/validator/cdshooks/"

EXPECTED_REQUESTS: dict[str, Expect] = {
    # --- HL7 validator test cases (outcomes/java/R4.cdshooks-request-*-logical.json) ---
    f"{VALIDATOR}cdshooks-request-patient-view-good.json": Expect(200, "valid (empty outcome)"),
    f"{VALIDATOR}cdshooks-request-order-select-good.json": Expect(200, "valid (empty outcome)"),
    f"{VALIDATOR}cdshooks-request-order-sign-good.json": Expect(200, "valid (empty outcome)"),
    "fhir-test-cases/validator/cdshooks-request-pv-good.json": Expect(
        200, "valid; fhirAuthorization with its fhirServer"
    ),
    f"{VALIDATOR}cdshooks-request-patient-view-bad.json": Expect(
        200,
        # Validator: patientId "Patient/..." and encounterId "Encounter/..." are not FHIR ids;
        # prefetch values item1/item2 are Bundle entries ({response, resource}), not resources.
        # Accepted: Q11 says be lenient on input, so the service strips a "Patient/" prefix (and
        # queries Patient/<bare id>); encounterId is never used; item1/item2 are keys the service
        # did not request, so they are ignored (item 48) and its own queries run instead.
        "lenient: Patient/ prefix stripped (Q11), encounterId unused, unrequested prefetch keys "
        "ignored (item 48)",
    ),
    f"{VALIDATOR}cdshooks-request-order-select-bad.json": Expect(
        200,
        # Validator: patientId/encounterId not ids; selections[0] breaks ord-1 (no "Type/");
        # the draftOrders entry has no fullUrl (and the dataDateRoller extension is unknown);
        # item1 is a Bundle entry, not a resource.
        # Accepted: Patient/ prefix stripped (Q11); a selection that is not "Type/id" matches no
        # draft order, so nothing is selected and no card can result (the service only checks
        # that selections is a list of strings); entries without fullUrl are tolerated (Q12);
        # FHIR extensions are not the service's business; unrequested prefetch keys are ignored.
        "lenient: Patient/ prefix stripped, malformed selection selects nothing, missing fullUrl "
        "tolerated (Q12)",
    ),
    f"{VALIDATOR}cdshooks-request-order-sign-bad-1.json": Expect(
        200,
        # Validator: patientId "Patient/..."; draftOrders entry without fullUrl; the draft
        # MedicationRequest has status "Xactive" and an unknown extension; the prefetched
        # Patient (item1) has birthDate "X2002-09-26".
        # Accepted: prefix stripped; missing fullUrl tolerated (Q12); the draft order is not a
        # ketamine/esketamine order so this service has nothing to check in it; the malformed
        # Patient (served by the FHIR server here, since item1 is not our key) is skipped and
        # reported as a data gap ("age not verified") instead of failing the call.
        "lenient: prefix stripped, missing fullUrl tolerated, malformed Patient becomes a data gap",
    ),
    f"{VALIDATOR}cdshooks-request-order-sign-bad-2.json": Expect(
        200,
        # Validator: patientId "Patient/..."; draftOrders entry without fullUrl; unknown
        # extension; item1 is a Bundle entry, not a resource. Accepted for the reasons above.
        "lenient: prefix stripped, missing fullUrl tolerated, unrequested prefetch keys ignored",
    ),
    f"{VALIDATOR}cdshooks-request-order-select-extensions.json": Expect(
        400,
        # Validator: the unknown extension member (the service accepts any extension, item
        # 116) AND "draftOrders: minimum required = 1, but only found 0": a REQUIRED
        # order-select context field is missing, which the service rejects (item 117).
        "context.draftOrders (REQUIRED for order-select) is missing",
    ),
    # --- HL7 FHIR tools IG: the same patient-view request as the validator's pv-good ---
    "fhir-tools-ig/Binary-CDSHooksRequestPV.json": Expect(200, "valid patient-view request"),
    # --- spec examples ---
    "hl7-cds-hooks/examples/2.0.1_request-patient-view.json": Expect(
        200, "2.0.1 spec request; prefetch key patientToGreet is not ours and is ignored"
    ),
    "hl7-cds-hooks/examples/2.0.1_request-with-extension.json": Expect(
        400,
        # The spec's extension example is a fragment: its context has only userId. patientId is
        # REQUIRED for patient-view, so the correct answer is 400 (item 117), extension or not.
        "context.patientId (REQUIRED for patient-view) is missing",
    ),
    "hl7-cds-hooks/examples/3.0.0-ballot_request-order-sign-paginated-prefetch.json": Expect(
        200,
        # Its prefetch key "orders" (with a next link) is not ours: ignored. Its draft order id
        # contains U+2011 (non-breaking hyphen), so it is not a valid FHIR id: the order is
        # reported as not checked (amoxicillin; nothing to check anyway).
        "3.0.0-ballot example; unrequested paginated prefetch key ignored",
    ),
}

CONTEXT_ONLY: dict[str, str] = {
    "hl7-cds-hooks/examples/hook_patient-view_1_Examples.json": "R4",
    "hl7-cds-hooks/examples/hook_patient-view_2_Examples.json": "R4",
    "hl7-cds-hooks/examples/hook_order-select_1_Example-R4.json": "R4",
    "hl7-cds-hooks/examples/hook_order-select_2_Example-STU3.json": "STU3",
    "hl7-cds-hooks/examples/hook_order-select_3_Example-DSTU2.json": "DSTU2",
    "hl7-cds-hooks/examples/hook_order-sign_1_Example-R4.json": "R4",
    "hl7-cds-hooks/examples/hook_order-sign_2_Example-STU3.json": "STU3",
    "hl7-cds-hooks/examples/hook_order-sign_3_Example-DSTU2.json": "DSTU2",
    "hl7-cds-hooks/examples/3.0.0-ballot_context-order-sign-fhirpath-example.json": "R4",
}
"""Context fragments (no ``hook``/``hookInstance``) of our three hooks, by FHIR version."""

IGNORED_HOOKS = frozenset({"encounter-start", "appointment-book"})
"""Hook examples for hooks none of our services answers."""


def _short(relative: str) -> str:
    stem = Path(relative).stem.replace("cdshooks-request-", "")
    return re.sub(r"_Examples?(-(R4|STU3|DSTU2))?$", "", stem)


def _hook_of_fragment(relative: str) -> str:
    name = Path(relative).name
    for hook in SERVICE_OF_HOOK:
        if hook in name:
            return hook
    raise AssertionError(f"{relative}: cannot tell the hook from the file name")


def complete(relative: str, fragment: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A context fragment completed as an EHR sends it: hook and a fresh hookInstance added."""
    return {
        "hook": _hook_of_fragment(relative),
        "hookInstance": str(uuid.uuid4()),
        **copy.deepcopy(fragment),
        **extra,
    }


def _prefetched_resources(prefetch: Any) -> list[dict[str, Any]]:
    """What a client's FHIR server holds if it answered the example's prefetch: resources,
    Bundle entries, and the resources of mis-shaped ``{response, resource}`` values."""
    found: list[dict[str, Any]] = []
    for value in (prefetch or {}).values():
        if not isinstance(value, dict):
            continue
        if value.get("resourceType") == "Bundle":
            found += [
                e["resource"] for e in value.get("entry", []) if isinstance(e.get("resource"), dict)
            ]
        elif "resourceType" in value:
            found.append(value)
        elif isinstance(value.get("resource"), dict):
            found.append(value["resource"])
    return found


def _bare_patient_id(request: dict[str, Any]) -> str | None:
    pid = request.get("context", {}).get("patientId")
    return pid.removeprefix("Patient/") if isinstance(pid, str) else None


def serve_fhir(fake_ehr: Any, request: dict[str, Any]) -> Any:
    """A FHIR server double at the request's fhirServer, holding the example's data and its
    patient (a bare Patient when the example prefetched none)."""
    resources = [r for r in _prefetched_resources(request.get("prefetch")) if r.get("id")]
    pid = _bare_patient_id(request)
    if pid and not any(r["resourceType"] == "Patient" and r["id"] == pid for r in resources):
        resources.append({"resourceType": "Patient", "id": pid})
    return fake_ehr(resources, page_size=50, base=request["fhirServer"].rstrip("/"))


@pytest.fixture
def ref_client() -> Iterator[TestClient]:
    """A dev-mode app whose FHIR allow-list holds the servers the examples name."""
    app = create_app(
        make_settings(allowed_fhir_servers=",".join(EXAMPLE_SERVERS)), clock=lambda: NOW
    )
    with TestClient(app) as test_client:
        yield test_client


def assert_operation_outcome(response: Any) -> None:
    body = response.json()
    assert body.get("resourceType") == "OperationOutcome", body
    issues = body.get("issue")
    assert issues and issues[0].get("severity") in ("error", "fatal"), body
    assert issues[0].get("diagnostics"), body


# --------------------------------------------------------------------------------------------
# Inventory: every hook request in the reference folder is covered by a table above.


def _discover(root: Path) -> dict[str, str]:
    """Every JSON file under ``root`` with a ``context`` for one of our hooks -> hook."""
    found: dict[str, str] = {}
    for path in sorted(root.rglob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            continue
        if not isinstance(data, dict) or "context" not in data:
            continue
        relative = path.relative_to(root).as_posix()
        hook = data.get("hook")
        if hook is None:
            hook = next((h for h in (*SERVICE_OF_HOOK, *IGNORED_HOOKS) if h in path.name), None)
        if hook in SERVICE_OF_HOOK:
            found[relative] = hook
    return found


def test_reference_inventory_every_hook_request_has_expectation() -> None:
    """Verify that every reference hook request is in the tables and every listed file exists."""
    discovered = _discover(reference_dir())
    listed = set(EXPECTED_REQUESTS) | set(CONTEXT_ONLY)
    assert set(discovered) - listed == set(), "new reference requests: add them to the tables"
    assert listed - set(discovered) == set(), "listed reference requests not found"
    for relative in CONTEXT_ONLY:
        assert "hook" not in load(relative), f"{relative} is a full request, not a fragment"
    for relative in EXPECTED_REQUESTS:
        assert load(relative).get("hook") in SERVICE_OF_HOOK, relative


@CORPUS
def test_reference_inventory_corpus_hook_requests_are_all_in_the_tables() -> None:
    """Verify that every hook request of the shared reference folder is in the tables (and so
    in tests/data), so that a request added to the corpus is not silently left out."""
    discovered = _discover(corpus_subdir(*CORPUS_CDS_HOOKS))
    listed = set(EXPECTED_REQUESTS) | set(CONTEXT_ONLY)
    assert set(discovered) - listed == set(), "new reference requests: add them to the tables"
    assert listed - set(discovered) == set(), "listed reference requests not in the corpus"


# --------------------------------------------------------------------------------------------
# Full requests (with hook and hookInstance).


def _request_id(relative: str) -> str:
    expect = EXPECTED_REQUESTS[relative]
    suffix = {400: "-rejected-400", 200: "-accepted-200"}[expect.status]
    return _short(relative) + suffix


@pytest.mark.parametrize(
    "relative", list(EXPECTED_REQUESTS), ids=[_request_id(r) for r in EXPECTED_REQUESTS]
)
def test_service_call_reference_request_answers_expected_status(
    relative: str, ref_client: TestClient, fake_ehr: Any
) -> None:
    """Verify that each reference request gets its expected status and a conformant body."""
    request = load(relative)
    expect = EXPECTED_REQUESTS[relative]
    service_id = SERVICE_OF_HOOK[request["hook"]]
    ehr = serve_fhir(fake_ehr, request) if request.get("fhirServer") else None
    response = ref_client.post(f"/cds-services/{service_id}", json=request)
    assert response.status_code == expect.status, (expect.why, response.text)
    if expect.status != 200:
        assert_operation_outcome(response)
        return
    assert_conformant_response(response.json())
    if ehr is not None:
        # The service queried the example's own FHIR server for the patient, by bare id (Q11).
        read = f"{ehr.base}/Patient/{_bare_patient_id(request)}"
        assert read in [str(r.url) for r in ehr.requests], [str(r.url) for r in ehr.requests]
        token = (request.get("fhirAuthorization") or {}).get("access_token")
        expected_auth = f"Bearer {token}" if token else None
        assert {r.headers.get("authorization") for r in ehr.requests} == {expected_auth}


# --------------------------------------------------------------------------------------------
# Hook-library context fragments (R4, STU3, DSTU2).


@pytest.mark.parametrize(
    "relative",
    list(CONTEXT_ONLY),
    ids=[f"{_short(r)}-{CONTEXT_ONLY[r]}-no-prefetch-no-fhirServer-412" for r in CONTEXT_ONLY],
)
def test_service_call_context_fragment_without_data_answers_412(
    relative: str, ref_client: TestClient
) -> None:
    """Verify that a hook example with no prefetch and no fhirServer gets 412 (items 46, 111)."""
    request = complete(relative, load(relative))
    assert "prefetch" not in request and "fhirServer" not in request
    service_id = SERVICE_OF_HOOK[request["hook"]]
    response = ref_client.post(f"/cds-services/{service_id}", json=request)
    assert response.status_code == 412, response.text
    assert_operation_outcome(response)


@pytest.mark.parametrize(
    "relative",
    list(CONTEXT_ONLY),
    ids=[f"{_short(r)}-{CONTEXT_ONLY[r]}-with-fhirServer-200" for r in CONTEXT_ONLY],
)
def test_service_call_context_fragment_with_fhir_server_answers_200(
    relative: str, ref_client: TestClient, fake_ehr: Any
) -> None:
    """Verify that a hook example with a fhirServer gets 200 and its draft orders are ignored."""
    request = complete(relative, load(relative), fhirServer=EHR)
    ehr = serve_fhir(fake_ehr, request)
    service_id = SERVICE_OF_HOOK[request["hook"]]
    response = ref_client.post(f"/cds-services/{service_id}", json=request)
    assert response.status_code == 200, response.text
    assert_conformant_response(response.json())
    assert response.json() == {"cards": []}
    explained = ref_client.post(f"/cds-services/{service_id}/explain", json=request).json()
    assert explained["explanation"].get("selected_antidepressants", []) == []
    assert explained["explanation"].get("orders_checked", []) == []
    assert f"{ehr.base}/Patient/{_bare_patient_id(request)}" in [str(r.url) for r in ehr.requests]


# --------------------------------------------------------------------------------------------
# Defects the service does check: mutated copies of the good requests get 400.

PV_GOOD = f"{VALIDATOR}cdshooks-request-patient-view-good.json"
PV_TOKEN = "fhir-test-cases/validator/cdshooks-request-pv-good.json"
OS_GOOD = f"{VALIDATOR}cdshooks-request-order-select-good.json"
SIGN_GOOD = f"{VALIDATOR}cdshooks-request-order-sign-good.json"


def _drop(*path: str) -> Any:
    def mutate(body: dict[str, Any]) -> dict[str, Any]:
        target = body
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
        return body

    return mutate


def _set(value: Any, *path: str) -> Any:
    def mutate(body: dict[str, Any]) -> dict[str, Any]:
        target = body
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return body

    return mutate


MUTATIONS = [
    # (id, source example, service override or None, mutation)
    ("no-hook", PV_GOOD, None, _drop("hook")),
    ("no-hookInstance", PV_GOOD, None, _drop("hookInstance")),
    ("empty-hookInstance", PV_GOOD, None, _set("", "hookInstance")),
    ("no-context", PV_GOOD, None, _drop("context")),
    ("context-not-object", PV_GOOD, None, _set(["userId"], "context")),
    ("no-patientId", PV_GOOD, None, _drop("context", "patientId")),
    ("no-userId", PV_GOOD, None, _drop("context", "userId")),
    ("patientId-not-string", PV_GOOD, None, _set(12345, "context", "patientId")),
    ("hook-mismatch-patient-view-to-order-sign", PV_GOOD, "ketamine-order-safety", None),
    ("fhirAuthorization-without-fhirServer-cds-r-1", PV_TOKEN, None, _drop("fhirServer")),
    (
        "fhirAuthorization-without-access_token",
        PV_TOKEN,
        None,
        _drop("fhirAuthorization", "access_token"),
    ),
    ("prefetch-value-not-object", PV_GOOD, None, _set("123", "prefetch", "item1")),
    ("order-select-no-selections", OS_GOOD, None, _drop("context", "selections")),
    ("order-select-no-draftOrders", OS_GOOD, None, _drop("context", "draftOrders")),
    (
        "order-select-selections-not-strings",
        OS_GOOD,
        None,
        _set([{"reference": "x"}], "context", "selections"),
    ),
    ("order-sign-no-draftOrders", SIGN_GOOD, None, _drop("context", "draftOrders")),
    ("order-sign-draftOrders-not-bundle", SIGN_GOOD, None, _set([], "context", "draftOrders")),
]


@pytest.mark.parametrize(
    ("source", "service_override", "mutate"),
    [pytest.param(src, svc, fn, id=f"{name}-400") for name, src, svc, fn in MUTATIONS],
)
def test_service_call_mutated_good_request_answers_400(
    source: str, service_override: str | None, mutate: Any, ref_client: TestClient, fake_ehr: Any
) -> None:
    """Verify that a good request with one defect the service checks gets 400 and no FHIR query."""
    original = load(source)
    ehr = serve_fhir(fake_ehr, original)
    body = mutate(copy.deepcopy(original)) if mutate else copy.deepcopy(original)
    service_id = service_override or SERVICE_OF_HOOK[original["hook"]]
    response = ref_client.post(f"/cds-services/{service_id}", json=body)
    assert response.status_code == 400, response.text
    assert_operation_outcome(response)
    assert ehr.requests == [], "no FHIR query before the request is validated"


def test_service_call_body_not_json_answers_400(ref_client: TestClient) -> None:
    """Verify that a request body that is not JSON gets 400 with an OperationOutcome (item 32)."""
    response = ref_client.post(
        "/cds-services/trd-ketamine-screen",
        content=b'{"hook": "patient-view", ',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert_operation_outcome(response)


# --------------------------------------------------------------------------------------------
# Discovery (checklist B, D 35-39, K).

DISCOVERY_EXAMPLE = "hl7-cds-hooks/examples/2.0.1_discovery-response.json"
OUR_SERVICES = {
    "trd-ketamine-screen": "patient-view",
    "trd-antidepressant-order": "order-select",
    "ketamine-order-safety": "order-sign",
}


def _no_null_or_empty(value: Any, path: str) -> None:
    if isinstance(value, dict):
        assert value, f"{path}: empty object"
        for key, item in value.items():
            assert item is not None, f"{path}.{key}: null"
            _no_null_or_empty(item, f"{path}.{key}")
    elif isinstance(value, list):
        assert value, f"{path}: empty array"
        for index, item in enumerate(value):
            _no_null_or_empty(item, f"{path}[{index}]")
    elif isinstance(value, str):
        assert value.strip(), f"{path}: empty string"


def _services(client: TestClient) -> list[dict[str, Any]]:
    response = client.get("/cds-services")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"services"}, "item 9: an object with a services array"
    assert isinstance(body["services"], list)
    return body["services"]


def test_discovery_lists_exactly_our_three_services(client: TestClient) -> None:
    """Verify that discovery lists exactly the three services on their hooks (items 8-12)."""
    services = _services(client)
    assert {s["id"]: s["hook"] for s in services} == OUR_SERVICES
    assert len(services) == 3
    for service in services:
        assert re.fullmatch(r"[A-Za-z0-9._~-]+", service["id"]), service["id"]


def test_discovery_entries_have_required_members_without_null_or_empty(client: TestClient) -> None:
    """Verify that each service has hook/id/title/description/prefetch, none null or empty."""
    services = _services(client)
    for index, service in enumerate(services):
        _no_null_or_empty(service, f"services[{index}]")
        for member in ("hook", "id", "title", "description"):
            assert isinstance(service.get(member), str) and service[member].strip(), member
        assert isinstance(service.get("prefetch"), dict) and service["prefetch"]
        assert all(
            isinstance(k, str) and isinstance(v, str) for k, v in service["prefetch"].items()
        )


def test_discovery_shape_matches_spec_example(client: TestClient) -> None:
    """Verify that discovery has the shape and member types of the 2.0.1 spec example."""
    example = load(DISCOVERY_EXAMPLE)
    ours = {"services": _services(client)}
    assert set(ours) == set(example)
    example_types: dict[str, type] = {}
    for service in example["services"]:
        for member, value in service.items():
            example_types[member] = type(value)
    for service in ours["services"]:
        assert set(service) <= set(example_types), set(service) - set(example_types)
        for member, value in service.items():
            assert isinstance(value, example_types[member]), member
        for member in ("hook", "id", "title", "description"):
            assert member in service


_TOKEN = re.compile(r"\{\{(.*?)\}\}")


def test_discovery_prefetch_tokens_only_context_patient_id(client: TestClient) -> None:
    """Verify that every prefetch template uses only the {{context.patientId}} token."""
    for service in _services(client):
        for key, template in service["prefetch"].items():
            tokens = _TOKEN.findall(template)
            assert tokens, f"{service['id']}.{key}: no token; the template is not patient-scoped"
            assert set(tokens) == {"context.patientId"}, (service["id"], key, tokens)
            assert "{" not in _TOKEN.sub("", template) and "}" not in _TOKEN.sub("", template)


RESTRICTED_CONTROL_PARAMETERS = frozenset({"_count", "_sort"})
"""The only result parameters the 2.0.1 restricted query subset allows (item 39)."""

DOCUMENTED_EXCEPTIONS = frozenset(
    {
        ("_include", "MedicationRequest:medication"),
        ("_include", "MedicationStatement:medication"),
        ("_include", "MedicationAdministration:medication"),
        ("_include", "MedicationDispense:medication"),
    }
)
"""Our one deliberate step outside the subset (hooks/patient_data.py explains why)."""


def _prefetch_keys() -> list[str]:
    from hooks.patient_data import prefetch_templates
    from hooks.rules.knowledge import default_knowledge

    return list(prefetch_templates(default_knowledge()))


@pytest.mark.parametrize("key", _prefetch_keys())
def test_discovery_prefetch_template_uses_restricted_query_subset(
    key: str, client: TestClient
) -> None:
    """Verify that each prefetch template stays in the restricted query subset (item 39)."""
    templates = {s["id"]: s["prefetch"][key] for s in _services(client) if key in s["prefetch"]}
    assert templates, key
    for service_id, template in templates.items():
        parts = urlsplit(template.replace("{{context.patientId}}", "PID"))
        segments = parts.path.split("/")
        assert re.fullmatch(r"[A-Z][A-Za-z]+", segments[0]), template
        if len(segments) == 2:  # instance read
            assert segments[1] == "PID" and not parts.query, template
            continue
        assert len(segments) == 1, f"{service_id}.{key}: only type-level search: {template}"
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            base, _, modifier = name.partition(":")
            assert value, f"{service_id}.{key}: empty value for {name}"
            if (name, value) in DOCUMENTED_EXCEPTIONS:
                continue
            if base.startswith("_"):
                assert base in RESTRICTED_CONTROL_PARAMETERS and not modifier, (
                    f"{service_id}.{key}: {name} is outside the restricted prefetch query subset "
                    f"(item 39): {template}"
                )
            else:
                assert modifier in ("", "in"), f"{service_id}.{key}: modifier :{modifier}"


# --------------------------------------------------------------------------------------------
# Feedback (checklist I; Q7).

FEEDBACK_EXAMPLES = (
    "hl7-cds-hooks/examples/2.0.1_feedback-accepted.json",
    "hl7-cds-hooks/examples/2.0.1_feedback-overridden.json",
    "hl7-cds-hooks/examples/2.0.1_feedback-overridden-with-reason.json",
)
FEEDBACK_URL = "/cds-services/trd-ketamine-screen/feedback"


def _feedback_examples(root: Path) -> set[str]:
    examples = root / "hl7-cds-hooks" / "examples"
    return {p.relative_to(root).as_posix() for p in examples.glob("2.0.1_feedback-*.json")}


def test_feedback_inventory_lists_every_spec_feedback_example() -> None:
    """Verify that the feedback examples tested here are all the 2.0.1 feedback examples."""
    assert _feedback_examples(reference_dir()) == set(FEEDBACK_EXAMPLES)


@CORPUS
def test_feedback_inventory_corpus_has_no_other_feedback_example() -> None:
    """Verify that the shared reference folder has no 2.0.1 feedback example left untested."""
    assert _feedback_examples(corpus_subdir(*CORPUS_CDS_HOOKS)) == set(FEEDBACK_EXAMPLES)


@pytest.mark.parametrize(
    "relative", FEEDBACK_EXAMPLES, ids=[Path(r).stem for r in FEEDBACK_EXAMPLES]
)
def test_feedback_spec_example_answers_200(relative: str, client: TestClient) -> None:
    """Verify that each 2.0.1 feedback example is accepted with 200 (items 86-90)."""
    response = client.post(FEEDBACK_URL, json=load(relative))
    assert response.status_code == 200, response.text


def test_feedback_batch_of_all_examples_answers_200(client: TestClient) -> None:
    """Verify that one POST with every example item, one repeated, gets 200 (items 87, 89)."""
    items = [item for r in FEEDBACK_EXAMPLES for item in load(r)["feedback"]]
    response = client.post(FEEDBACK_URL, json={"feedback": [*items, items[0]]})
    assert response.status_code == 200, response.text


def _accepted_item() -> dict[str, Any]:
    return copy.deepcopy(load(FEEDBACK_EXAMPLES[0])["feedback"][0])


def _bad_feedback() -> list[Any]:
    accepted_without = _accepted_item()
    del accepted_without["acceptedSuggestions"]
    accepted_empty = _accepted_item() | {"acceptedSuggestions": []}
    bad_outcome = _accepted_item() | {"outcome": "ignored"}
    no_timestamp = _accepted_item()
    del no_timestamp["outcomeTimestamp"]
    no_card = _accepted_item()
    del no_card["card"]
    empty_reason = {
        "card": "9368d37b-283f-44a0-93ea-547cebab93ed",
        "outcome": "overridden",
        "overrideReason": {},
        "outcomeTimestamp": "2020-12-11T00:00:00Z",
    }
    return [
        pytest.param(
            {"feedback": [accepted_without]}, id="accepted-without-acceptedSuggestions-cds-fb-2"
        ),
        pytest.param(
            {"feedback": [accepted_empty]}, id="accepted-with-empty-acceptedSuggestions-cds-fb-2"
        ),
        pytest.param(_accepted_item(), id="single-object-not-feedback-array-Q7"),
        pytest.param([_accepted_item()], id="bare-array-not-object-item-87"),
        pytest.param({"feedback": []}, id="empty-feedback-array"),
        pytest.param({"feedback": [bad_outcome]}, id="outcome-not-accepted-or-overridden-cds-fb-1"),
        pytest.param({"feedback": [no_timestamp]}, id="no-outcomeTimestamp-item-88"),
        pytest.param({"feedback": [no_card]}, id="no-card-item-88"),
        pytest.param(
            {"feedback": [empty_reason]}, id="overrideReason-without-reason-or-comment-cds-fb-3"
        ),
    ]


@pytest.mark.parametrize("body", _bad_feedback())
def test_feedback_malformed_body_answers_400(body: Any, client: TestClient) -> None:
    """Verify that a feedback body breaking the 2.0.1 rules gets 400 with an OperationOutcome."""
    response = client.post(FEEDBACK_URL, json=body)
    assert response.status_code == 400, response.text
    assert_operation_outcome(response)


def test_feedback_unknown_service_answers_404(client: TestClient) -> None:
    """Verify that feedback for a service id that does not exist gets 404 (item 112)."""
    response = client.post(
        "/cds-services/no-such-service/feedback", json=load(FEEDBACK_EXAMPLES[1])
    )
    assert response.status_code == 404
    assert_operation_outcome(response)
