"""hooks/evidence.py: the evidence app's drawing data, from the same assessment as the cards."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from hooks import evidence, trd_ketamine_screen
from hooks.base import HookInput
from hooks.cards import response_json
from hooks.contexts import HookContext
from hooks.rules.knowledge import Knowledge
from tests.factories import (
    NOW,
    blood_pressure,
    body_weight,
    observation,
    patient,
    phq9,
    phq9_item9,
)
from tests.scenarios import trd_patient

ALL_IDS = list(evidence.CONTRAINDICATION_IDS)


def _hook_input(resources: list[dict[str, Any]], knowledge: Knowledge, **kw: Any) -> HookInput:
    return HookInput(
        context=HookContext(patientId="p1", userId="Practitioner/1"),
        resources={"all": resources},
        gaps=(),
        now=NOW,
        knowledge=knowledge,
        **kw,
    )


def _with_thresholds(knowledge: Knowledge, **values: float) -> Knowledge:
    """The knowledge with thresholds changed."""
    return knowledge.with_thresholds(**values)


def _empty_values(value: Any, path: str = "$") -> list[str]:
    if value is None or (isinstance(value, str | list | dict) and not value):
        return [path]
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _empty_values(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _empty_values(item, f"{path}[{index}]")
    return found


PSYCHOSIS = {
    "id": "psychosis-history",
    "evidence": ["Condition/c9"],
    "source": "PI",
    "detail": "Schizophrenia (Condition/c9), resolved",
}

SCREEN_CASES: dict[str, tuple[list[dict[str, Any]], dict[str, str], dict[str, list[str]]]] = {
    "all-eleven-reported": (
        [
            {"id": ci, "kind": "diagnosis", "status": "not-found", "evidence": [], "why": ["none"]}
            for ci in ALL_IDS
        ],
        {},
        {},
    ),
    "found-and-no-data": (
        [
            {"id": ci, "kind": "diagnosis", "status": "not-found", "evidence": [], "why": ["none"]}
            for ci in ALL_IDS
            if ci not in ("minor", "uncontrolled-hypertension")
        ]
        + [
            {
                "id": "minor",
                "kind": "age",
                "status": "found",
                "evidence": ["Patient/p1"],
                "why": ["age 16"],
            },
            {
                "id": "uncontrolled-hypertension",
                "kind": "vital-signs",
                "status": "no-data",
                "evidence": [],
                "why": ["no blood pressure in 90 days"],
            },
        ],
        {"minor": "found", "uncontrolled-hypertension": "no-data"},
        {"uncontrolled-hypertension": ["no blood pressure in 90 days"]},
    ),
    "missing-screen-is-no-data": (
        [
            {"id": ci, "kind": "diagnosis", "status": "not-found", "evidence": [], "why": ["none"]}
            for ci in ALL_IDS
            if ci != "breastfeeding"
        ],
        {"breastfeeding": "no-data"},
        {"breastfeeding": ["the assessment did not report this check"]},
    ),
}


@pytest.mark.parametrize(
    ("screens", "changed", "gaps"), list(SCREEN_CASES.values()), ids=list(SCREEN_CASES)
)
def test_checklist_with_screens_takes_their_statuses(
    screens: list[dict[str, Any]], changed: dict[str, str], gaps: dict[str, list[str]]
) -> None:
    """Verify that the assessment's screens, when present, decide every checklist entry."""
    items = evidence.prune(
        evidence.checklist({"screens": screens, "contraindications": [], "data_gaps": ["x"]})
    )
    assert [i["id"] for i in items] == ALL_IDS
    assert {i["id"]: i["status"] for i in items} == {
        **dict.fromkeys(ALL_IDS, "not-found"),
        **changed,
    }
    assert {i["id"]: i["gaps"] for i in items if "gaps" in i} == gaps
    minor = next(i for i in items if i["id"] == "minor")
    if changed.get("minor") == "found":
        assert minor["evidence"] == ["Patient/p1"]


EPISODE_CASES = {
    "assessment-episode": (
        {"episode": {"start": "2025-06-01", "basis": "first depression code"}},
        104,
        {"start": "2025-06-01", "basis": "first depression code"},
    ),
    "knowledge-look-back": ({}, 104, {"start": (NOW - timedelta(weeks=104)).date().isoformat()}),
    "settings-look-back": ({}, 52, {"start": (NOW - timedelta(weeks=52)).date().isoformat()}),
}


@pytest.mark.parametrize(
    ("assessment", "weeks", "expected"), list(EPISODE_CASES.values()), ids=list(EPISODE_CASES)
)
def test_episode_window_uses_assessment_else_look_back(
    assessment: dict[str, Any], weeks: float, expected: dict[str, str]
) -> None:
    """Verify that the episode comes from the assessment when given, else now minus the
    look-back weeks, and always ends today."""
    window = evidence.episode_window(assessment, now=NOW, lookback_weeks=weeks)
    assert window["end"] == NOW.date().isoformat()
    for key, value in expected.items():
        assert window[key] == value
    assert window["basis"]


BAND_CASES = {
    "as-shipped-kroenke-cut-offs": (
        {},
        [
            ("minimal", 0, 5),
            ("mild", 5, 10),
            ("moderate", 10, 15),
            ("moderately severe", 15, 20),
            ("severe", 20, 27),
        ],
    ),
    "moved-severe-cut-off": (
        {"phq9_severe_score": 21},
        [
            ("minimal", 0, 5),
            ("mild", 5, 10),
            ("moderate", 10, 15),
            ("moderately severe", 15, 21),
            ("severe", 21, 27),
        ],
    ),
}


@pytest.mark.parametrize(("changes", "expected"), list(BAND_CASES.values()), ids=list(BAND_CASES))
def test_phq9_bands_read_the_knowledge_thresholds(
    changes: dict[str, float],
    expected: list[tuple[str, int, int]],
    knowledge: Knowledge,
) -> None:
    """Verify that the severity bands are built from the PHQ-9 thresholds the knowledge has."""
    bands = evidence.phq9_bands(_with_thresholds(knowledge, **changes))
    assert [(b["label"], b["from"], b["to"]) for b in bands] == expected


THRESHOLD_CASES = {
    "as-shipped": ({}, {"bp_systolic": 140, "bp_diastolic": 90, "phq9_severe": 20}),
    "changed-in-knowledge": (
        {"bp_systolic_limit": 150, "bp_diastolic_limit": 95, "phq9_severe_score": 19},
        {"bp_systolic": 150, "bp_diastolic": 95, "phq9_severe": 19},
    ),
}


@pytest.mark.parametrize(
    ("changes", "expected"), list(THRESHOLD_CASES.values()), ids=list(THRESHOLD_CASES)
)
def test_thresholds_follow_the_knowledge(
    changes: dict[str, float], expected: dict[str, int], knowledge: Knowledge
) -> None:
    """Verify that the drawn limits are the knowledge's values, not literals."""
    drawn = evidence.thresholds(_with_thresholds(knowledge, **changes))
    for key, value in expected.items():
        assert drawn[key] == value
    assert drawn["phq9_bands"][-1]["from"] == expected["phq9_severe"]


def _trial(start: str, end: str | None) -> dict[str, Any]:
    return {"start": start, "end": end} if end else {"start": start}


GAP_CASES = {
    "no-trials": ([], []),
    "one-trial": ([_trial("2026-01-01", "2026-03-01")], []),
    "switch-next-day": ([_trial("2026-01-01", "2026-03-01"), _trial("2026-03-02", None)], []),
    "overlap": ([_trial("2026-01-01", "2026-04-01"), _trial("2026-03-01", "2026-05-01")], []),
    "four-week-gap": (
        [_trial("2026-01-01", "2026-03-01"), _trial("2026-03-29", None)],
        [("2026-03-01", "2026-03-29", 4.0)],
    ),
    "gap-after-a-longer-course": (
        [
            _trial("2025-01-01", "2025-12-01"),
            _trial("2025-02-01", "2025-03-01"),
            _trial("2025-12-15", "2026-02-01"),
        ],
        [("2025-12-01", "2025-12-15", 2.0)],
    ),
}


@pytest.mark.parametrize(("trials", "expected"), list(GAP_CASES.values()), ids=list(GAP_CASES))
def test_treatment_gaps_are_the_periods_without_a_course(
    trials: list[dict[str, Any]], expected: list[tuple[str, str, float]]
) -> None:
    """Verify that the gaps between courses are the uncovered periods (an ongoing course runs
    to today, overlapping courses leave none)."""
    gaps = evidence.treatment_gaps({"trials": trials}, today=date(2026, 11, 27))
    assert [(g["start"], g["end"], g["weeks"]) for g in gaps] == expected


PRUNE_CASES = {
    "flat": ({"a": None, "b": "", "c": [], "d": {}, "e": 0, "f": False}, {"e": 0, "f": False}),
    "nested": ({"a": {"b": {"c": None}}, "d": [None, "", {"e": []}, 1]}, {"d": [1]}),
    "kept": ({"a": "x", "b": [0], "c": {"d": 0.0}}, {"a": "x", "b": [0], "c": {"d": 0.0}}),
}


@pytest.mark.parametrize(("value", "expected"), list(PRUNE_CASES.values()), ids=list(PRUNE_CASES))
def test_prune_drops_null_and_empty_values_only(value: Any, expected: Any) -> None:
    """Verify that pruning removes None and empty strings, lists and dicts, keeping 0/False."""
    assert evidence.prune(value) == expected


def _lb(pounds: float, days_ago: float) -> dict[str, Any]:
    return observation("29463-7", "Body weight", pounds, days_ago=days_ago, unit="[lb_av]")


SERIES_CASES: dict[str, tuple[list[dict[str, Any]], str, list[Any]]] = {
    "phq9-oldest-first": (
        [phq9(12, weeks_ago=2), phq9(22, weeks_ago=30)],
        "phq9",
        [22, 12],
    ),
    "phq9-entered-in-error-skipped": (
        [phq9(12, weeks_ago=2), {**phq9(25, weeks_ago=3), "status": "entered-in-error"}],
        "phq9",
        [12],
    ),
    "phq9-before-window-skipped": ([phq9(12, weeks_ago=2), phq9(20, weeks_ago=200)], "phq9", [12]),
    "item9-positive-flag": (
        [phq9_item9(0, weeks_ago=8), phq9_item9(2, weeks_ago=1)],
        "phq9_item9",
        [(0, False), (2, True)],
    ),
    "bp-older-than-the-rule-window": (
        [blood_pressure(150, 95, days_ago=300), blood_pressure(120, 80, days_ago=5)],
        "bp",
        [(150, 95), (120, 80)],
    ),
    "weight-in-pounds": ([_lb(154.3, 20), body_weight(71, days_ago=2)], "weight", [70.0, 71]),
}


@pytest.mark.parametrize(
    ("resources", "key", "expected"), list(SERIES_CASES.values()), ids=list(SERIES_CASES)
)
def test_series_read_observations_over_the_drawing_window(
    resources: list[dict[str, Any]], key: str, expected: list[Any], knowledge: Knowledge
) -> None:
    """Verify that each series holds the window's readings, oldest first, with their refs,
    including readings older than the rules' own look-back."""
    hook_input = _hook_input([patient(), *resources], knowledge)
    facts = evidence._display_facts(hook_input)
    since = (NOW - timedelta(weeks=104)).date()
    points = evidence.series(facts, knowledge, since=since)[key]
    if key == "phq9":
        assert [p["value"] for p in points] == expected
    elif key == "phq9_item9":
        assert [(p["value"], p["positive"]) for p in points] == expected
    elif key == "bp":
        assert [(p["systolic"], p["diastolic"]) for p in points] == expected
    else:
        assert [p["kg"] for p in points] == expected
    assert [p["date"] for p in points] == sorted(p["date"] for p in points)
    assert all(p["ref"].startswith("Observation/") for p in points)


PATIENT_CASES = {
    "full-birth-date": (
        {"birth": "1980-05-17", "gender": "female"},
        {"age": 46, "gender": "female"},
    ),
    "year-only-read-at-its-latest-day": (
        {"birth": "2009", "gender": "male"},
        {"age": 16, "gender": "male"},
    ),
    "no-gender": ({"birth": "1990-01-01", "gender": None}, {"age": 36}),
}


@pytest.mark.parametrize(("kw", "expected"), list(PATIENT_CASES.values()), ids=list(PATIENT_CASES))
def test_patient_summary_age_as_the_minor_check_reads_it(
    kw: dict[str, Any], expected: dict[str, Any], knowledge: Knowledge
) -> None:
    """Verify that the patient line gives id, gender and the youngest possible age."""
    person = patient(**kw)
    if kw.get("gender") is None:
        person.pop("gender")
    facts = evidence._display_facts(_hook_input([person], knowledge))
    summary = evidence.prune(evidence.patient_summary(facts, "p1", NOW))
    assert summary == {"id": "p1", **expected}


BUILD_CASES = {
    "trd-referral": (trd_patient(), "refer-for-evaluation", 3),
    "trd-with-high-bp": (
        trd_patient(blood_pressure(168, 102, days_ago=2), blood_pressure(170, 104, days_ago=1)),
        "not-recommended",
        3,
    ),
    "no-trials": ([patient()], "not-a-candidate", 0),
}


@pytest.mark.parametrize(
    ("resources", "recommendation", "trials"), list(BUILD_CASES.values()), ids=list(BUILD_CASES)
)
def test_build_same_assessment_and_cards_as_the_hook_and_no_empty_values(
    resources: list[dict[str, Any]], recommendation: str, trials: int, knowledge: Knowledge
) -> None:
    """Verify that the summary carries the hook's own assessment and cards, the eleven checks,
    knowledge thresholds and an episode, with no null or empty value anywhere."""
    hook_input = _hook_input(resources, knowledge)
    result = trd_ketamine_screen.evaluate(hook_input)
    summary = evidence.build(hook_input, result)
    assert _empty_values(summary) == []
    assert summary["assessment"] == evidence.prune(result.assessment.as_json())
    assert summary["assessment"]["recommendation"] == recommendation
    assert len(summary["assessment"].get("trials", [])) == trials
    expected_cards = response_json(result.cards)["cards"]
    assert [c["summary"] for c in summary.get("cards", [])] == [
        c["summary"] for c in expected_cards
    ]
    assert [c["id"] for c in summary["checklist"]] == ALL_IDS
    found = {c["id"] for c in summary["assessment"].get("contraindications", [])}
    assert {c["id"] for c in summary["checklist"] if c["status"] == "found"} == found
    assert summary["thresholds"]["bp_systolic"] == knowledge.thresholds.bp_systolic_limit.value
    assert summary["ruleset_version"] == knowledge.ruleset_version
    assert summary["patient"] == {"id": "p1", "age": 46, "gender": "female"}
    assert summary["episode"]["end"] == NOW.date().isoformat()
    starts = [t["start"] for t in summary["assessment"].get("trials", [])]
    baseline = timedelta(days=knowledge.thresholds.phq9_baseline_window_days.value)
    first = min([summary["episode"]["start"], *starts])
    assert summary["window"]["start"] == (date.fromisoformat(first) - baseline).isoformat()
