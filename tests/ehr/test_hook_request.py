"""Hook requests for the three hooks, and Bundles loaded as a FHIR server stores them."""

from __future__ import annotations

from typing import Any

import pytest

from ehr.bundles import patient_id_of, stored_resources
from ehr.hook_request import bearer, hook_context, hook_request
from tests.factories import draft_order

ORDER = draft_order("sertraline 50 MG Oral Tablet", mid="draft-1")


@pytest.mark.parametrize(
    ("hook", "fields", "selections"),
    [
        ("patient-view", {"userId", "patientId"}, None),
        (
            "order-select",
            {"userId", "patientId", "draftOrders", "selections"},
            ["MedicationRequest/draft-1"],
        ),
        ("order-sign", {"userId", "patientId", "draftOrders"}, None),
    ],
    ids=["patient-view", "order-select", "order-sign"],
)
def test_hook_context_fields_per_hook(
    hook: str, fields: set[str], selections: list[str] | None
) -> None:
    """Verify that each hook gets its context fields; order-select selects every draft order."""
    context = hook_context(hook, "p1", user="Practitioner/x", draft_orders=[ORDER])
    assert set(context) == fields
    assert context.get("selections") == selections
    if "draftOrders" in context:
        entries = context["draftOrders"]["entry"]
        assert [e["resource"] for e in entries] == [ORDER]
        assert all(e["fullUrl"].startswith("urn:uuid:") for e in entries)


@pytest.mark.parametrize(
    ("options", "keys"),
    [
        ({"prefetch": {"patient": None}}, {"hook", "hookInstance", "context", "prefetch"}),
        (
            {
                "fhir_server": "https://ehr.example/fhir",
                "fhir_authorization": bearer("t", scope="s"),
            },
            {"hook", "hookInstance", "context", "fhirServer", "fhirAuthorization"},
        ),
    ],
    ids=["prefetch", "fhir-server"],
)
def test_hook_request_data_as_prefetch_or_fhir_server(
    options: dict[str, Any], keys: set[str]
) -> None:
    """Verify that a request carries the prefetch or the FHIR server and token it was given."""
    body = hook_request("patient-view", {"patientId": "p1"}, **options)
    assert set(body) == keys


def test_stored_resources_entry_references_become_type_and_id() -> None:
    """Verify that urn:uuid and absolute fullUrl references are rewritten as a server would."""
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient", "id": "pa"}},
            {
                "fullUrl": "https://x.example/fhir/Medication/m",
                "resource": {"resourceType": "Medication", "id": "m"},
            },
            {
                "resource": {
                    "resourceType": "MedicationRequest",
                    "id": "mr",
                    "subject": {"reference": "urn:uuid:1"},
                    "medicationReference": {"reference": "https://x.example/fhir/Medication/m"},
                    "requester": {"reference": "Practitioner/elsewhere"},
                }
            },
        ],
    }
    resources = stored_resources(bundle)
    order = resources[2]
    assert order["subject"] == {"reference": "Patient/pa"}
    assert order["medicationReference"] == {"reference": "Medication/m"}
    assert order["requester"] == {"reference": "Practitioner/elsewhere"}
    assert patient_id_of(resources) == "pa"
    assert bundle["entry"][2]["resource"]["subject"] == {"reference": "urn:uuid:1"}
