"""hooks/rules/candidates.py: the pathways to ketamine/esketamine the record supports.

TRD only in unipolar depression (bipolar disorder at any status blocks it); suicidality with
recency windows and negation, and the MDSI label indication only from documented ideation or
behaviour; severity and bipolar depression only after a failed regimen (clinical review M1, M2,
S1). Windows and counts are read from the knowledge.
"""

from __future__ import annotations

import pytest

from fhir_mappers.facts import DiagnosisFact, ObservationFact
from hooks.rules.candidates import MDSI_INDICATION, TRD_INDICATION, Candidacy, candidacy
from hooks.rules.findings import Trial
from hooks.rules.questionnaires import phq9_scores
from tests.factories import NOW
from tests.hooks.rules.facts import (
    KNOWLEDGE,
    LIMITS,
    PHQ9_ITEM9,
    ago,
    dx,
    item9,
    loinc,
    mdd,
    obs,
    phq9,
    record,
    ref,
    text,
)

THRESHOLD = int(LIMITS.trd_min_failed_trials.value)
SI_DAYS = LIMITS.si_recent_days.value
SELF_HARM_DAYS = LIMITS.self_harm_recent_days.value
ITEM9_DAYS = LIMITS.phq9_item9_recent_days.value
SEVERE = LIMITS.phq9_severe_score.value
PHQ9_DAYS = LIMITS.phq9_recent_days.value

DRUGS = ("sertraline", "escitalopram", "venlafaxine", "bupropion", "duloxetine")


def failed(names: str, doses: dict[str, float] | None = None) -> Trial:
    """A failed trial of the current episode ("a + b" for a regimen of several drugs)."""
    ingredients = tuple(names.split(" + "))
    doses = doses or {
        n: 2 * (KNOWLEDGE.ingredients[n].min_daily_dose_mg or 1.0) for n in ingredients
    }
    return Trial(
        ingredient=names,
        outcome="failed",
        start=ago(60),
        end=ago(50),
        weeks=10.0,
        max_daily_dose_mg=doses[ingredients[0]],
        evidence=(ref("MedicationRequest", "mr"),),
        why="adequate trial, then switched",
        ingredients=ingredients,
        kind="monotherapy" if len(ingredients) == 1 else "combination",
        adequate_weeks=10.0,
        doses_mg=tuple(sorted(doses.items())),
    )


def trd_failures() -> list[Trial]:
    """As many failed monotherapies of different antidepressants as TRD needs."""
    return [failed(name) for name in DRUGS[:THRESHOLD]]


def judge(
    *items: DiagnosisFact | ObservationFact, failures: list[Trial] | None = None
) -> Candidacy:
    facts = record(*items)
    return candidacy(
        facts,
        now=NOW,
        knowledge=KNOWLEDGE,
        failed=failures or [],
        phq=phq9_scores(facts.observations, KNOWLEDGE),
    )


# --- treatment-resistant depression --------------------------------------------------------------


@pytest.mark.parametrize(
    ("diagnoses", "failures", "trd"),
    [
        ([mdd()], trd_failures(), True),
        ([mdd()], trd_failures()[:-1], False),
        ([], trd_failures(), False),
        ([mdd(status="resolved")], trd_failures(), False),
        ([mdd(verification="refuted")], trd_failures(), False),
        ([dx("F32.A")], trd_failures(), True),
        ([dx("F33.42")], trd_failures(), False),
    ],
    ids=[
        "unipolar-threshold-failures",
        "one-short",
        "no-depression-diagnosis",
        "resolved-depression",
        "refuted-depression",
        "depression-unspecified",
        "full-remission-only",
    ],
)
def test_candidacy_trd_needs_active_unipolar_depression_and_the_failed_count(
    diagnoses: list[DiagnosisFact], failures: list[Trial], trd: bool
) -> None:
    """Verify that TRD is a reason only with an active unipolar depressive disorder and
    trd_min_failed_trials failed regimens, with every failed regimen's evidence."""
    found = judge(*diagnoses, failures=failures)
    assert ("treatment-resistant-depression" in found.reasons) is trd
    if trd:
        assert found.reasons["treatment-resistant-depression"] == tuple(
            r for t in failures for r in t.evidence
        )


@pytest.mark.parametrize(
    "bipolar",
    [
        dx("F31.72"),
        dx("F31.72", status="inactive"),
        dx("F31.13", status="resolved"),
        dx("F30.10", status="remission"),
        dx("F31.81"),
        dx("F31.31", status="resolved"),
    ],
    ids=[
        "bipolar-in-remission",
        "inactive",
        "resolved-mania",
        "manic-episode-in-remission-status",
        "bipolar-ii",
        "resolved-bipolar-depression",
    ],
)
def test_candidacy_bipolar_at_any_status_blocks_trd(bipolar: DiagnosisFact) -> None:
    """Verify that a bipolar-spectrum diagnosis at any status that is not refuted takes the
    patient out of the unipolar TRD pathway and its label indication, and says why (clinical
    review M2)."""
    found = judge(mdd(), bipolar, failures=trd_failures())
    assert "treatment-resistant-depression" not in found.reasons
    assert found.esketamine_indication is None
    assert found.bipolar == [bipolar]
    assert any(
        "bipolar disorder is recorded" in line and bipolar.ref in line for line in found.context
    )


@pytest.mark.parametrize(
    "verification", ["refuted", "entered-in-error"], ids=["refuted", "entered-in-error"]
)
def test_candidacy_refuted_bipolar_does_not_block_trd(verification: str) -> None:
    """Verify that a refuted or erroneous bipolar diagnosis does not block TRD."""
    found = judge(mdd(), dx("F31.72", verification=verification), failures=trd_failures())
    assert "treatment-resistant-depression" in found.reasons
    assert found.bipolar == []


@pytest.mark.parametrize(
    ("failures", "indication"),
    [
        (trd_failures(), TRD_INDICATION),
        ([failed("sertraline"), failed("sertraline + aripiprazole")], None),
        ([failed("sertraline + aripiprazole"), failed("sertraline + lithium")], None),
        ([failed("sertraline"), failed("escitalopram + aripiprazole")], TRD_INDICATION),
    ],
    ids=[
        "two-different-antidepressants",
        "same-antidepressant-augmented",
        "two-augmentations-of-one-antidepressant",
        "second-antidepressant-in-augmentation",
    ],
)
def test_candidacy_esketamine_trd_indication_needs_two_different_antidepressants(
    failures: list[Trial], indication: str | None
) -> None:
    """Verify that the label's TRD indication needs two different antidepressants among the
    failed regimens (augmenters are not antidepressants), while the TRD reason counts regimens."""
    assert len(failures) >= THRESHOLD
    found = judge(mdd(), failures=failures)
    assert "treatment-resistant-depression" in found.reasons
    assert found.esketamine_indication == indication


def test_candidacy_esketamine_trd_indication_ignores_an_inadequate_partner() -> None:
    """Verify that escitalopram given below its adequate dose beside adequate sertraline (a failed
    combination) is not a second antidepressant "of adequate dose and duration" for the label."""
    minimum = KNOWLEDGE.ingredients["escitalopram"].min_daily_dose_mg or 0.0
    sertraline = 2 * (KNOWLEDGE.ingredients["sertraline"].min_daily_dose_mg or 0.0)
    failures = [
        failed("sertraline"),
        failed(
            "escitalopram + sertraline",
            doses={"escitalopram": minimum / 2, "sertraline": sertraline},
        ),
    ]
    found = judge(mdd(), failures=failures)
    assert "treatment-resistant-depression" in found.reasons
    assert found.esketamine_indication is None


# --- suicidal ideation and behaviour -------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "suicidality"),
    [
        ([dx("R45.851", weeks_ago=0, recorded_weeks_ago=0)], True),
        ([dx("R45.851", weeks_ago=(SI_DAYS - 1) / 7)], True),
        ([dx("R45.851", weeks_ago=(SI_DAYS + 1) / 7)], False),
        ([dx("T14.91XA", weeks_ago=(SELF_HARM_DAYS - 1) / 7)], True),
        ([dx("T14.91XA", weeks_ago=(SELF_HARM_DAYS + 1) / 7)], False),
        ([dx("T42.4X2A", weeks_ago=1)], True),
        ([dx("R45.851", weeks_ago=None)], True),
        ([dx("R45.851", weeks_ago=None, status="resolved")], False),
        ([dx("R45.851", weeks_ago=1, verification="refuted")], False),
        ([dx("R45.851", weeks_ago=1, verification="entered-in-error")], False),
        ([item9(1, days_ago=ITEM9_DAYS - 1)], True),
        ([item9(2, days_ago=ITEM9_DAYS + 1)], False),
        ([item9(2, weeks_ago=3), item9(0, weeks_ago=1)], False),
        ([item9(0, weeks_ago=1)], False),
        ([obs(PHQ9_ITEM9, None, weeks_ago=1, value_concept=loinc("LA6569-3"))], True),
        ([obs(PHQ9_ITEM9, None, weeks_ago=1, value_concept=loinc("LA6568-5"))], False),
        ([], False),
    ],
    ids=[
        "ideation-today",
        "ideation-inside-si-window",
        "ideation-beyond-si-window",
        "attempt-inside-self-harm-window",
        "attempt-beyond-self-harm-window",
        "intentional-self-poisoning",
        "undated-active-ideation",
        "undated-resolved-ideation",
        "refuted-ideation",
        "entered-in-error-ideation",
        "item9-positive-inside-window",
        "item9-positive-beyond-window",
        "item9-latest-answer-zero",
        "item9-zero",
        "item9-coded-several-days",
        "item9-coded-not-at-all",
        "nothing",
    ],
)
def test_candidacy_suicidality_recency_windows(
    items: list[DiagnosisFact | ObservationFact], suicidality: bool
) -> None:
    """Verify that ideation counts within si_recent_days, an attempt or self-harm within
    self_harm_recent_days, an undated code while active, the latest PHQ-9 item 9 above 0 within
    phq9_item9_recent_days, and refuted or erroneous codes never."""
    found = judge(mdd(), *items)
    assert ("suicidal-ideation" in found.reasons) is suicidality
    if suicidality:
        assert set(found.reasons["suicidal-ideation"]) <= {i.ref for i in items}


@pytest.mark.parametrize(
    ("words", "suicidality"),
    [
        ("Depressed mood, without suicidal ideation", False),
        ("denies SI", False),
        ("no current suicidal ideation or plan", False),
        ("negative for suicidal thoughts", False),
        ("denies self-harm", False),
        ("SI joint dysfunction", False),
        ("passive SI", True),
        ("suicidal ideation with plan", True),
        ("self-harm by cutting last week", True),
    ],
    ids=[
        "without",
        "denies-si",
        "no-current",
        "negative-for",
        "denies-self-harm",
        "sacroiliac-joint",
        "passive-si",
        "ideation-with-plan",
        "self-harm",
    ],
)
def test_candidacy_suicidality_text_negation_never_counts(words: str, suicidality: bool) -> None:
    """Verify that a free-text problem naming suicidal ideation or self-harm counts, and a negated
    one ("without", "denies", "no current") never does (clinical review S1, R3c)."""
    found = judge(mdd(), dx(text(words), weeks_ago=1))
    assert ("suicidal-ideation" in found.reasons) is suicidality


@pytest.mark.parametrize(
    ("items", "failures", "indication"),
    [
        ([mdd(), dx("R45.851", weeks_ago=1)], [], MDSI_INDICATION),
        ([mdd(), dx("T14.91XA", weeks_ago=1)], [], MDSI_INDICATION),
        ([mdd(), item9(3, weeks_ago=1)], [], None),
        ([dx("F31.31"), dx("R45.851", weeks_ago=1)], [], None),
        ([mdd(), dx("F31.72"), dx("R45.851", weeks_ago=1)], [], None),
        ([dx("F41.1"), dx("R45.851", weeks_ago=1)], [], None),
        ([mdd(), dx("R45.851", weeks_ago=1)], trd_failures(), TRD_INDICATION),
    ],
    ids=[
        "unipolar-ideation-code",
        "unipolar-self-harm-code",
        "item9-alone",
        "bipolar-depression",
        "unipolar-and-bipolar",
        "no-depression-diagnosis",
        "trd-comes-first",
    ],
)
def test_candidacy_mdsi_indication_only_from_documented_ideation_in_unipolar_mdd(
    items: list[DiagnosisFact | ObservationFact], failures: list[Trial], indication: str | None
) -> None:
    """Verify that the MDSI label indication needs documented acute ideation or behaviour (a
    diagnosis, never PHQ-9 item 9 alone) in unipolar depression, while suicidality stays a
    candidate reason (its own card) in every case (clinical review M1)."""
    found = judge(*items, failures=failures)
    assert "suicidal-ideation" in found.reasons
    assert found.esketamine_indication == indication


# --- severe depression ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "reason", "context"),
    [
        ([phq9(SEVERE, weeks_ago=1)], True, False),
        ([phq9(SEVERE - 1, weeks_ago=1)], False, False),
        ([phq9(SEVERE + 3, days_ago=PHQ9_DAYS + 1)], False, False),
        ([phq9(SEVERE + 3, weeks_ago=3), phq9(SEVERE - 8, weeks_ago=1)], False, False),
        ([dx("F33.2", weeks_ago=2)], True, False),
        ([dx("F33.2", weeks_ago=2), phq9(SEVERE - 8, weeks_ago=1)], False, False),
        ([dx("F33.2", weeks_ago=(PHQ9_DAYS + 7) / 7)], False, False),
        ([dx("F33.2", weeks_ago=2, status="resolved")], False, False),
    ],
    ids=[
        "phq9-at-severe-score",
        "phq9-below-severe-score",
        "phq9-beyond-recent-window",
        "latest-phq9-below",
        "recent-severe-code",
        "severe-code-then-lower-phq9",
        "stale-severe-code",
        "resolved-severe-code",
    ],
)
def test_candidacy_severe_depression_after_a_failed_regimen(
    items: list[DiagnosisFact | ObservationFact], reason: bool, context: bool
) -> None:
    """Verify that recent severity (the latest PHQ-9 within phq9_recent_days at or above
    phq9_severe_score, or a recent severe code with no later lower PHQ-9) is a reason after one
    failed regimen, and stale or superseded severity is not (clinical review M1, R1c)."""
    found = judge(mdd(), *items, failures=[failed("sertraline")])
    assert ("severe-depression" in found.reasons) is reason
    assert any("severe depression" in line for line in found.context) is context


def test_candidacy_severe_depression_untreated_is_context_only() -> None:
    """Verify that severity in a patient with no failed regimen is shown as context, never a
    reason (clinical review M1, R1, R1b)."""
    severe = phq9(SEVERE + 1, weeks_ago=1)
    found = judge(mdd(), severe)
    assert "severe-depression" not in found.reasons
    assert [line for line in found.context if "severe depression" in line and severe.ref in line]


def test_candidacy_severe_depression_in_bipolar_disorder_is_neither() -> None:
    """Verify that severity is not a unipolar reason or context line in bipolar disorder."""
    found = judge(dx("F31.31"), phq9(SEVERE + 2, weeks_ago=1), failures=[failed("sertraline")])
    assert "severe-depression" not in found.reasons
    assert not any("severe depression (" in line for line in found.context)


# --- bipolar depression --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("diagnosis", "failures", "reason", "context"),
    [
        (dx("F31.31"), [failed("sertraline")], True, False),
        (dx("F31.31"), [], False, True),
        (dx("F31.31", status="resolved"), [failed("sertraline")], False, False),
        (dx("F31.9"), [failed("sertraline")], False, False),
    ],
    ids=[
        "depressed-phase-after-failure",
        "depressed-phase-untreated",
        "resolved-depressed-phase",
        "unknown-phase",
    ],
)
def test_candidacy_bipolar_depression_after_a_failed_regimen(
    diagnosis: DiagnosisFact, failures: list[Trial], reason: bool, context: bool
) -> None:
    """Verify that a current bipolar depressive episode is a reason after a failed regimen and
    context (third-line, off-label) before one."""
    found = judge(diagnosis, failures=failures)
    assert ("bipolar-depression" in found.reasons) is reason
    assert any("third-line" in line for line in found.context) is context


@pytest.mark.parametrize(
    ("diagnoses", "unphased"),
    [
        ([dx("F31.9")], True),
        ([dx("F31.81")], True),
        ([dx("F31.9"), dx("F31.31")], False),
        ([dx("F31.9", status="resolved")], False),
        ([dx("F31.72")], False),
    ],
    ids=["unspecified", "bipolar-ii", "with-depressed-phase", "resolved", "in-remission"],
)
def test_candidacy_bipolar_without_a_current_phase_is_listed(
    diagnoses: list[DiagnosisFact], unphased: bool
) -> None:
    """Verify that an active bipolar diagnosis without a recorded current episode is listed for
    the assessment (mania must be excluded), unless a depressed phase is recorded."""
    found = judge(*diagnoses)
    assert bool(found.bipolar_unphased) is unphased


def test_candidacy_no_data_no_reason() -> None:
    """Verify that an empty record gives no reason, no context and no indication."""
    found = judge()
    assert (found.reasons, found.context, found.esketamine_indication) == ({}, [], None)
