"""Shared by all hooks: prefetch templates, and gathered resources -> facts -> assessment."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from fhir_mappers.codes import LOINC
from fhir_mappers.collect import MappingStats, index_medications, map_resources
from fhir_mappers.facts import Facts
from hooks.base import HookInput
from hooks.relevance import KnowledgeRelevance, observation_lists
from hooks.rules.assessment import assess
from hooks.rules.findings import Assessment
from hooks.rules.knowledge import Knowledge
from hooks.rules.plausibility import plausible

logger = logging.getLogger(__name__)

REQUIRED_KEYS = frozenset({"patient", "conditions", "medicationRequests"})
"""Without these the service cannot judge anything: missing and not fetchable -> HTTP 412."""


def prefetch_templates(knowledge: Knowledge) -> dict[str, str]:
    """The templates every service of ours declares.

    They keep to the 2.0.1 restricted query subset (checklist item 39: reads, type searches,
    patient references, token parameters) with one deliberate exception: the medication searches
    add ``_include=...:medication`` so that products given by reference arrive in the same Bundle.
    The subset is only RECOMMENDED; an EHR that cannot run ``_include`` may omit the key and the
    service then runs the same query itself.
    """
    loinc = sorted(
        {
            code
            for name in observation_lists(knowledge)
            for system, code in knowledge.code_list(name).codes
            if system == LOINC
        }
    )
    codes = ",".join(f"{LOINC}|{code}" for code in loinc)
    patient = "{{context.patientId}}"
    return {
        "patient": f"Patient/{patient}",
        "conditions": f"Condition?patient={patient}",
        "medicationRequests": (
            f"MedicationRequest?patient={patient}&_include=MedicationRequest:medication"
        ),
        "medicationStatements": (
            f"MedicationStatement?patient={patient}&_include=MedicationStatement:medication"
        ),
        "observations": f"Observation?patient={patient}&code={codes}",
        "allergies": f"AllergyIntolerance?patient={patient}",
        # Treatment and referral in progress (none required: a key that cannot be had is a data
        # gap, never a reason to withhold a card).
        "medicationAdministrations": (
            f"MedicationAdministration?patient={patient}"
            "&_include=MedicationAdministration:medication"
        ),
        "medicationDispenses": (
            f"MedicationDispense?patient={patient}&_include=MedicationDispense:medication"
        ),
        "serviceRequests": f"ServiceRequest?patient={patient}",
    }


def all_resources(hook_input: HookInput) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for resources in hook_input.resources.values():
        out.extend(resources)
    return out


def patient_facts(hook_input: HookInput) -> Facts:
    resources = all_resources(hook_input)
    stats = MappingStats()
    facts = map_resources(
        resources,
        KnowledgeRelevance(hook_input.knowledge, now=hook_input.now),
        patient_id=hook_input.context.patientId,
        medication_index=index_medications(resources),
        stats=stats,
    )
    logger.info(
        "mapped resources seen=%d mapped=%d irrelevant=%d invalid=%d",
        stats.seen,
        stats.mapped,
        stats.irrelevant,
        stats.invalid,
    )
    return replace(
        facts,
        gaps=tuple(hook_input.gaps) + facts.gaps,
        unreadable=tuple(hook_input.unreadable) + facts.unreadable,
    )


def patient_assessment(hook_input: HookInput) -> tuple[Facts, Assessment]:
    """The patient's facts (implausible values set aside and reported) and their assessment."""
    facts = plausible(patient_facts(hook_input), now=hook_input.now, knowledge=hook_input.knowledge)
    assessment = assess(
        facts,
        now=hook_input.now,
        knowledge=hook_input.knowledge,
    )
    return facts, assessment
