"""Condition -> DiagnosisFact."""

from __future__ import annotations

from typing import Any

from fhir_mappers.codes import concept, status_code
from fhir_mappers.dates import parse_end, parse_start
from fhir_mappers.facts import DiagnosisFact
from fhir_mappers.parse import resource_ref


def map_condition(resource: dict[str, Any]) -> DiagnosisFact:
    onset = parse_start(resource.get("onsetDateTime")) or _period_start(resource.get("onsetPeriod"))
    abatement = parse_end(resource.get("abatementDateTime")) or _period_end(
        resource.get("abatementPeriod")
    )
    return DiagnosisFact(
        ref=resource_ref(resource),
        concept=concept(resource.get("code")),
        clinical_status=status_code(resource.get("clinicalStatus")),
        verification_status=status_code(resource.get("verificationStatus")),
        onset=onset,
        abatement=abatement,
        recorded=parse_start(resource.get("recordedDate")),
    )


def _period_start(period: Any) -> Any:
    return parse_start(period.get("start")) if isinstance(period, dict) else None


def _period_end(period: Any) -> Any:
    return parse_end(period.get("end")) if isinstance(period, dict) else None
