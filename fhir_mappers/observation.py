"""Observation -> ObservationFact (code, components, value, effective time)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir_mappers.codes import as_list, concept, number, quantity_value
from fhir_mappers.dates import parse_start
from fhir_mappers.facts import ComponentFact, ObservationFact
from fhir_mappers.parse import resource_ref


def observation_effective(resource: dict[str, Any]) -> datetime | None:
    """When the observation was made: effective[x] (start of a period), else ``issued``."""
    effective = parse_start(resource.get("effectiveDateTime")) or parse_start(
        resource.get("effectiveInstant")
    )
    if effective is None and isinstance(resource.get("effectivePeriod"), dict):
        effective = parse_start(resource["effectivePeriod"].get("start"))
    if effective is None:
        effective = parse_start(resource.get("issued"))
    return effective


def map_observation(resource: dict[str, Any]) -> ObservationFact:
    value, unit = _value(resource)
    components: list[ComponentFact] = []
    for item in as_list(resource.get("component")):
        if isinstance(item, dict):
            c_value, c_unit = _value(item)
            components.append(
                ComponentFact(
                    concept(item.get("code")),
                    c_value,
                    c_unit,
                    concept(item.get("valueCodeableConcept")),
                )
            )
    status = resource.get("status")
    return ObservationFact(
        ref=resource_ref(resource),
        concept=concept(resource.get("code")),
        status=status if isinstance(status, str) else None,
        effective=observation_effective(resource),
        value=value,
        unit=unit,
        value_concept=concept(resource.get("valueCodeableConcept")),
        components=tuple(components),
    )


def _value(element: dict[str, Any]) -> tuple[float | None, str | None]:
    """valueQuantity, else valueInteger (coded answers are kept as ``value_concept``)."""
    if "valueQuantity" in element:
        return quantity_value(element["valueQuantity"])
    return number(element.get("valueInteger")), None
