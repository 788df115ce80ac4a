"""CodeableConcept helpers and the code-system URIs the service uses. Pure, tolerant of junk."""

from __future__ import annotations

from typing import Any

from fhir_mappers.facts import EMPTY_CONCEPT, Coding, Concept

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"


def concept(value: Any) -> Concept:
    """A FHIR CodeableConcept (dict) as a ``Concept``; anything else gives an empty concept."""
    if not isinstance(value, dict):
        return EMPTY_CONCEPT
    codings: list[Coding] = []
    raw = value.get("coding")
    if isinstance(raw, list):
        for item in raw:
            if isinstance(item, dict):
                code = item.get("code")
                codings.append(
                    Coding(
                        _str(item.get("system")),
                        _str(code) if not isinstance(code, int) else str(code),
                        _str(item.get("display")),
                    )
                )
    text = _str(value.get("text"))
    if not codings and text is None:
        return EMPTY_CONCEPT
    return Concept(tuple(codings), text)


def coding_pairs(value: Any) -> list[tuple[str | None, str | None]]:
    """The (system, code) of each coding of a CodeableConcept, normalised exactly as ``concept``
    does, without building a ``Concept`` (the cheap pre-validation filters use it)."""
    if not isinstance(value, dict):
        return []
    raw = value.get("coding")
    if not isinstance(raw, list):
        return []
    pairs: list[tuple[str | None, str | None]] = []
    for item in raw:
        if isinstance(item, dict):
            code = item.get("code")
            pairs.append(
                (_str(item.get("system")), _str(code) if not isinstance(code, int) else str(code))
            )
    return pairs


def concepts(value: Any) -> tuple[Concept, ...]:
    """A list of CodeableConcepts."""
    if not isinstance(value, list):
        return ()
    return tuple(c for c in (concept(v) for v in value) if not c.is_empty())


def status_code(value: Any) -> str | None:
    """The first code of a status CodeableConcept (Condition.clinicalStatus and the like)."""
    parsed = concept(value)
    for coding in parsed.codings:
        if coding.code:
            return coding.code
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def reference_key(value: Any) -> str | None:
    """The ``reference`` string of a FHIR Reference."""
    if isinstance(value, dict):
        return _str(value.get("reference"))
    return None


def quantity_value(value: Any) -> tuple[float | None, str | None]:
    """A Quantity's numeric value and its unit (code preferred over unit text)."""
    if not isinstance(value, dict):
        return None, None
    number = value.get("value")
    unit = _str(value.get("code")) or _str(value.get("unit"))
    if isinstance(number, bool) or not isinstance(number, int | float):
        return None, unit
    return float(number), unit
