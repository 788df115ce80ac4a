"""PHQ-9 scores, read in every shape EHRs record them. Pure.

- a total (LOINC 44261-6, 89204-2) as its own Observation: valueQuantity or valueInteger;
- item 9 (44260-8) as its own Observation: valueQuantity, valueInteger, or valueCodeableConcept
  with a LOINC answer code (LA6568-5 = 0 ... LA6571-9 = 3; ``policy.answer_scores``);
- a PHQ-9 panel (44249-1) whose components carry the items and the total, in any of the value
  shapes above; a panel with a value of its own and no total component gives that value as the
  total.

Observations entered in error or cancelled are not read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fhir_mappers.facts import Concept, ObservationFact
from hooks.rules.conditions import concept_matches
from hooks.rules.knowledge import Knowledge
from hooks.rules.observations import is_result


@dataclass(frozen=True, slots=True)
class Score:
    """One dated score, with the Observation it came from."""

    ref: str
    effective: datetime
    value: float


def answer_score(value: float | None, answer: Concept, knowledge: Knowledge) -> float | None:
    """A numeric answer, else the score of a coded LOINC answer, else None."""
    if value is not None:
        return value
    scores = knowledge.policy.answer_scores
    for coding in answer.codings:
        if coding.system == scores.system and coding.code in scores.scores:
            return scores.scores[coding.code]
    return None


@dataclass(frozen=True)
class Phq9:
    totals: tuple[Score, ...]
    item9: tuple[Score, ...]
    """Both sorted by time."""


def phq9_scores(observations: tuple[ObservationFact, ...], knowledge: Knowledge) -> Phq9:
    total_codes = knowledge.code_list("phq9-total")
    item9_codes = knowledge.code_list("phq9-item9")
    panel_codes = knowledge.code_list("phq9-panel")
    totals: list[Score] = []
    item9: list[Score] = []
    for obs in observations:
        if obs.effective is None or not is_result(obs):
            continue
        own = answer_score(obs.value, obs.value_concept, knowledge)
        if concept_matches(total_codes, obs.concept) and obs.value is not None:
            totals.append(Score(obs.ref, obs.effective, obs.value))
        elif concept_matches(item9_codes, obs.concept) and own is not None:
            item9.append(Score(obs.ref, obs.effective, own))
        has_total = False
        for component in obs.components:
            if concept_matches(total_codes, component.concept) and component.value is not None:
                totals.append(Score(obs.ref, obs.effective, component.value))
                has_total = True
            elif concept_matches(item9_codes, component.concept):
                score = answer_score(component.value, component.value_concept, knowledge)
                if score is not None:
                    item9.append(Score(obs.ref, obs.effective, score))
        if not has_total and obs.value is not None and concept_matches(panel_codes, obs.concept):
            totals.append(Score(obs.ref, obs.effective, obs.value))
    totals.sort(key=lambda s: s.effective)
    item9.sort(key=lambda s: s.effective)
    return Phq9(tuple(totals), tuple(item9))
