"""Matching diagnoses against code lists, with the status rules every check shares. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from fhir_mappers.facts import Concept, DiagnosisFact
from hooks.rules.knowledge import CompiledCodeList

NEVER_TRUE = frozenset({"refuted", "entered-in-error"})
ACTIVE = frozenset({"active", "recurrence", "relapse"})


def concept_matches(code_list: CompiledCodeList, concept: Concept) -> bool:
    if any(code_list.matches_code(c.system, c.code) for c in concept.codings):
        return True
    return any(code_list.matches_text(t) for t in concept.texts())


def is_recorded(diagnosis: DiagnosisFact) -> bool:
    """Not refuted and not entered in error (history checks use this)."""
    return diagnosis.verification_status not in NEVER_TRUE


def is_active(diagnosis: DiagnosisFact, now: datetime) -> bool:
    """Current: active/recurrence/relapse, or no status and not abated."""
    if not is_recorded(diagnosis):
        return False
    if diagnosis.clinical_status is not None:
        return diagnosis.clinical_status in ACTIVE
    return diagnosis.abatement is None or diagnosis.abatement > now


def matching(
    diagnoses: Iterable[DiagnosisFact], code_list: CompiledCodeList
) -> list[DiagnosisFact]:
    return [d for d in diagnoses if concept_matches(code_list, d.concept)]


def describe(diagnosis: DiagnosisFact) -> str:
    status = diagnosis.clinical_status or "no status"
    return f"{diagnosis.concept.label()} ({diagnosis.ref}, {status})"
