"""Which FHIR resources the rules can use, decided from codes alone (before any validation)."""

from __future__ import annotations

from fhir_mappers.facts import Concept, IngredientStrength
from hooks.rules.conditions import concept_matches
from hooks.rules.knowledge import CompiledCodeList, Knowledge
from hooks.rules.medications import is_known_drug

CONDITION_LISTS = (
    "depressive-disorder",
    "depression-full-remission",
    "severe-depression",
    "bipolar-depressed",
    "bipolar-manic-or-hypomanic",
    "bipolar-unspecified-phase",
    "psychosis",
    "suicidal-ideation",
    "hypertensive-crisis",
    "serious-heart-disease",
    "aneurysm-or-avm",
    "intracerebral-hemorrhage",
    "substance-use-disorder-active",
    "pregnancy",
    "breastfeeding",
)

OBSERVATION_LISTS = (
    "phq9-total",
    "phq9-item9",
    "bp-panel",
    "bp-systolic",
    "bp-diastolic",
    "body-weight",
    "pregnancy-status",
)


class KnowledgeRelevance:
    """Keeps the Conditions, medications, Observations and allergies some rule looks at."""

    def __init__(self, knowledge: Knowledge) -> None:
        self._knowledge = knowledge
        self._conditions: tuple[CompiledCodeList, ...] = tuple(
            knowledge.code_list(n) for n in CONDITION_LISTS
        )
        codes: set[tuple[str, str]] = set()
        for name in OBSERVATION_LISTS:
            codes |= knowledge.code_list(name).codes
        self._observation_codes = frozenset(codes)

    def condition(self, code: Concept) -> bool:
        return any(concept_matches(cl, code) for cl in self._conditions)

    def medication(self, product: Concept, ingredients: tuple[IngredientStrength, ...]) -> bool:
        return is_known_drug(product, ingredients, self._knowledge)

    def observation(self, codes: list[Concept]) -> bool:
        wanted = self._observation_codes
        return any((c.system, c.code) in wanted for concept in codes for c in concept.codings)

    def allergy(self, code: Concept) -> bool:
        return True

    @property
    def observation_codes(self) -> frozenset[tuple[str, str]]:
        return self._observation_codes
