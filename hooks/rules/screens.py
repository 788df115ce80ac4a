"""Which data each screen reads, and which screens unreadable data leaves undone. Pure.

A screen is one contraindication check or one candidate-reason check. Its status:

- ``found``: the record shows it (with evidence);
- ``not-found``: every source it reads was read, and nothing showed it;
- ``incomplete``: a source it reads could not be read (a failed or malformed query, a key missing
  with no fhirServer, paging cut short, a record malformed in an element the screen reads): the
  check could not be done, and it is never reported as passed;
- ``no-data``: the sources were read but the record lacks what the check needs (no recent blood
  pressure, no birth date): a data gap that does not by itself change the answer.

A found contraindication stays found whatever else could not be read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fhir_mappers.facts import Unreadable
from hooks.rules.conditions import concept_matches
from hooks.rules.findings import CandidateReason, ContraindicationId, InProgressId, ScreenStatus
from hooks.rules.knowledge import Knowledge
from hooks.rules.medications import resolve_ingredients

MEDICATIONS = "medications"
"""Pseudo code list: a medication record that resolves to an antidepressant or augmenter."""
TARGET_ALLERGY = "ketamine-allergy"
"""Pseudo code list: an allergy record naming ketamine or esketamine."""
TARGET_MEDICATION = "ketamine-medication"
"""Pseudo code list: a medication record of ketamine or esketamine."""


@dataclass(frozen=True)
class ScreenNeeds:
    """The resource types a screen reads, and the code lists that pick its records out."""

    resource_types: frozenset[str]
    code_lists: tuple[str, ...]


def _needs(types: Iterable[str], *lists: str) -> ScreenNeeds:
    return ScreenNeeds(frozenset(types), lists)


CONTRAINDICATION_NEEDS: dict[ContraindicationId, ScreenNeeds] = {
    "psychosis-history": _needs({"Condition"}, "psychosis"),
    "current-mania-or-hypomania": _needs({"Condition"}, "bipolar-manic-or-hypomanic"),
    "uncontrolled-hypertension": _needs(
        {"Condition", "Observation"},
        "hypertensive-crisis",
        "bp-panel",
        "bp-systolic",
        "bp-diastolic",
    ),
    "serious-heart-disease": _needs({"Condition"}, "serious-heart-disease"),
    "aneurysmal-vascular-disease-or-avm": _needs({"Condition"}, "aneurysm-or-avm"),
    "intracerebral-hemorrhage-history": _needs({"Condition"}, "intracerebral-hemorrhage"),
    "ketamine-hypersensitivity": _needs({"AllergyIntolerance"}, TARGET_ALLERGY),
    "active-substance-use-disorder": _needs({"Condition"}, "substance-use-disorder-active"),
    "pregnancy": _needs({"Condition", "Observation"}, "pregnancy", "pregnancy-status"),
    "breastfeeding": _needs({"Condition"}, "breastfeeding"),
    "minor": _needs({"Patient"}),
}
"""What each contraindication screen reads (the order is the checklist's order)."""

REASON_NEEDS: dict[CandidateReason, ScreenNeeds] = {
    "treatment-resistant-depression": _needs(
        {"MedicationRequest", "MedicationStatement", "Condition", "Observation"},
        MEDICATIONS,
        "depressive-disorder",
        "depression-full-remission",
        "bipolar-depressed",
        "bipolar-manic-or-hypomanic",
        "bipolar-unspecified-phase",
        "phq9-total",
    ),
    "suicidal-ideation": _needs({"Condition", "Observation"}, "suicidal-ideation", "phq9-item9"),
    "severe-depression": _needs({"Condition", "Observation"}, "severe-depression", "phq9-total"),
    "bipolar-depression": _needs({"Condition"}, "bipolar-depressed"),
}
"""What each candidate-reason screen reads."""

IN_PROGRESS_NEEDS: dict[InProgressId, ScreenNeeds] = {
    "treatment-in-progress": _needs(
        {
            "MedicationRequest",
            "MedicationStatement",
            "MedicationAdministration",
            "MedicationDispense",
        },
        TARGET_MEDICATION,
    ),
    "referral-in-progress": _needs({"ServiceRequest"}, "ketamine-evaluation-referral"),
}
"""What each in-progress screen reads: when one is incomplete, no card is withheld for it."""


def _matches(name: str, unreadable: Unreadable, knowledge: Knowledge) -> bool:
    concept = unreadable.concept
    if concept is None:
        return True
    if name == MEDICATIONS:
        return any(
            knowledge.ingredients[i.name].role in ("antidepressant", "augmenter")
            for i in resolve_ingredients(concept, (), knowledge)
        )
    if name in (TARGET_ALLERGY, TARGET_MEDICATION):
        return any(
            i.name in ("ketamine", "esketamine")
            for i in resolve_ingredients(concept, (), knowledge)
        )
    return concept_matches(knowledge.code_list(name), concept)


def affects(needs: ScreenNeeds, unreadable: Unreadable, knowledge: Knowledge) -> bool:
    """Whether this unreadable source or record may hold what the screen looks for."""
    if unreadable.resource_type not in needs.resource_types:
        return False
    if unreadable.concept is None or not needs.code_lists:
        return True
    return any(_matches(name, unreadable, knowledge) for name in needs.code_lists)


def undone_by(
    needs: ScreenNeeds, unreadable: Iterable[Unreadable], knowledge: Knowledge
) -> tuple[str, ...]:
    """Why the screen could not be completed (empty: it could)."""
    return tuple(dict.fromkeys(u.why for u in unreadable if affects(needs, u, knowledge)))


def screen_status(found: bool, undone: tuple[str, ...], missing: tuple[str, ...]) -> ScreenStatus:
    """A found screen stays found; else unreadable data makes it incomplete; else a data gap."""
    if found:
        return "found"
    if undone:
        return "incomplete"
    if missing:
        return "no-data"
    return "not-found"
