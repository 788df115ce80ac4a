"""Raw FHIR resources -> ``Facts``: the single entry point of the mapping layer.

The caller passes a ``Relevance`` that says, from codes alone, which resources a rule could use.
Only those are validated (fhir.resources) and mapped; the rest are counted and dropped unparsed.
A relevant resource that is malformed in an element a rule reads is set aside (garbage is never
evidence) and reported as ``Unreadable`` with its code, so that the screens it feeds are not
reported as done; a defect in an element no rule reads does not stop it being used. A code that
cannot be read at all, or a product that cannot be identified, is ``Unreadable`` for every screen
of its type.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from fhir_mappers.allergy import map_allergy
from fhir_mappers.codes import concept
from fhir_mappers.condition import map_condition
from fhir_mappers.facts import (
    AllergyFact,
    Concept,
    DiagnosisFact,
    Facts,
    IngredientStrength,
    MedicationFact,
    ObservationFact,
    PatientFact,
    ReferralFact,
    Unreadable,
)
from fhir_mappers.medication import MedicationIndex, map_medication, resolve_medication
from fhir_mappers.observation import map_observation
from fhir_mappers.parse import inspect, resource_ref
from fhir_mappers.patient import map_patient
from fhir_mappers.service_request import identifier_systems, map_service_request

MEDICATION_TYPES = frozenset(
    {"MedicationRequest", "MedicationStatement", "MedicationAdministration", "MedicationDispense"}
)


class Relevance(Protocol):
    """Cheap, code-only decisions about which resources are worth validating and mapping."""

    def condition(self, code: Concept) -> bool: ...

    def medication(self, product: Concept, ingredients: tuple[IngredientStrength, ...]) -> bool: ...

    def observation(self, codes: list[Concept]) -> bool: ...

    def observation_resource(self, resource: dict[str, Any]) -> bool:
        """The same decision for a raw Observation; may also look at its date (a rule that only
        reads the last N days needs nothing older). Must stay a cheap filter: no validation."""
        ...

    def allergy(self, code: Concept) -> bool: ...

    def referral(self, code: Concept, identifier_systems: tuple[str, ...]) -> bool:
        """Whether a ServiceRequest may be a referral some rule looks for."""
        ...


class AcceptAll:
    """Relevance that keeps everything (tests, and the offline ``evaluate`` tool's diagnostics)."""

    def condition(self, code: Concept) -> bool:
        return True

    def medication(self, product: Concept, ingredients: tuple[IngredientStrength, ...]) -> bool:
        return True

    def observation(self, codes: list[Concept]) -> bool:
        return True

    def observation_resource(self, resource: dict[str, Any]) -> bool:
        return True

    def allergy(self, code: Concept) -> bool:
        return True

    def referral(self, code: Concept, identifier_systems: tuple[str, ...]) -> bool:
        return True


@dataclass
class MappingStats:
    """How many resources were seen, mapped and skipped (for logs and benchmarks; no PHI)."""

    seen: int = 0
    mapped: int = 0
    irrelevant: int = 0
    invalid: int = 0


def index_medications(resources: Iterable[dict[str, Any]]) -> MedicationIndex:
    """Medication resources by "Medication/id" (the form references use)."""
    index: MedicationIndex = {}
    for resource in resources:
        if resource.get("resourceType") == "Medication" and isinstance(resource.get("id"), str):
            index[f"Medication/{resource['id']}"] = resource
    return index


def map_resources(
    resources: Iterable[dict[str, Any]],
    relevance: Relevance,
    *,
    patient_id: str | None = None,
    medication_index: MedicationIndex | None = None,
    stats: MappingStats | None = None,
) -> Facts:
    """Map a patient's resources to facts. Never raises on bad data."""
    stats = stats if stats is not None else MappingStats()
    items = [r for r in resources if isinstance(r, dict)]
    medications = medication_index if medication_index is not None else index_medications(items)
    # Codes of every Condition (cheap, unvalidated: used only to read a prescription's stated
    # indication through reasonReference, e.g. an SSRI prescribed for PTSD).
    condition_codes = {
        r["id"]: concept(r.get("code"))
        for r in items
        if r.get("resourceType") == "Condition" and isinstance(r.get("id"), str)
    }
    seen_refs: set[str] = set()
    unreadable: list[Unreadable] = []
    patient: PatientFact | None = None
    diagnoses: list[DiagnosisFact] = []
    meds: list[MedicationFact] = []
    observations: list[ObservationFact] = []
    allergies: list[AllergyFact] = []
    referrals: list[ReferralFact] = []

    def usable(resource: dict[str, Any], code: Concept | None) -> bool:
        """Whether the rules may use the resource; if not, report it as unreadable."""
        inspection = inspect(resource)
        if inspection.usable:
            stats.mapped += 1
            return True
        stats.invalid += 1
        fields = ", ".join(inspection.bad_fields)
        unreadable.append(
            Unreadable(
                str(resource.get("resourceType")),
                f"{resource_ref(resource)[:120]} is malformed ({fields})"[:200],
                code,
            )
        )
        return False

    def unreadable_code(resource: dict[str, Any], code: Concept, element: str) -> bool:
        """A code element that is there but cannot be read: any screen of the type may need it."""
        if not code.is_empty() or resource.get(element) in (None, "", [], {}):
            return False
        stats.invalid += 1
        unreadable.append(
            Unreadable(
                str(resource.get("resourceType")),
                f"{resource_ref(resource)[:120]} has a {element} that cannot be read",
            )
        )
        return True

    for resource in items:
        resource_type = resource.get("resourceType")
        if not isinstance(resource_type, str):
            continue
        ref = resource_ref(resource)
        if ref in seen_refs and not ref.endswith("/?"):
            continue
        seen_refs.add(ref)
        stats.seen += 1
        if resource_type == "Patient":
            if patient_id is not None and resource.get("id") not in (patient_id, None):
                stats.irrelevant += 1
                continue
            if patient is None and usable(resource, None):
                patient = map_patient(resource)
        elif resource_type in ("Condition", "AllergyIntolerance"):
            code = concept(resource.get("code"))
            if unreadable_code(resource, code, "code"):
                continue
            keep = (
                relevance.condition(code)
                if resource_type == "Condition"
                else relevance.allergy(code)
            )
            if not keep:
                stats.irrelevant += 1
                continue
            if not usable(resource, code):
                continue
            if resource_type == "Condition":
                diagnoses.append(map_condition(resource))
            else:
                allergies.append(map_allergy(resource))
        elif resource_type in MEDICATION_TYPES:
            resolution = resolve_medication(resource, medications)
            product, ingredients, resolved = resolution
            if not resolved and product.is_empty():
                unreadable.append(
                    Unreadable(
                        resource_type,
                        f"{ref[:120]} names a medication that was not provided or is not "
                        "identifiable",
                    )
                )
                stats.irrelevant += 1
                continue
            if not relevance.medication(product, ingredients):
                stats.irrelevant += 1
                continue
            if not usable(resource, product):
                continue
            fact, _ = map_medication(
                resource, medications, resolution=resolution, conditions=condition_codes
            )
            meds.append(fact)
        elif resource_type == "ServiceRequest":
            code = concept(resource.get("code"))
            if not relevance.referral(code, identifier_systems(resource)):
                stats.irrelevant += 1
                continue
            if usable(resource, code):
                referrals.append(map_service_request(resource))
        elif resource_type == "Observation":
            if unreadable_code(resource, concept(resource.get("code")), "code"):
                continue
            if not relevance.observation_resource(resource):
                stats.irrelevant += 1
                continue
            if usable(resource, concept(resource.get("code"))):
                observations.append(map_observation(resource))
        else:
            stats.irrelevant += 1
    return Facts(
        patient=patient,
        diagnoses=tuple(diagnoses),
        medications=tuple(meds),
        observations=tuple(observations),
        allergies=tuple(allergies),
        referrals=tuple(referrals),
        unreadable=tuple(unreadable),
    )


def bundle_resources(bundle: Any) -> list[dict[str, Any]]:
    """The resources of a Bundle's entries (any Bundle type); a bare resource is returned alone."""
    if not isinstance(bundle, dict):
        return []
    if bundle.get("resourceType") != "Bundle":
        return [bundle] if "resourceType" in bundle else []
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        return []
    return [
        e["resource"]
        for e in entries
        if isinstance(e, dict) and isinstance(e.get("resource"), dict)
    ]
