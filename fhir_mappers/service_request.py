"""ServiceRequest -> ReferralFact (what is requested, its status, when)."""

from __future__ import annotations

from typing import Any

from fhir_mappers.codes import as_list, concept
from fhir_mappers.dates import parse_end, parse_start
from fhir_mappers.facts import ReferralFact
from fhir_mappers.parse import resource_ref

MAX_IDENTIFIERS = 20


def identifier_systems(resource: dict[str, Any]) -> tuple[str, ...]:
    """The systems of the resource's identifiers (at most ``MAX_IDENTIFIERS`` read)."""
    return tuple(
        dict.fromkeys(
            item["system"]
            for item in as_list(resource.get("identifier"))[:MAX_IDENTIFIERS]
            if isinstance(item, dict) and isinstance(item.get("system"), str)
        )
    )


def map_service_request(resource: dict[str, Any]) -> ReferralFact:
    period = resource.get("occurrencePeriod")
    occurrence_end = parse_end(resource.get("occurrenceDateTime"))
    if occurrence_end is None and isinstance(period, dict):
        occurrence_end = parse_end(period.get("end")) or parse_end(period.get("start"))
    status = resource.get("status")
    intent = resource.get("intent")
    return ReferralFact(
        ref=resource_ref(resource),
        concept=concept(resource.get("code")),
        status=status if isinstance(status, str) else None,
        intent=intent if isinstance(intent, str) else None,
        identifier_systems=identifier_systems(resource),
        authored=parse_start(resource.get("authoredOn")),
        occurrence_end=occurrence_end,
    )
