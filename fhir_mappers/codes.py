"""CodeableConcept helpers and the code-system URIs the service uses. Pure, tolerant of junk.

Tolerance rules (one for every mapper):

- an element that FHIR says is a list but arrives as a single object (``"coding": {...}``, a
  defect real EHRs and the CDS Hooks sandbox send) is read as a one-item list (``as_list``);
- numbers are read only when they are finite JSON numbers within ``MAX_MAGNITUDE``
  (``number``): booleans, strings, NaN, infinities and integers too large for a float are "no
  value", so no arithmetic downstream can overflow on them.
"""

from __future__ import annotations

import math
from typing import Any

from fhir_mappers.facts import EMPTY_CONCEPT, Coding, Concept

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"


MAX_MAGNITUDE = 1e12
"""Largest absolute number read from a FHIR value (any field); larger ones are unreadable."""


def as_list(value: Any) -> list[Any]:
    """A FHIR list element as a list: a single object stands for a one-item list; else empty."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return [value]
    return []


def number(value: Any) -> float | None:
    """A finite JSON number within ``MAX_MAGNITUDE`` as a float, else None (never raises)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        result = float(value)
    except OverflowError:  # an integer beyond the float range
        return None
    if not math.isfinite(result) or abs(result) > MAX_MAGNITUDE:
        return None
    return result


def concept(value: Any) -> Concept:
    """A FHIR CodeableConcept (dict) as a ``Concept``; anything else gives an empty concept."""
    if not isinstance(value, dict):
        return EMPTY_CONCEPT
    codings: list[Coding] = []
    raw = as_list(value.get("coding"))
    if raw:
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
    raw = as_list(value.get("coding"))
    pairs: list[tuple[str | None, str | None]] = []
    for item in raw:
        if isinstance(item, dict):
            code = item.get("code")
            pairs.append(
                (_str(item.get("system")), _str(code) if not isinstance(code, int) else str(code))
            )
    return pairs


def concepts(value: Any) -> tuple[Concept, ...]:
    """A list of CodeableConcepts (a single object counts as a one-item list)."""
    return tuple(c for c in (concept(v) for v in as_list(value)) if not c.is_empty())


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
    unit = _str(value.get("code")) or _str(value.get("unit"))
    return number(value.get("value")), unit
