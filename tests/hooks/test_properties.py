"""Property-based tests: no FHIR value, however hostile, makes the mappers, the rules or a hook
raise, and no answer carries a null or an unbounded number.

Each example takes a realistic chart (every resource type and shape the service reads) and puts an
arbitrary JSON value at an arbitrary place in one resource (a top-level element, or any element
nested inside it), or adds wholly arbitrary resources; then it runs the mapping, the plausibility
checks, the assessment and all three hooks.
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_mappers.collect import map_resources
from hooks import ketamine_order_safety, trd_antidepressant_order, trd_ketamine_screen
from hooks.base import HookInput
from hooks.contexts import HookContext
from hooks.relevance import KnowledgeRelevance
from hooks.rules.assessment import assess
from hooks.rules.knowledge import default_knowledge
from hooks.rules.plausibility import plausible
from tests.factories import (
    NOW,
    allergy,
    blood_pressure,
    body_weight,
    collection,
    condition,
    draft_order,
    med_request,
    med_statement,
    medication,
    observation,
    phq9,
    phq9_item9,
)
from tests.scenarios import trd_patient

KNOWLEDGE = default_knowledge()


def _chart() -> list[dict[str, Any]]:
    panel = observation("44249-1", "PHQ-9 panel", None, weeks_ago=1)
    panel["component"] = [
        {
            "code": {"coding": [{"system": "http://loinc.org", "code": "44260-8"}]},
            "valueCodeableConcept": {
                "coding": [{"system": "http://loinc.org", "code": "LA6569-3"}]
            },
        },
        {
            "code": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]},
            "valueInteger": 17,
        },
    ]
    return [
        *trd_patient(),
        condition("F20.9", "Schizophrenia, unspecified", status="resolved"),
        condition("Z33.1", "Pregnant state", onset_weeks_ago=4),
        med_request(
            "x",
            weeks_ago=20,
            medication=medication("m1", "sertraline 50 MG Oral Tablet", rxcui="312940"),
        ),
        med_statement("Lexapro", start_weeks_ago=30, end_weeks_ago=20, dose_mg=20),
        phq9(22, weeks_ago=2),
        phq9_item9(1, weeks_ago=1),
        panel,
        blood_pressure(150, 95, days_ago=2),
        body_weight(80, days_ago=5),
        allergy("ketamine", rxcui="6130"),
    ]


CHART = _chart()

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(
        [
            "9999-12-31",
            "0001-01-01",
            "2026-02-30",
            "2026",
            "2026-11",
            "2026-11-27T25:00:00Z",
            "active",
            "entered-in-error",
            "LA6571-9",
            "http://loinc.org",
            "44261-6",
            "mg",
            "d",
        ]
    ),
)
json_value = st.recursive(
    json_leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.sampled_from(
                [
                    "value",
                    "code",
                    "system",
                    "coding",
                    "text",
                    "start",
                    "end",
                    "unit",
                    "reference",
                    "frequency",
                    "period",
                    "periodUnit",
                    "doseQuantity",
                    "repeat",
                    "resource",
                    "x",
                ]
            ),
            children,
            max_size=4,
        ),
    ),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place inside a resource where a value can be replaced."""
    found: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found.append((*prefix, key))
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.append((*prefix, index))
            found += _paths(item, (*prefix, index))
    return found


def _replace(resource: dict[str, Any], path: tuple[Any, ...], new: Any) -> None:
    target: Any = resource
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new


@st.composite
def hostile_chart(draw: st.DrawFn) -> list[dict[str, Any]]:
    chart = copy.deepcopy(CHART)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        resource = draw(st.sampled_from(chart))
        paths = [p for p in _paths(resource) if p != ("resourceType",)]
        path = draw(st.sampled_from(paths))
        _replace(resource, path, draw(json_value))
    extra = draw(
        st.lists(
            st.builds(
                lambda kind, body: {**body, "resourceType": kind},
                st.sampled_from(
                    [
                        "Condition",
                        "Observation",
                        "MedicationRequest",
                        "MedicationStatement",
                        "AllergyIntolerance",
                        "Patient",
                        "Medication",
                    ]
                ),
                st.dictionaries(st.text(max_size=12), json_value, max_size=5),
            ),
            max_size=2,
        )
    )
    return chart + extra


def _no_nulls(value: Any, path: str = "") -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            assert item is not None, f"{path}.{key} is null"
            _no_nulls(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _no_nulls(item, f"{path}[{index}]")
    elif isinstance(value, float):
        assert math.isfinite(value), f"{path} is {value}"


def _hook_input(resources: list[dict[str, Any]], orders: list[dict[str, Any]]) -> HookInput:
    context = {
        "patientId": "p1",
        "userId": "Practitioner/1",
        "draftOrders": collection(orders),
        "selections": [f"MedicationRequest/{o.get('id')}" for o in orders],
    }
    return HookInput(
        context=HookContext.model_validate(context),
        resources={"all": resources},
        gaps=(),
        now=NOW,
        knowledge=KNOWLEDGE,
    )


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(chart=hostile_chart())
def test_mappers_and_rules_hostile_value_anywhere_never_raise(chart: list[dict[str, Any]]) -> None:
    """Verify that an arbitrary JSON value in any element of any resource never makes mapping,
    plausibility or the assessment raise, and the assessment has no null or non-finite value."""
    facts = map_resources(chart, KnowledgeRelevance(KNOWLEDGE, now=NOW), patient_id="p1")
    facts = plausible(facts, now=NOW, knowledge=KNOWLEDGE)
    assessment = assess(facts, now=NOW, knowledge=KNOWLEDGE)
    body = assessment.as_json()
    _no_nulls(body)
    json.dumps(body, allow_nan=False)


@PROPERTY
@given(chart=hostile_chart(), order_value=json_value, order_path=st.integers(0, 200))
def test_hooks_hostile_chart_and_draft_order_never_raise(
    chart: list[dict[str, Any]], order_value: Any, order_path: int
) -> None:
    """Verify that all three hooks answer (cards with no null, finite numbers) for a hostile chart
    and a draft order with an arbitrary value at an arbitrary place."""
    order = draft_order("esketamine 28 MG Nasal Spray (SPRAVATO)", mid="d1", dose=56, unit="mg")
    paths = [p for p in _paths(order) if p != ("resourceType",)]
    _replace(order, paths[order_path % len(paths)], order_value)
    hook_input = _hook_input(chart, [order])
    for hook in (trd_ketamine_screen, trd_antidepressant_order, ketamine_order_safety):
        result = hook.evaluate(hook_input)
        for card in result.cards:
            _no_nulls(card.model_dump(mode="json", exclude_none=True))
        _no_nulls(result.assessment.as_json())
