"""Build CDS Hooks requests from a patient's resources, as an EHR would send them."""

from __future__ import annotations

import uuid
from typing import Any

from tests.factories import collection, searchset

KEY_OF_TYPE = {
    "Condition": "conditions",
    "MedicationRequest": "medicationRequests",
    "MedicationStatement": "medicationStatements",
    "Observation": "observations",
    "AllergyIntolerance": "allergies",
}

HOOK_OF_SERVICE = {
    "trd-ketamine-screen": "patient-view",
    "trd-antidepressant-order": "order-select",
    "ketamine-order-safety": "order-sign",
}


def prefetch_for(
    resources: list[dict[str, Any]], observation_codes: set[str] | None = None
) -> dict[str, Any]:
    """Every prefetch key filled the way the templates would fill it (null when nothing found)."""
    keyed: dict[str, list[dict[str, Any]]] = {k: [] for k in KEY_OF_TYPE.values()}
    patient = None
    medications = {
        f"Medication/{r['id']}": r for r in resources if r["resourceType"] == "Medication"
    }
    for resource in resources:
        rtype = resource["resourceType"]
        if rtype == "Patient":
            patient = resource
        elif rtype == "Observation" and observation_codes is not None:
            codes = {c.get("code") for c in resource.get("code", {}).get("coding", [])}
            if codes & observation_codes:
                keyed["observations"].append(resource)
        elif rtype in KEY_OF_TYPE:
            keyed[KEY_OF_TYPE[rtype]].append(resource)
    prefetch: dict[str, Any] = {"patient": patient}
    for key, items in keyed.items():
        if key in ("medicationRequests", "medicationStatements"):
            included = [
                medications[r["medicationReference"]["reference"]]
                for r in items
                if r.get("medicationReference", {}).get("reference") in medications
            ]
            items = items + included
        prefetch[key] = searchset(items) if items else None
    return prefetch


def hook_request(
    service_id: str,
    resources: list[dict[str, Any]],
    *,
    mode: str = "prefetch",
    pid: str = "p1",
    draft_orders: list[dict[str, Any]] | None = None,
    selections: list[str] | None = None,
    fhir_server: str = "https://ehr.example/fhir",
    observation_codes: set[str] | None = None,
) -> dict[str, Any]:
    context: dict[str, Any] = {"userId": "Practitioner/example", "patientId": pid}
    if service_id != "trd-ketamine-screen":
        context["draftOrders"] = collection(draft_orders or [])
    if service_id == "trd-antidepressant-order":
        context["selections"] = selections or [
            f"MedicationRequest/{o['id']}" for o in draft_orders or []
        ]
    body: dict[str, Any] = {
        "hook": HOOK_OF_SERVICE[service_id],
        "hookInstance": str(uuid.uuid4()),
        "context": context,
    }
    if mode == "prefetch":
        body["prefetch"] = prefetch_for(resources, observation_codes)
    else:
        body["fhirServer"] = fhir_server
        body["fhirAuthorization"] = {
            "access_token": "secret-token-abc",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "user/Patient.read user/Condition.read user/MedicationRequest.read",
            "subject": "ketamine-cds",
        }
    return body
