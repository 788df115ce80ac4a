"""AllergyIntolerance -> AllergyFact."""

from __future__ import annotations

from typing import Any

from fhir_mappers.codes import concept, status_code
from fhir_mappers.facts import AllergyFact
from fhir_mappers.parse import resource_ref


def map_allergy(resource: dict[str, Any]) -> AllergyFact:
    return AllergyFact(
        ref=resource_ref(resource),
        concept=concept(resource.get("code")),
        clinical_status=status_code(resource.get("clinicalStatus")),
        verification_status=status_code(resource.get("verificationStatus")),
    )
