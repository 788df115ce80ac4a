"""hooks/rules/trials.py: exposures -> courses -> regimens -> judged trials; the failed count.

Each table builds exposures (``tests/hooks/rules/facts.py``: ``exposure``, ``fills``) at the
frozen clock; windows, doses and thresholds are read from the knowledge, so that a knowledge change
moves the tables with it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_mappers.facts import Concept, MedicationFact
from hooks.rules.findings import Outcome, Trial
from hooks.rules.medications import Exposure, exposures
from hooks.rules.questionnaires import Score
from hooks.rules.trials import Treatment, build_trials, failed_regimens
from tests.factories import NOW
from tests.hooks.rules.facts import (
    KNOWLEDGE,
    LIMITS,
    ago,
    exposure,
    fills,
    medication_facts,
    reason,
    reason_code,
    score,
)

MIN_WEEKS = LIMITS.min_adequate_weeks.value
MERGE_WEEKS = LIMITS.merge_gap_weeks.value
SWITCH_WEEKS = LIMITS.switch_window_weeks.value
GRACE_DAYS = LIMITS.coverage_grace_days.value
OVERLAP_DAYS = LIMITS.combination_overlap_days.value
LOOKBACK_WEEKS = LIMITS.episode_lookback_weeks.value
BASELINE_DAYS = LIMITS.phq9_baseline_window_days.value
RESPONSE = LIMITS.phq9_response_reduction.value


def minimum(name: str) -> float:
    dose = KNOWLEDGE.ingredients[name].min_daily_dose_mg
    assert dose is not None, f"{name} has no adequate dose in the knowledge"
    return dose


def adequate(name: str) -> float:
    """Twice the ATRQ minimum: adequate whatever the minimum is."""
    return 2 * minimum(name)


def below(name: str) -> float:
    return minimum(name) / 2


def build(exps: list[Exposure], phq9: tuple[Score, ...] = ()) -> Treatment:
    ordered = sorted(exps, key=lambda e: (e.start, e.ingredient, e.ref))
    return build_trials(ordered, phq9, now=NOW, knowledge=KNOWLEDGE)


def summary(treatment: Treatment) -> list[tuple[str, Outcome]]:
    return [(t.ingredient, t.outcome) for t in treatment.trials]


def named(treatment: Treatment, ingredient: str) -> Trial:
    (trial,) = [t for t in treatment.trials if t.ingredient == ingredient]
    return trial


def sertraline_course(
    *, weeks: float = 12, reasons: tuple[Concept, ...] = (), ongoing: bool = False
) -> list[Exposure]:
    """Sertraline at an adequate dose in monthly supplies: from 60 weeks ago, or (ongoing) for the
    last ``weeks`` up to now."""
    return fills(
        "sertraline",
        start_weeks_ago=weeks if ongoing else 60,
        weeks=weeks,
        mg=adequate("sertraline"),
        last_reasons=reasons,
        ongoing=ongoing,
    )


def escitalopram_after(weeks_after_end: float, sertraline_weeks: float = 12) -> list[Exposure]:
    """Escitalopram (adequate, 10 weeks) from ``weeks_after_end`` after the sertraline course."""
    return fills(
        "escitalopram",
        start_weeks_ago=60 - sertraline_weeks - weeks_after_end,
        weeks=10,
        mg=adequate("escitalopram"),
    )


# --- courses and covered time --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gap_weeks", "courses"),
    [(MERGE_WEEKS, 1), (MERGE_WEEKS + 1, 2)],
    ids=["gap-at-merge-gap", "gap-beyond-merge-gap"],
)
def test_build_trials_same_drug_within_merge_gap_is_one_course(
    gap_weeks: float, courses: int
) -> None:
    """Verify that records of one drug at most merge_gap_weeks apart are one course (one trial),
    and further apart two."""
    exps = [
        exposure("sertraline", start_weeks_ago=80, weeks=8, mg=adequate("sertraline")),
        exposure("sertraline", start_weeks_ago=72 - gap_weeks, weeks=8, mg=adequate("sertraline")),
    ]
    assert len(build(exps).trials) == courses


@pytest.mark.parametrize(
    ("gap_days", "outcome"),
    [(0, "adequate-not-failed"), (GRACE_DAYS, "adequate-not-failed"), (GRACE_DAYS + 1, None)],
    ids=["back-to-back", "gap-at-coverage-grace", "gap-beyond-coverage-grace"],
)
def test_build_trials_covered_time_joins_supplies_within_coverage_grace(
    gap_days: float, outcome: Outcome | None
) -> None:
    """Verify that two supplies of half the adequate duration each make an adequate trial only
    when the gap between them is at most coverage_grace_days (covered time, not calendar time)."""
    half = MIN_WEEKS / 2
    exps = [
        exposure("sertraline", start_weeks_ago=60, weeks=half, mg=adequate("sertraline")),
        exposure(
            "sertraline",
            start_weeks_ago=60 - half - gap_days / 7,
            weeks=half,
            mg=adequate("sertraline"),
        ),
    ]
    (trial,) = build(exps).trials
    assert trial.outcome == (outcome or "inadequate-duration")
    assert (trial.adequate_weeks >= MIN_WEEKS) is (outcome is not None)


def test_build_trials_gap_between_fills_is_not_exposure() -> None:
    """Verify that two 14-day fills 12 weeks apart (one course) give 2 covered weeks, not 14
    calendar weeks: an inadequate duration (clinical review M8, T1a)."""
    exps = [
        exposure("sertraline", start_weeks_ago=60, weeks=2, mg=adequate("sertraline")),
        exposure("sertraline", start_weeks_ago=48, weeks=2, mg=adequate("sertraline")),
    ]
    (trial,) = build(exps).trials
    assert (trial.outcome, trial.weeks, trial.adequate_weeks) == ("inadequate-duration", 14.0, 2.0)


@pytest.mark.parametrize(
    ("exps", "outcome", "adequate_weeks"),
    [
        (
            [
                exposure("sertraline", start_weeks_ago=40, weeks=2, mg=adequate("sertraline")),
                exposure("sertraline", start_weeks_ago=40, weeks=20, mg=None),
            ],
            "inadequate-duration",
            2.0,
        ),
        (
            [
                exposure("sertraline", start_weeks_ago=40, weeks=4, mg=adequate("sertraline")),
                exposure("sertraline", start_weeks_ago=36, weeks=4, mg=None),
                exposure("sertraline", start_weeks_ago=32, weeks=4, mg=adequate("sertraline")),
            ],
            "inadequate-duration",
            4.0,
        ),
        (
            [exposure("sertraline", start_weeks_ago=40, weeks=20, mg=None)],
            "unknown-dose",
            0.0,
        ),
    ],
    ids=["dose-less-statement-overlapping", "dose-less-record-between", "only-dose-less"],
)
def test_build_trials_dose_unknown_record_never_extends_an_adequate_run(
    exps: list[Exposure], outcome: Outcome, adequate_weeks: float
) -> None:
    """Verify that a record with an unknown dose never adds adequate time (clinical review M8,
    T1b), and a course with no known dose is an unknown-dose trial."""
    (trial,) = build(exps).trials
    assert (trial.outcome, trial.adequate_weeks) == (outcome, adequate_weeks)


@pytest.mark.parametrize(
    ("low_weeks", "high_weeks", "outcome"),
    [
        (4, MIN_WEEKS - 4, "inadequate-duration"),
        (4, MIN_WEEKS, "adequate-not-failed"),
    ],
    ids=["adequate-step-too-short", "adequate-step-long-enough"],
)
def test_build_trials_titration_counts_from_the_adequate_step(
    low_weeks: float, high_weeks: float, outcome: Outcome
) -> None:
    """Verify that weeks below the adequate dose do not count: the clock starts at the step that
    reaches it (clinical review S2, T2)."""
    exps = [
        exposure("venlafaxine", start_weeks_ago=40, weeks=low_weeks, mg=below("venlafaxine")),
        exposure(
            "venlafaxine",
            start_weeks_ago=40 - low_weeks,
            weeks=high_weeks,
            mg=minimum("venlafaxine"),
        ),
    ]
    (trial,) = build(exps).trials
    assert (trial.outcome, trial.adequate_weeks) == (outcome, high_weeks)


@pytest.mark.parametrize(
    ("exps", "outcome"),
    [
        (
            fills("sertraline", start_weeks_ago=60, weeks=12, mg=below("sertraline")),
            "inadequate-dose",
        ),
        (fills("sertraline", start_weeks_ago=60, weeks=12, mg=None), "unknown-dose"),
        (
            [
                exposure("fluoxetine", start_weeks_ago=60, weeks=12, mg=None),
                exposure("escitalopram", start_weeks_ago=60, weeks=12, mg=below("escitalopram")),
            ],
            "unknown-dose",
        ),
        (
            [
                exposure("fluoxetine", start_weeks_ago=60, weeks=12, mg=None),
                exposure("escitalopram", start_weeks_ago=60, weeks=12, mg=adequate("escitalopram")),
            ],
            "adequate-not-failed",
        ),
    ],
    ids=[
        "below-minimum",
        "no-dose",
        "combination-part-unknown-rest-below",
        "combination-part-unknown-rest-adequate",
    ],
)
def test_build_trials_dose_below_or_unknown_is_not_adequate(
    exps: list[Exposure], outcome: Outcome
) -> None:
    """Verify that a regimen below its ATRQ doses is inadequate-dose, one whose doses cannot all
    be known is unknown-dose, and one antidepressant at an adequate dose makes a regimen
    adequate."""
    (trial,) = build(exps).trials
    assert trial.outcome == outcome


# --- regimens: cross-taper, combination, augmentation --------------------------------------------


@pytest.mark.parametrize(
    ("overlap_days", "combination", "why"),
    [
        (OVERLAP_DAYS - 7, False, "adequate trial, then switched to escitalopram"),
        (OVERLAP_DAYS + 7, True, "adequate trial, then added escitalopram"),
    ],
    ids=["cross-taper", "combination"],
)
def test_build_trials_overlap_length_tells_cross_taper_from_combination(
    overlap_days: float, combination: bool, why: str
) -> None:
    """Verify that a second antidepressant overlapping the first for less than
    combination_overlap_days is a cross-taper (a switch), and for longer a combination regimen of
    its own (clinical review D)."""
    exps = [
        exposure("fluoxetine", start_weeks_ago=60, weeks=16, mg=adequate("fluoxetine")),
        exposure(
            "escitalopram",
            start_weeks_ago=44 + overlap_days / 7,
            weeks=16,
            mg=adequate("escitalopram"),
        ),
    ]
    treatment = build(exps)
    first = treatment.trials[0]
    assert (first.ingredient, first.outcome, first.why) == ("fluoxetine", "failed", why)
    kinds = [t.kind for t in treatment.trials]
    assert ("combination" in kinds) is combination
    if combination:
        assert named(treatment, "escitalopram + fluoxetine").ingredients == (
            "escitalopram",
            "fluoxetine",
        )


@pytest.mark.parametrize(
    ("second", "mg", "lead_weeks", "expected"),
    [
        (
            "quetiapine",
            minimum("quetiapine"),
            1,
            [("escitalopram + quetiapine", "augmentation", "ongoing")],
        ),
        (
            "quetiapine",
            minimum("quetiapine"),
            MIN_WEEKS - 1,
            [("escitalopram + quetiapine", "augmentation", "ongoing")],
        ),
        (
            "quetiapine",
            minimum("quetiapine"),
            MIN_WEEKS + 2,
            [
                ("escitalopram", "monotherapy", "failed"),
                ("escitalopram + quetiapine", "augmentation", "ongoing"),
            ],
        ),
        (
            "quetiapine",
            below("quetiapine"),
            MIN_WEEKS + 2,
            [("escitalopram", "monotherapy", "ongoing")],
        ),
        (
            "fluoxetine",
            adequate("fluoxetine"),
            1,
            [("escitalopram + fluoxetine", "combination", "ongoing")],
        ),
        (
            "fluoxetine",
            adequate("fluoxetine"),
            MIN_WEEKS + 2,
            [
                ("escitalopram", "monotherapy", "failed"),
                ("escitalopram + fluoxetine", "combination", "ongoing"),
            ],
        ),
    ],
    ids=[
        "augmenter-week-1",
        "augmenter-before-adequate-weeks",
        "augmenter-after-adequate-weeks",
        "augmenter-below-adjunct-dose",
        "add-on-antidepressant-week-1",
        "add-on-antidepressant-after-adequate-weeks",
    ],
)
def test_build_trials_early_add_on_is_folded_into_the_regimen_it_starts(
    second: str, mg: float, lead_weeks: float, expected: list[tuple[str, str, str]]
) -> None:
    """Verify that an augmenter (at its adjunct dose) or a second antidepressant added before
    min_adequate_weeks starts the combined regimen and is no failure signal, while one added
    later is (clinical review S3, T10); an augmenter below its adjunct dose is ignored."""
    exps = [
        *fills(
            "escitalopram", start_weeks_ago=47, weeks=47, mg=adequate("escitalopram"), ongoing=True
        ),
        *fills(second, start_weeks_ago=47 - lead_weeks, weeks=47 - lead_weeks, mg=mg, ongoing=True),
    ]
    assert [(t.ingredient, t.kind, t.outcome) for t in build(exps).trials] == expected


def test_build_trials_augmenter_with_unknown_dose_is_a_gap_not_augmentation() -> None:
    """Verify that an augmenter whose dose is unknown does not make an augmentation regimen and
    is reported."""
    aripiprazole = exposure("aripiprazole", start_weeks_ago=37, weeks=10, mg=None)
    treatment = build(
        [
            *fills("escitalopram", start_weeks_ago=47, weeks=20, mg=adequate("escitalopram")),
            aripiprazole,
        ]
    )
    assert summary(treatment) == [("escitalopram", "adequate-not-failed")]
    assert [g for g in treatment.gaps if aripiprazole.ref in g and "augmentation" in g]


def test_build_trials_combination_then_one_agent_stops_is_no_failure() -> None:
    """Verify that stopping one agent of a combination while the other continues is not a new
    treatment, so not a failure signal for the combination."""
    exps = [
        exposure("fluoxetine", start_weeks_ago=60, weeks=12, mg=adequate("fluoxetine")),
        exposure("escitalopram", start_weeks_ago=59.5, weeks=30, mg=adequate("escitalopram")),
    ]
    assert summary(build(exps)) == [
        ("escitalopram + fluoxetine", "adequate-not-failed"),
        ("escitalopram", "adequate-not-failed"),
    ]


@pytest.mark.parametrize(
    "exps",
    [
        fills("dextromethorphan", start_weeks_ago=40, weeks=20, mg=90),
        fills("quetiapine", start_weeks_ago=40, weeks=20, mg=adequate("quetiapine")),
        fills("lorazepam", start_weeks_ago=40, weeks=20, mg=3),
    ],
    ids=["antidepressant-without-atrq-dose", "augmenter-alone", "co-medication"],
)
def test_build_trials_drug_that_forms_no_trial(exps: list[Exposure]) -> None:
    """Verify that dextromethorphan (no ATRQ dose), an augmenter taken without an antidepressant
    and a co-medication form no trial."""
    assert build(exps).trials == []


# --- judging an adequate regimen -----------------------------------------------------------------

EFFICACY = (reason("ineffective"),)
REMISSION = (reason("remission achieved"),)
NOT_FAILURE = (reason("insurance no longer covers - formulary switch"),)
INTOLERANCE = (reason_code("sintol"),)


def _phq9(baseline: float, follow_up: float) -> tuple[Score, ...]:
    """A baseline a week before the sertraline course and a follow-up 10 weeks into it."""
    return (score(baseline, weeks_ago=61), score(follow_up, weeks_ago=50))


NON_RESPONSE = _phq9(22, 21)
RESPONSE_SCORES = _phq9(22, 8)


@pytest.mark.parametrize(
    ("reasons", "phq9", "switch", "ongoing", "weeks", "outcome", "why"),
    [
        (EFFICACY, RESPONSE_SCORES, True, False, 12, "failed", "stopped as ineffective"),
        (REMISSION, NON_RESPONSE, False, False, 12, "failed", "PHQ-9 22 -> 21"),
        (INTOLERANCE, NON_RESPONSE, False, False, 12, "failed", "PHQ-9 22 -> 21"),
        (
            (reason("remission; insurance no longer covers"),),
            (),
            True,
            False,
            12,
            "adequate-not-failed",
            "stopped in remission",
        ),
        (NOT_FAILURE, (), True, False, 12, "adequate-not-failed", "not an efficacy failure"),
        (
            (reason_code("altchoice"),),
            (),
            True,
            False,
            12,
            "adequate-not-failed",
            "not an efficacy failure",
        ),
        (INTOLERANCE, (), True, False, 12, "failed", "adequate trial, then switched to"),
        (INTOLERANCE, (), False, False, 12, "intolerance", "stopped for intolerance"),
        ((), (), False, False, 12, "adequate-not-failed", "without a sign of failure"),
        ((), RESPONSE_SCORES, True, False, 12, "adequate-not-failed", "PHQ-9 improved"),
        ((), (), False, True, 12, "ongoing", "no failure yet"),
        (
            (reason("no side effects"),),
            (),
            False,
            False,
            12,
            "adequate-not-failed",
            "without a sign of failure",
        ),
        (INTOLERANCE, (), True, False, MIN_WEEKS - 3, "intolerance", "stopped for intolerance"),
        (EFFICACY, (), True, False, MIN_WEEKS - 2, "inadequate-duration", "needs"),
        ((), (), True, False, MIN_WEEKS - 2, "inadequate-duration", "needs"),
        ((), (), False, True, MIN_WEEKS - 2, "ongoing", "so far"),
    ],
    ids=[
        "efficacy-stop-beats-phq9-response",
        "phq9-non-response-beats-remission",
        "phq9-non-response-beats-intolerance",
        "remission-beats-non-failure-reason",
        "non-failure-reason-beats-switch",
        "non-failure-code-beats-switch",
        "switch-beats-intolerance",
        "intolerance-without-switch",
        "ended-without-signal",
        "phq9-response-beats-switch",
        "ongoing-without-signal",
        "negated-side-effects-is-not-intolerance",
        "short-intolerance",
        "short-efficacy-stop-is-not-failure",
        "short-then-switch-is-not-failure",
        "short-ongoing",
    ],
)
def test_build_trials_judging_order_decides_the_outcome(
    reasons: tuple[Concept, ...],
    phq9: tuple[Score, ...],
    switch: bool,
    ongoing: bool,
    weeks: float,
    outcome: Outcome,
    why: str,
) -> None:
    """Verify the judging order of a sertraline regimen: efficacy stop > PHQ-9 non-response >
    remission > non-failure stop reason > next regimen (only after min_adequate_weeks at an
    adequate dose) > intolerance; no failure signal counts before the regimen was adequate
    (clinical review S3, S4, M9)."""
    exps = sertraline_course(weeks=weeks, reasons=reasons, ongoing=ongoing)
    if switch:
        exps += escitalopram_after(0, sertraline_weeks=weeks)
    trial = named(build(exps, phq9), "sertraline")
    assert trial.outcome == outcome
    assert why in trial.why


@pytest.mark.parametrize(
    "words",
    ["not in remission", "no remission after 12 weeks", "did not achieve remission"],
    ids=["not-in-remission", "no-remission", "did-not-achieve-remission"],
)
def test_build_trials_negated_remission_stop_reason_does_not_block_the_switch(words: str) -> None:
    """Verify that a stop reason saying the patient did NOT reach remission is not a non-failure
    reason: the switch that follows an adequate trial is still a failure signal."""
    exps = sertraline_course(reasons=(reason(words),)) + escitalopram_after(0)
    assert named(build(exps), "sertraline").outcome == "failed"


@pytest.mark.parametrize(
    ("weeks_after_end", "outcome"),
    [(0, "failed"), (SWITCH_WEEKS, "failed"), (SWITCH_WEEKS + 1, "adequate-not-failed")],
    ids=["straight-switch", "switch-at-window", "switch-beyond-window"],
)
def test_build_trials_next_regimen_within_switch_window_is_a_failure(
    weeks_after_end: float, outcome: Outcome
) -> None:
    """Verify that a new antidepressant started at most switch_window_weeks after an adequate
    regimen ended marks it failed (with the new record as evidence), and later does not."""
    exps = sertraline_course() + escitalopram_after(weeks_after_end)
    treatment = build(exps)
    trial = named(treatment, "sertraline")
    assert trial.outcome == outcome
    first_escitalopram = min(
        (e for e in exps if e.ingredient == "escitalopram"), key=lambda e: e.start
    )
    assert (first_escitalopram.ref in trial.evidence) is (outcome == "failed")


# --- PHQ-9 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("baseline_days_before", "follow_up_weeks_in", "baseline", "follow_up", "outcome", "why"),
    [
        (BASELINE_DAYS - 1, MIN_WEEKS + 1, 20, 20 * (1 - RESPONSE) + 1, "failed", "PHQ-9"),
        (
            BASELINE_DAYS - 1,
            MIN_WEEKS + 1,
            20,
            20 * (1 - RESPONSE),
            "adequate-not-failed",
            "PHQ-9 improved",
        ),
        (
            BASELINE_DAYS + 7,
            MIN_WEEKS + 1,
            20,
            20,
            "adequate-not-failed",
            "without a sign of failure",
        ),
        (1, MIN_WEEKS - 1, 20, 20, "adequate-not-failed", "without a sign of failure"),
        (1, MIN_WEEKS + 1, 0, 20, "adequate-not-failed", "without a sign of failure"),
    ],
    ids=[
        "non-response",
        "response-at-the-reduction",
        "baseline-before-window",
        "follow-up-before-adequate-weeks",
        "zero-baseline",
    ],
)
def test_build_trials_phq9_non_response_needs_baseline_and_late_follow_up(
    baseline_days_before: float,
    follow_up_weeks_in: float,
    baseline: float,
    follow_up: float,
    outcome: Outcome,
    why: str,
) -> None:
    """Verify that PHQ-9 non-response (a fall below phq9_response_reduction) needs a baseline at
    most phq9_baseline_window_days before the start and a follow-up at least min_adequate_weeks
    into the adequate dose; a fall of exactly the reduction is a response."""
    scores = (
        score(baseline, weeks_ago=60, days_ago=baseline_days_before),
        score(follow_up, weeks_ago=60 - follow_up_weeks_in),
    )
    trial = named(build(sertraline_course(), scores), "sertraline")
    assert trial.outcome == outcome
    assert why in trial.why
    if outcome == "failed":
        assert {s.ref for s in scores} <= set(trial.evidence)


# --- sleep and pain doses, other indications -----------------------------------------------------

CEILINGS = sorted(
    (name, ing.non_depression_max_daily_mg)
    for name, ing in KNOWLEDGE.ingredients.items()
    if ing.role == "antidepressant" and ing.non_depression_max_daily_mg is not None
)


@pytest.mark.parametrize(("name", "ceiling"), CEILINGS, ids=[n for n, _ in CEILINGS])
def test_build_trials_sleep_or_pain_dose_is_not_a_depression_trial(
    name: str, ceiling: float
) -> None:
    """Verify that an antidepressant never taken above its sleep/pain ceiling is
    not-for-depression, and at its adequate dose is a depression trial."""
    assert minimum(name) > ceiling, "the knowledge's ceiling must be below the adequate dose"
    low = build(fills(name, start_weeks_ago=30, weeks=12, mg=ceiling))
    high = build(fills(name, start_weeks_ago=30, weeks=12, mg=minimum(name)))
    assert summary(low) == [(name, "not-for-depression")]
    assert summary(high) == [(name, "adequate-not-failed")]


@pytest.mark.parametrize(
    ("uses", "outcome"),
    [
        (
            ("prescribed for Smoking cessation", "prescribed for Smoking cessation"),
            "not-for-depression",
        ),
        (("prescribed for Smoking cessation", None), "adequate-not-failed"),
    ],
    ids=["every-record-other-use", "one-record-for-depression"],
)
def test_build_trials_other_indication_only_when_every_record_says_so(
    uses: tuple[str | None, ...], outcome: Outcome
) -> None:
    """Verify that a course is not-for-depression only when every record states another use."""
    exps = [
        exposure(
            "bupropion", start_weeks_ago=30 - 4 * i, weeks=4, mg=adequate("bupropion"), use=use
        )
        for i, use in enumerate(uses)
    ]
    assert summary(build(exps)) == [("bupropion", outcome)]


@pytest.mark.parametrize(
    ("ended_weeks_ago", "reported"),
    [(LOOKBACK_WEEKS + 1, False), (LOOKBACK_WEEKS - 1, True)],
    ids=["ended-before-lookback", "ended-inside-lookback"],
)
def test_build_trials_lookback_keeps_trials_that_end_inside_it(
    ended_weeks_ago: float, reported: bool
) -> None:
    """Verify that regimens and non-depression courses that ended before episode_lookback_weeks
    are not reported."""
    start = ended_weeks_ago + 12
    exps = [
        *fills("sertraline", start_weeks_ago=start, weeks=12, mg=adequate("sertraline")),
        *fills("trazodone", start_weeks_ago=start, weeks=12, mg=50),
    ]
    assert bool(build(exps).trials) is reported


# --- the failed count ----------------------------------------------------------------------------


def _trial(names: str, outcome: Outcome = "failed", episode: str = "current") -> Trial:
    return Trial(
        ingredient=names,
        outcome=outcome,
        start=ago(60),
        end=ago(50),
        weeks=10.0,
        max_daily_dose_mg=None,
        evidence=(),
        why="",
        ingredients=tuple(names.split(" + ")),
        episode="previous" if episode == "previous" else "current",
    )


@pytest.mark.parametrize(
    ("trials", "count"),
    [
        ([_trial("sertraline"), _trial("sertraline")], 1),
        ([_trial("sertraline"), _trial("sertraline + aripiprazole")], 2),
        ([_trial("escitalopram + fluoxetine"), _trial("escitalopram + fluoxetine")], 1),
        ([_trial("sertraline", episode="previous"), _trial("escitalopram")], 1),
        ([_trial("sertraline", "ongoing"), _trial("escitalopram", "adequate-not-failed")], 0),
        ([_trial("sertraline", "intolerance"), _trial("escitalopram", "inadequate-dose")], 0),
        ([], 0),
    ],
    ids=[
        "re-challenge-once",
        "augmentation-is-its-own-regimen",
        "same-combination-once",
        "previous-episode-not-counted",
        "not-failed-not-counted",
        "intolerance-and-low-dose-not-counted",
        "no-trials",
    ],
)
def test_failed_regimens_counts_each_failed_regimen_of_the_episode_once(
    trials: list[Trial], count: int
) -> None:
    """Verify that the failed count holds each distinct regimen of the current episode once."""
    assert len(failed_regimens(trials)) == count


def test_build_trials_re_challenge_after_a_switch_counts_once() -> None:
    """Verify that sertraline, escitalopram, sertraline again, then venlafaxine (each switch after
    an adequate trial) give two failed regimens: the re-challenge counts once."""
    exps = [
        *fills("sertraline", start_weeks_ago=100, weeks=12, mg=adequate("sertraline")),
        *fills(
            "escitalopram", start_weeks_ago=88, weeks=MERGE_WEEKS + 1, mg=adequate("escitalopram")
        ),
        *fills("sertraline", start_weeks_ago=87 - MERGE_WEEKS, weeks=10, mg=adequate("sertraline")),
        *fills(
            "venlafaxine", start_weeks_ago=77 - MERGE_WEEKS, weeks=20, mg=adequate("venlafaxine")
        ),
    ]
    trials = build(exps).trials
    assert [t.outcome for t in trials] == ["failed", "failed", "failed", "adequate-not-failed"]
    assert [t.ingredient for t in failed_regimens(trials)] == ["sertraline", "escitalopram"]


def test_build_trials_switch_and_back_within_merge_gap_keeps_the_middle_monotherapy() -> None:
    """Verify that sertraline, then escitalopram alone for 8 weeks, then sertraline again (inside
    merge_gap_weeks of the first course) reports escitalopram as a monotherapy that failed, and
    counts two failed regimens; no combination that was never taken."""
    exps = [
        *fills("sertraline", start_weeks_ago=60, weeks=12, mg=adequate("sertraline")),
        *fills("escitalopram", start_weeks_ago=48, weeks=8, mg=adequate("escitalopram")),
        *fills("sertraline", start_weeks_ago=40, weeks=10, mg=adequate("sertraline")),
        *fills(
            "venlafaxine", start_weeks_ago=30, weeks=30, mg=adequate("venlafaxine"), ongoing=True
        ),
    ]
    trials = build(exps).trials
    assert "combination" not in [t.kind for t in trials]
    assert named_outcomes(trials, "escitalopram") == ["failed"]
    assert [t.ingredient for t in failed_regimens(trials)] == ["sertraline", "escitalopram"]


def named_outcomes(trials: list[Trial], ingredient: str) -> list[Outcome]:
    return [t.outcome for t in trials if t.ingredient == ingredient]


# --- remissions and trial fields -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("reasons", "ongoing", "remission"),
    [
        (REMISSION, False, True),
        ((reason("doing well, symptom-free"),), False, True),
        (REMISSION, True, False),
        ((reason("not well"),), False, False),
        (NOT_FAILURE, False, False),
    ],
    ids=["remission-stop", "symptom-free", "still-taken", "negated", "other-reason"],
)
def test_build_trials_remissions_list_regimens_stopped_in_remission(
    reasons: tuple[Concept, ...], ongoing: bool, remission: bool
) -> None:
    """Verify that a regimen stopped with a remission reason is listed (its end and last record)
    as an episode boundary, and one still taken, or stopped for another reason, is not."""
    exps = sertraline_course(reasons=reasons, ongoing=ongoing)
    treatment = build(exps)
    trial = named(treatment, "sertraline")
    if remission:
        assert treatment.remissions == [(trial.end, exps[-1].ref)]
    else:
        assert treatment.remissions == []


def test_build_trials_trial_fields_describe_the_regimen() -> None:
    """Verify a failed trial's fields: name, kind, dates, weeks, adequate weeks, doses and its
    evidence (every record, then the switch's first record); an ongoing trial has no end."""
    sertraline = sertraline_course()
    escitalopram = fills(
        "escitalopram", start_weeks_ago=48, weeks=48, mg=adequate("escitalopram"), ongoing=True
    )
    first, second = build(sertraline + escitalopram).trials
    assert first.ingredient == "sertraline" and first.kind == "monotherapy"
    assert (first.start, first.end) == (ago(60), ago(48))
    assert (first.weeks, first.adequate_weeks) == (12.0, 12.0)
    assert first.max_daily_dose_mg == adequate("sertraline")
    assert first.doses_mg == (("sertraline", adequate("sertraline")),)
    assert first.evidence == (*(e.ref for e in sertraline), escitalopram[0].ref)
    assert (second.outcome, second.end) == ("ongoing", None)


# --- properties ----------------------------------------------------------------------------------

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(
    facts=st.lists(medication_facts(), max_size=12),
    phq9=st.lists(
        st.builds(
            lambda v, w: score(v, weeks_ago=w),
            st.floats(min_value=-5, max_value=40),
            st.floats(min_value=0, max_value=200),
        ),
        max_size=4,
    ),
)
def test_build_trials_any_history_gives_bounded_trials(
    facts: list[MedicationFact], phq9: list[Score]
) -> None:
    """Verify that any medication history never makes exposures or build_trials raise; every
    trial lies within the records' time range and the lookback; a failed trial was adequate for
    min_adequate_weeks; and the failed count never exceeds the number of distinct regimens."""
    found, _ = exposures(tuple(facts), now=NOW, knowledge=KNOWLEDGE)
    treatment = build_trials(
        found, tuple(sorted(phq9, key=lambda s: s.effective)), now=NOW, knowledge=KNOWLEDGE
    )
    lookback_start = NOW - timedelta(weeks=LOOKBACK_WEEKS)
    earliest = min((f.start for f in facts if f.start is not None), default=NOW)
    for trial in treatment.trials:
        assert earliest <= trial.start <= NOW
        assert trial.end is None or trial.start <= trial.end <= NOW
        assert trial.end is None or trial.end >= lookback_start
        assert 0 <= trial.adequate_weeks <= trial.weeks + 1e-9
        if trial.outcome == "failed":
            assert trial.adequate_weeks >= MIN_WEEKS
    failed = failed_regimens(treatment.trials)
    assert len(failed) <= len({t.ingredients for t in treatment.trials})
    for end, ref in treatment.remissions:
        assert end <= NOW and ref
