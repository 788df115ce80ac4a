"""Patient -> PatientFact (birth date with its precision, gender, deceased)."""

from __future__ import annotations

from typing import Any

from fhir_mappers.dates import parse_birth_date, parse_start
from fhir_mappers.facts import PatientFact
from fhir_mappers.parse import resource_ref


def map_patient(resource: dict[str, Any]) -> PatientFact:
    birth, precision = parse_birth_date(resource.get("birthDate"))
    deceased = resource.get("deceasedBoolean") is True or bool(resource.get("deceasedDateTime"))
    gender = resource.get("gender")
    return PatientFact(
        ref=resource_ref(resource),
        birth_date=birth,
        birth_precision=precision,
        gender=gender if isinstance(gender, str) else None,
        deceased=deceased,
        deceased_at=parse_start(resource.get("deceasedDateTime")),
    )
