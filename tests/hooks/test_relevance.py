"""The relevance filter drops only what no rule reads.

The filter decides, before validation, which resources the rules can use (for speed). When a rule
starts reading a new code list and the filter does not know it, the rule silently never fires
(clinical review M6: subdural haemorrhage codes were discarded before any rule ran). So every
scenario is assessed twice, once through the filter and once with a filter that keeps
everything, and the assessments must be identical.
"""

from __future__ import annotations

from typing import Any

import pytest

from fhir_mappers.collect import AcceptAll, index_medications, map_resources
from hooks.relevance import KnowledgeRelevance, condition_lists
from hooks.rules.assessment import assess
from hooks.rules.knowledge import Knowledge
from hooks.rules.plausibility import plausible
from tests.factories import NOW, condition
from tests.scenarios import SCENARIOS, Scenario


def _assessment(resources: list[dict[str, Any]], relevance: Any, knowledge: Knowledge) -> Any:
    facts = map_resources(
        resources,
        relevance,
        patient_id="p1",
        medication_index=index_medications(resources),
    )
    facts = plausible(facts, now=NOW, knowledge=knowledge)
    return assess(facts, now=NOW, knowledge=knowledge).as_json()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_relevance_filter_changes_no_assessment(scenario: Scenario, knowledge: Knowledge) -> None:
    """Verify that each scenario's assessment is the same with and without the filter."""
    resources = scenario.build()
    filtered = _assessment(resources, KnowledgeRelevance(knowledge, now=NOW), knowledge)
    unfiltered = _assessment(resources, AcceptAll(), knowledge)
    assert filtered == unfiltered


@pytest.mark.parametrize(
    ("code", "display"),
    [
        ("F31.72", "Bipolar disorder, in full remission, most recent episode hypomanic"),
        ("I62.00", "Nontraumatic subdural hemorrhage, unspecified"),
        ("T42.4X2A", "Poisoning by benzodiazepines, intentional self-harm, initial encounter"),
        ("I25.2", "Old myocardial infarction"),
        ("O80", "Encounter for full-term uncomplicated delivery"),
        ("F12.10", "Cannabis abuse, uncomplicated"),
    ],
)
def test_relevance_keeps_condition_of_every_rule_list(
    code: str, display: str, knowledge: Knowledge
) -> None:
    """Verify that codes the clinical review found discarded reach the rules."""
    relevance = KnowledgeRelevance(knowledge, now=NOW)
    facts = map_resources([condition(code, display)], relevance, patient_id="p1")
    assert facts.diagnoses, code


def test_condition_lists_are_those_that_apply_to_condition_code(knowledge: Knowledge) -> None:
    """Verify that the filter reads every Condition list, and only those."""
    names = condition_lists(knowledge)
    assert "bipolar-spectrum" in names and "suicide-attempt-or-self-harm" in names
    assert "phq9-total" not in names and "route-nasal" not in names
    assert all(knowledge.code_list(n).applies_to == "Condition.code" for n in names)
