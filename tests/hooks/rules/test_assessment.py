"""hooks/rules/assessment.py: the whole assessment of one patient and its recommendation.

The four recommendations and their precedence, deceased patients, a bipolar and a unipolar
diagnosis together, and unreadable sources (``Facts.unreadable``): a screen that could not be
done is ``incomplete``, never passed, and changes the answer.
"""

from __future__ import annotations

import pytest

from fhir_mappers.facts import (
    Concept,
    DiagnosisFact,
    MedicationFact,
    ObservationFact,
    PatientFact,
    Unreadable,
)
from hooks.rules.assessment import assess
from hooks.rules.candidates import TRD_INDICATION
from hooks.rules.findings import SCREEN_LABELS, Assessment, Recommendation
from hooks.rules.screens import CONTRAINDICATION_NEEDS, REASON_NEEDS
from tests.factories import NOW
from tests.hooks.rules.facts import (
    KNOWLEDGE,
    LIMITS,
    PHQ9_TOTAL,
    ago,
    allergy,
    bp,
    dx,
    loinc,
    mdd,
    order,
    person,
    phq9,
    record,
    text,
)

SEVERE = LIMITS.phq9_severe_score.value
THRESHOLD = int(LIMITS.trd_min_failed_trials.value)
assert THRESHOLD == 2, "the histories below hold two failed regimens"


def mg(name: str) -> float:
    return 2 * (KNOWLEDGE.ingredients[name].min_daily_dose_mg or 0.0)


def history(*, second_dose_known: bool = True, failures: int = 2) -> list[MedicationFact]:
    """Sertraline (12 weeks), escitalopram (10 weeks), then venlafaxine still taken: each switch
    after an adequate trial, so ``failures`` of the first two fail."""
    drugs = [
        order("sertraline", weeks_ago=60, mg=mg("sertraline"), supply_days=84),
        order(
            "escitalopram",
            weeks_ago=48,
            mg=mg("escitalopram") if second_dose_known else None,
            supply_days=70,
        ),
        order("venlafaxine", weeks_ago=38, mg=mg("venlafaxine"), supply_days=None, status="active"),
    ]
    return drugs[2 - failures :] if failures < 2 else drugs


NORMAL_BP = bp(118, 76, days_ago=3)
SOURCE_FAILED = "MedicationStatement: FHIR query answered HTTP 503"


def run(
    *items: DiagnosisFact | MedicationFact | ObservationFact,
    patient: PatientFact | None = None,
    unreadable: tuple[Unreadable, ...] = (),
) -> Assessment:
    facts = record(*items, patient=patient, unreadable=unreadable)
    return assess(facts, now=NOW, knowledge=KNOWLEDGE)


# --- the recommendation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "unreadable", "patient", "recommendation", "reasons"),
    [
        (
            [mdd(), *history(), NORMAL_BP],
            (),
            None,
            "refer-for-evaluation",
            {"treatment-resistant-depression"},
        ),
        (
            [mdd(), *history(), NORMAL_BP, dx("I67.1")],
            (),
            None,
            "not-recommended",
            {"treatment-resistant-depression"},
        ),
        (
            [mdd(), *history(), NORMAL_BP, dx("F20.9", status="resolved")],
            (),
            None,
            "not-recommended",
            {"treatment-resistant-depression"},
        ),
        (
            [mdd(), *history(), NORMAL_BP, dx("I25.10"), dx("K74.60")],
            (),
            None,
            "refer-for-evaluation",
            {"treatment-resistant-depression"},
        ),
        ([mdd(), *history()], (), None, "refer-for-evaluation", {"treatment-resistant-depression"}),
        (
            [mdd(), *history(), NORMAL_BP],
            (Unreadable("AllergyIntolerance", "allergies: FHIR query timed out"),),
            None,
            "insufficient-data",
            {"treatment-resistant-depression"},
        ),
        (
            [mdd(), *history(), NORMAL_BP, dx("I67.1")],
            (Unreadable("AllergyIntolerance", "allergies: FHIR query timed out"),),
            None,
            "not-recommended",
            {"treatment-resistant-depression"},
        ),
        (
            [mdd(), *history(), NORMAL_BP],
            (Unreadable("MedicationStatement", SOURCE_FAILED),),
            None,
            "insufficient-data",
            {"treatment-resistant-depression"},
        ),
        (
            [mdd(), *history(), NORMAL_BP],
            (),
            person(deceased=True, deceased_at=ago(2)),
            "not-a-candidate",
            {"treatment-resistant-depression"},
        ),
        (
            [mdd(), *history(second_dose_known=False), NORMAL_BP],
            (),
            None,
            "insufficient-data",
            set(),
        ),
        (
            [mdd(), *history(failures=1), NORMAL_BP],
            (Unreadable("MedicationStatement", SOURCE_FAILED),),
            None,
            "insufficient-data",
            set(),
        ),
        (
            [mdd(), *history(failures=0), NORMAL_BP],
            (Unreadable("MedicationStatement", SOURCE_FAILED),),
            None,
            "not-a-candidate",
            set(),
        ),
        ([dx("F41.1"), *history(), NORMAL_BP], (), None, "insufficient-data", set()),
        ([mdd(), dx("F31.72"), *history(), NORMAL_BP], (), None, "insufficient-data", set()),
        ([dx("F31.9"), *history(failures=1), NORMAL_BP], (), None, "insufficient-data", set()),
        (
            [dx("F31.31"), *history(failures=1), NORMAL_BP],
            (),
            None,
            "refer-for-evaluation",
            {"bipolar-depression"},
        ),
        (
            [mdd(), dx("R45.851", weeks_ago=1), NORMAL_BP],
            (),
            None,
            "not-a-candidate",
            {"suicidal-ideation"},
        ),
        (
            [mdd(), dx("R45.851", weeks_ago=1), dx("I67.1"), NORMAL_BP],
            (),
            None,
            "not-a-candidate",
            {"suicidal-ideation"},
        ),
        (
            [mdd(), *history(failures=1), phq9(SEVERE + 1, weeks_ago=1), NORMAL_BP],
            (),
            None,
            "refer-for-evaluation",
            {"severe-depression"},
        ),
        (
            [mdd(), *history(failures=1), phq9(SEVERE + 1, weeks_ago=1), NORMAL_BP, dx("F10.20")],
            (),
            None,
            "not-recommended",
            {"severe-depression"},
        ),
        ([mdd(), phq9(SEVERE + 1, weeks_ago=1), NORMAL_BP], (), None, "not-a-candidate", set()),
        ([mdd(), NORMAL_BP], (), None, "not-a-candidate", set()),
    ],
    ids=[
        "trd",
        "trd-label-contraindication",
        "trd-label-warning",
        "trd-with-cautions-only",
        "trd-without-recent-bp-is-a-gap-only",
        "trd-allergy-source-unreadable",
        "trd-contraindication-beats-unreadable",
        "trd-count-unverified",
        "trd-deceased",
        "failed-plus-unknown-dose-reach-threshold",
        "one-short-and-medications-unreadable",
        "none-failed-and-medications-unreadable",
        "trd-count-without-depression-diagnosis",
        "trd-count-with-bipolar-and-unipolar",
        "bipolar-unknown-phase-after-failure",
        "bipolar-depression-after-failure",
        "suicidal-ideation-alone",
        "suicidal-ideation-with-contraindication",
        "severe-after-failure",
        "severe-after-failure-with-warning",
        "severe-untreated",
        "nothing",
    ],
)
def test_assess_recommendation_precedence(
    items: list[DiagnosisFact | MedicationFact | ObservationFact],
    unreadable: tuple[Unreadable, ...],
    patient: PatientFact | None,
    recommendation: Recommendation,
    reasons: set[str],
) -> None:
    """Verify the recommendation: deceased -> not-a-candidate; a referral reason with a
    contraindication or label warning -> not-recommended (cautions never); with a screen that
    could not be done, or a count that could not be verified -> insufficient-data; else
    refer-for-evaluation; without a referral reason, insufficient-data only where the data
    cannot rule TRD out; suicidal ideation has its own card, not a referral."""
    result = run(*items, patient=patient, unreadable=unreadable)
    assert result.recommendation == recommendation
    assert set(result.candidate_reasons) == reasons


def test_assess_trd_assessment_fields() -> None:
    """Verify the fields of a TRD assessment: the failed count, the trials, the reasons with their
    evidence, the label indication, the episode and the rule-set version."""
    meds = history()
    result = run(mdd(), *meds, NORMAL_BP)
    assert result.failed_adequate_trials == 2
    assert [(t.ingredient, t.outcome) for t in result.trials] == [
        ("sertraline", "failed"),
        ("escitalopram", "failed"),
        ("venlafaxine", "ongoing"),
    ]
    assert result.candidate_reasons == ("treatment-resistant-depression",)
    assert set(result.reasons_evidence["treatment-resistant-depression"]) == {m.ref for m in meds}
    assert result.esketamine_indication == TRD_INDICATION
    assert result.episode is not None and "no remission" in result.episode.basis
    assert result.ruleset_version == KNOWLEDGE.ruleset_version
    assert result.data_gaps == ()
    assert {s.status for s in result.screens if s.kind == "contraindication"} == {"not-found"}


def test_assess_failures_before_a_documented_remission_are_not_counted() -> None:
    """Verify that regimens that ended before a documented remission (PHQ-9 below the remission
    score) belong to a previous episode and are not counted (clinical review M9, T5b)."""
    remission = LIMITS.phq9_remission_score.value - 2
    result = run(
        mdd(),
        *history(),
        phq9(remission, weeks_ago=20),
        phq9(SEVERE - 3, weeks_ago=1),
        NORMAL_BP,
    )
    assert result.failed_adequate_trials == 0
    assert [t.episode for t in result.trials if t.outcome == "failed"] == ["previous", "previous"]
    assert result.episode is not None and result.episode.start == ago(20)
    assert result.recommendation == "not-a-candidate"


def test_assess_deceased_is_never_a_candidate_and_says_so() -> None:
    """Verify that a deceased patient is not a candidate whatever the record shows, that the gaps
    say so, and that nothing is taken after the date of death."""
    died = ago(10)
    result = run(mdd(), *history(), NORMAL_BP, patient=person(deceased_at=died))
    assert result.recommendation == "not-a-candidate"
    assert "patient is recorded as deceased" in result.data_gaps
    assert all(t.start <= died for t in result.trials)


@pytest.mark.parametrize(
    ("diagnoses", "gap"),
    [
        ([dx("F41.1")], "no active depressive-disorder diagnosis"),
        ([mdd(), dx("F31.72")], "bipolar disorder is recorded alongside a unipolar"),
        ([dx("F31.9")], "bipolar disorder without a recorded current episode"),
    ],
    ids=["no-depression-diagnosis", "bipolar-and-unipolar", "bipolar-unknown-phase"],
)
def test_assess_diagnosis_conflicts_are_gaps_to_confirm(
    diagnoses: list[DiagnosisFact], gap: str
) -> None:
    """Verify that TRD-level failures without a unipolar diagnosis, or with a bipolar one beside
    it, and bipolar disorder of unknown phase each give insufficient-data and a gap asking to
    confirm the diagnosis."""
    result = run(*diagnoses, *history(), NORMAL_BP)
    assert result.recommendation == "insufficient-data"
    assert [g for g in result.data_gaps if gap in g]


# --- screens and unreadable data -----------------------------------------------------------------

CONTRAINDICATION_SOURCES = [
    (screen_id, kind)
    for screen_id, needs in CONTRAINDICATION_NEEDS.items()
    for kind in sorted(needs.resource_types)
]


@pytest.mark.parametrize(
    ("screen_id", "resource_type"),
    CONTRAINDICATION_SOURCES,
    ids=[f"{s}-{t}" for s, t in CONTRAINDICATION_SOURCES],
)
def test_assess_unreadable_source_makes_the_screen_incomplete_never_passed(
    screen_id: str, resource_type: str
) -> None:
    """Verify that a source a contraindication screen reads that could not be read leaves that
    screen incomplete (never not-found), names why in the screen and the gaps, and turns a
    referral into insufficient-data."""
    why = f"{resource_type}: FHIR query answered HTTP 503"
    result = run(mdd(), *history(), NORMAL_BP, unreadable=(Unreadable(resource_type, why),))
    found = result.screen(screen_id)
    assert found is not None
    assert (found.status, found.why) == ("incomplete", (why,))
    assert found in result.incomplete
    assert [g for g in result.data_gaps if why in g and SCREEN_LABELS[screen_id] in g]
    assert result.recommendation == "insufficient-data"


@pytest.mark.parametrize(
    ("reason", "resource_type"),
    [(r, t) for r, needs in REASON_NEEDS.items() for t in sorted(needs.resource_types)],
    ids=[f"{r}-{t}" for r, needs in REASON_NEEDS.items() for t in sorted(needs.resource_types)],
)
def test_assess_unreadable_source_leaves_a_candidate_reason_screen_undone(
    reason: str, resource_type: str
) -> None:
    """Verify that a candidate-reason screen whose source could not be read is incomplete, never
    a silent not-found, and names why."""
    why = f"{resource_type}: paging cut short"
    result = run(mdd(), NORMAL_BP, unreadable=(Unreadable(resource_type, why),))
    found = result.screen(reason)
    assert found is not None and found.status == "incomplete" and why in found.why


def test_assess_found_contraindication_stays_found_with_unreadable_data() -> None:
    """Verify that a contraindication found in what could be read stays found (and decides
    not-recommended) while the other screens of the unreadable type are incomplete."""
    psychosis = dx("F20.9", status="resolved")
    result = run(
        mdd(),
        *history(),
        NORMAL_BP,
        psychosis,
        unreadable=(Unreadable("Condition", "Condition: a later page failed"),),
    )
    screen = result.screen("psychosis-history")
    assert screen is not None and (screen.status, screen.evidence) == ("found", (psychosis.ref,))
    mania = result.screen("current-mania-or-hypomania")
    assert mania is not None and mania.status == "incomplete"
    assert result.recommendation == "not-recommended"


@pytest.mark.parametrize(
    ("concept", "incomplete"),
    [
        (loinc("8480-6", "Systolic blood pressure"), {"uncontrolled-hypertension"}),
        (PHQ9_TOTAL, set()),
        (loinc("82810-3", "Pregnancy status"), {"pregnancy"}),
        (None, {"uncontrolled-hypertension", "pregnancy"}),
    ],
    ids=["malformed-bp-reading", "malformed-phq9", "malformed-pregnancy-status", "no-code"],
)
def test_assess_malformed_record_affects_only_the_screens_its_code_feeds(
    concept: Concept | None, incomplete: set[str]
) -> None:
    """Verify that a malformed Observation with a readable code leaves only the contraindication
    screens whose code lists match it incomplete; one with no readable code affects every screen
    of its type."""
    bad = Unreadable("Observation", "Observation/x: value unreadable", concept)
    result = run(mdd(), *history(), NORMAL_BP, unreadable=(bad,))
    assert {s.id for s in result.incomplete} == incomplete


@pytest.mark.parametrize(
    ("patient", "items", "screen_id", "status"),
    [
        (person(), [], "uncontrolled-hypertension", "no-data"),
        (person(None), [NORMAL_BP], "minor", "no-data"),
        (person(), [NORMAL_BP], "minor", "not-found"),
        (person(), [NORMAL_BP, dx("Z33.1", weeks_ago=60)], "pregnancy", "no-data"),
        (person(), [NORMAL_BP, allergy(text("ketamine"))], "ketamine-hypersensitivity", "found"),
    ],
    ids=["no-recent-bp", "no-birth-date", "adult", "old-pregnancy-code", "allergy"],
)
def test_assess_screen_status_without_unreadable_data(
    patient: PatientFact, items: list[DiagnosisFact | ObservationFact], screen_id: str, status: str
) -> None:
    """Verify that with every source read a screen is found, not-found, or no-data when the record
    lacks what it needs (a gap that does not by itself change the answer)."""
    facts = record(mdd(), *history(), *items, patient=patient)
    result = assess(facts, now=NOW, knowledge=KNOWLEDGE)
    found = result.screen(screen_id)
    assert found is not None and found.status == status
    if status == "no-data":
        assert found.why and all(w in result.data_gaps for w in found.why)
        assert result.recommendation == "refer-for-evaluation"
