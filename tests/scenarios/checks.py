"""One reading of "the answer a scenario expects", shared by every test that fires scenarios:
through the app (tests/service/test_scenarios.py), from the shipped example patients
(tests/service/test_example_patients.py) and on a real FHIR server
(tests/integration/test_scenario_patients.py).

``examples/patients/index.json`` carries each scenario's ``Expect`` under the names below, so the
integration engineer reading the index and the tests read the same thing.
"""

from __future__ import annotations

from typing import Any

from tests.conformance import assert_conformant_response
from tests.scenarios.model import Expect

INDEX_NAMES = {
    "failed": "failed_adequate_trials",
    "outcomes": "trial_outcomes",
    "reasons": "candidate_reasons",
    "indicators": "card_indicators",
}
"""``Expect`` field -> its key in index.json (the other fields keep their names)."""


def expect_to_index(expect: Expect) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in vars(expect).items():
        if isinstance(value, set):
            value = sorted(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[INDEX_NAMES.get(name, name)] = value
    return out


def expect_from_index(expected: dict[str, Any]) -> Expect:
    back = {index: name for name, index in INDEX_NAMES.items()}
    values: dict[str, Any] = {back.get(k, k): v for k, v in expected.items()}
    for name in ("contraindications", "cautions", "reasons"):
        if values.get(name) is not None:
            values[name] = set(values[name])
    for name in ("detail_has", "detail_lacks"):
        values[name] = tuple(values.get(name) or ())
    return Expect(**values)


def assert_answer(expect: Expect, service: str, body: dict[str, Any]) -> None:
    """The explain answer ``body`` (cards, assessment, explanation) shows what ``expect`` says.

    Unset fields are not checked, except ``indicators``: an empty list means "no card" for
    not-a-candidate patients and for the order hooks (where no card is the point), and "not
    pinned" for other patient-view answers.
    """
    assessment = body["assessment"]
    cards = body["cards"]
    assert_conformant_response({"cards": cards})
    if expect.recommendation is not None:
        assert assessment["recommendation"] == expect.recommendation, assessment
    if expect.failed is not None:
        assert assessment["failed_adequate_trials"] == expect.failed, assessment.get("trials", [])
    outcomes = {t["ingredient"]: t["outcome"] for t in assessment.get("trials", [])}
    for ingredient, outcome in expect.outcomes.items():
        assert outcomes.get(ingredient) == outcome, (ingredient, assessment.get("trials", []))
    if expect.contraindications or expect.recommendation == "refer-for-evaluation":
        found = {c["id"] for c in assessment.get("contraindications", [])}
        assert found == expect.contraindications, assessment.get("contraindications", [])
    if expect.reasons is not None:
        assert set(assessment.get("candidate_reasons", [])) == expect.reasons
    if (
        expect.indicators
        or expect.recommendation == "not-a-candidate"
        or service != "trd-ketamine-screen"
    ):
        assert [c["indicator"] for c in cards] == expect.indicators, cards
    if expect.summary_has:
        assert any(expect.summary_has in c["summary"] for c in cards), [c["summary"] for c in cards]
    if expect.gap_has:
        gaps = assessment.get("data_gaps", [])
        assert any(expect.gap_has in g for g in gaps), gaps
    if expect.has_suggestion is not None:
        assert bool(cards and cards[-1].get("suggestions")) == expect.has_suggestion
    if expect.recommended_suggestion is not None:
        flags = [s.get("isRecommended", False) for c in cards for s in c.get("suggestions", [])]
        assert flags and all(f == expect.recommended_suggestion for f in flags), cards
    if expect.cautions is not None:
        assert {c["id"] for c in assessment.get("cautions", [])} == expect.cautions, assessment
    texts = "\n".join(f"{c['summary']}\n{c.get('detail', '')}" for c in cards)
    for text in expect.detail_has:
        assert text in texts, texts
    for text in expect.detail_lacks:
        assert text not in texts, texts
    if expect.esketamine_indication is not None:
        indication = assessment.get("esketamine_indication")
        if expect.esketamine_indication == "none":
            assert indication is None, indication
        else:
            assert indication and expect.esketamine_indication in indication, indication
    if expect.suppressed is not None:
        withheld = assessment.get("suppression", {}).get("reason")
        assert withheld == (None if expect.suppressed == "none" else expect.suppressed), assessment
    if expect.kinds is not None:
        assert body.get("explanation", {}).get("card_kinds", []) == expect.kinds, texts
