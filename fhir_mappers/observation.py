"""Observation -> ObservationFact (code, components, value, effective time)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir_mappers.codes import coding_pairs, concept, quantity_value
from fhir_mappers.dates import parse_start
from fhir_mappers.facts import ComponentFact, ObservationFact
from fhir_mappers.parse import resource_ref


def observation_concepts(resource: dict[str, Any]) -> list[Any]:
    """Observation.code and every component code, as raw CodeableConcepts (for cheap filters)."""
    found = [resource.get("code")]
    components = resource.get("component")
    if isinstance(components, list):
        found += [c.get("code") for c in components if isinstance(c, dict)]
    return found


def observation_coding_pairs(resource: dict[str, Any]) -> list[tuple[str | None, str | None]]:
    """(system, code) of Observation.code and of every component code (cheap filters)."""
    pairs = coding_pairs(resource.get("code"))
    components = resource.get("component")
    if isinstance(components, list):
        for component in components:
            if isinstance(component, dict):
                pairs += coding_pairs(component.get("code"))
    return pairs


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
    raw_components = resource.get("component")
    if isinstance(raw_components, list):
        for item in raw_components:
            if isinstance(item, dict):
                c_value, c_unit = _value(item)
                components.append(ComponentFact(concept(item.get("code")), c_value, c_unit))
    effective = observation_effective(resource)
    return ObservationFact(
        ref=resource_ref(resource),
        concept=concept(resource.get("code")),
        status=resource.get("status") if isinstance(resource.get("status"), str) else None,
        effective=effective,
        value=value,
        unit=unit,
        value_concept=concept(resource.get("valueCodeableConcept")),
        components=tuple(components),
    )


def _value(element: dict[str, Any]) -> tuple[float | None, str | None]:
    if "valueQuantity" in element:
        return quantity_value(element["valueQuantity"])
    integer = element.get("valueInteger")
    if isinstance(integer, int) and not isinstance(integer, bool):
        return float(integer), None
    return None, None
