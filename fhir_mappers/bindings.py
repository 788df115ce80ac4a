"""Required code bindings that fhir.resources does not enforce, for the fields the rules read.

fhir.resources checks structure and types but not required value-set bindings, so
``Observation.status: "bogus"`` validates. A resource whose status code is not one of its FHIR R4
values is malformed in that element, like any other invalid element a rule reads.
"""

from __future__ import annotations

from typing import Any

from fhir_mappers.codes import as_list

CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"

STATUS_CODES: dict[str, dict[str, frozenset[str]]] = {
    "Observation": {
        "status": frozenset(
            {
                "registered",
                "preliminary",
                "final",
                "amended",
                "corrected",
                "cancelled",
                "entered-in-error",
                "unknown",
            }
        ),
    },
    "MedicationRequest": {
        "status": frozenset(
            {
                "active",
                "on-hold",
                "cancelled",
                "completed",
                "entered-in-error",
                "stopped",
                "draft",
                "unknown",
            }
        ),
        "intent": frozenset(
            {
                "proposal",
                "plan",
                "order",
                "original-order",
                "reflex-order",
                "filler-order",
                "instance-order",
                "option",
            }
        ),
    },
    "MedicationStatement": {
        "status": frozenset(
            {
                "active",
                "completed",
                "entered-in-error",
                "intended",
                "stopped",
                "on-hold",
                "unknown",
                "not-taken",
            }
        ),
    },
    "MedicationAdministration": {
        "status": frozenset(
            {
                "in-progress",
                "not-done",
                "on-hold",
                "completed",
                "entered-in-error",
                "stopped",
                "unknown",
            }
        ),
    },
    "MedicationDispense": {
        "status": frozenset(
            {
                "preparation",
                "in-progress",
                "cancelled",
                "on-hold",
                "completed",
                "entered-in-error",
                "stopped",
                "declined",
                "unknown",
            }
        ),
    },
    "ServiceRequest": {
        "status": frozenset(
            {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"}
        ),
        "intent": frozenset(
            {
                "proposal",
                "plan",
                "directive",
                "order",
                "original-order",
                "reflex-order",
                "filler-order",
                "instance-order",
                "option",
            }
        ),
    },
}
"""FHIR R4 required bindings of primitive code fields."""

CONCEPT_CODES: dict[str, dict[str, tuple[str, frozenset[str]]]] = {
    "Condition": {
        "clinicalStatus": (
            CONDITION_CLINICAL,
            frozenset({"active", "recurrence", "relapse", "inactive", "remission", "resolved"}),
        ),
        "verificationStatus": (
            CONDITION_VERIFICATION,
            frozenset(
                {
                    "unconfirmed",
                    "provisional",
                    "differential",
                    "confirmed",
                    "refuted",
                    "entered-in-error",
                }
            ),
        ),
    },
    "AllergyIntolerance": {
        "clinicalStatus": (ALLERGY_CLINICAL, frozenset({"active", "inactive", "resolved"})),
        "verificationStatus": (
            ALLERGY_VERIFICATION,
            frozenset({"unconfirmed", "confirmed", "refuted", "entered-in-error"}),
        ),
    },
}
"""FHIR R4 required bindings of status CodeableConcepts (codings in the HL7 system)."""


def illegal_status_fields(resource: dict[str, Any]) -> list[str]:
    """The status elements the rules rely on whose codes are not legal FHIR R4 values."""
    resource_type = str(resource.get("resourceType"))
    bad: list[str] = []
    for field, allowed in STATUS_CODES.get(resource_type, {}).items():
        value = resource.get(field)
        if value is not None and (not isinstance(value, str) or value not in allowed):
            bad.append(field)
    for field, (system, codes) in CONCEPT_CODES.get(resource_type, {}).items():
        value = resource.get(field)
        if not isinstance(value, dict):
            continue
        for coding in as_list(value.get("coding")):
            if isinstance(coding, dict) and coding.get("system") in (system, None):
                code = coding.get("code")
                if not isinstance(code, str) or code not in codes:
                    bad.append(field)
                    break
    return bad
