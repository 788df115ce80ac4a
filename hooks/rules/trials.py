"""Antidepressant treatment trials, modelled as regimens. Pure.

Definitions (sources in ``knowledge/policy.json``; the choices in ``docs/clinical-rules.md``):

- **Course**: the exposures to one ingredient merged while the gap between one record's end and
  the next one's start is at most ``merge_gap_weeks`` (Fabbri 2021's prescription episode).
- **Regimen** (the unit of a trial): the set of antidepressants, and of augmenting drugs at their
  adequacy dose, taken together. A second agent taken with the first for at least
  ``combination_overlap_days`` (Exeter augmentation phenotype: >= 30 days) makes a combination or
  augmentation regimen, which is one trial (ATRQ, STAR*D); a shorter overlap while the first
  stops is a cross-taper: the first regimen ends where the next begins. A brief add-on (shorter
  than the threshold, inside another course) changes nothing. (Clinical review D and S13.)
- **Adequate**: an antidepressant of the regimen at or above its minimum adequate daily dose
  (ATRQ) for at least ``min_adequate_weeks`` (6) of *covered* time: only the days a supply
  covers count, joined across gaps of at most ``coverage_grace_days``; a dose-unknown record
  never extends an adequate run; a titration counts from the step that reaches the dose
  (clinical review M8, S2).
- **Failure** of an adequate regimen: a stop documented as ineffective; a PHQ-9 total at least
  6 weeks into the adequate dose that fell by less than ``phq9_response_reduction`` from the
  baseline (taken up to ``phq9_baseline_window_days`` before the start); or the next regimen
  (switch, added antidepressant, augmentation) starting within ``switch_window_weeks`` of its end
  and at least 6 weeks after the adequate dose was reached (clinical review S3).
- **Not failures**: a stop for a reason that is not an efficacy failure (formulary, cost,
  preference, remission: ``status-reason-not-failure``; clinical review M9), a documented PHQ-9
  response, intolerance without evidence of non-response (checked after adequacy and PHQ-9:
  clinical review S4), doses below the minimum, too short, sleep/pain doses, other indications.
- **Count**: failed regimens of the current episode, each distinct set of antidepressants once
  (a re-challenge counts once; an augmentation of the same antidepressant is its own regimen).
"""

from __future__ import annotations

import itertools
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fhir_mappers.dates import shift
from hooks.rules.findings import Outcome, RegimenKind, Trial
from hooks.rules.knowledge import Knowledge
from hooks.rules.medications import Exposure
from hooks.rules.questionnaires import Score

WEEK = timedelta(weeks=1)
TRIAL_ROLES = frozenset({"antidepressant", "augmenter"})


@dataclass(eq=False)
class _Course:
    """Compared and hashed by identity: a course is one object however it grows."""

    ingredient: str
    role: str
    exposures: list[Exposure]
    end: datetime = field(init=False)
    ongoing: bool = field(init=False)
    until: datetime = field(init=False)
    """Where the course stops counting for regimens (earlier than ``end`` after a cross-taper)."""

    def __post_init__(self) -> None:
        self.end = max(e.end for e in self.exposures)
        self.ongoing = any(e.ongoing for e in self.exposures)
        self.until = self.end

    @property
    def start(self) -> datetime:
        return self.exposures[0].start

    def add(self, exposure: Exposure) -> None:
        self.exposures.append(exposure)
        if exposure.end > self.end:
            self.end = self.until = exposure.end
        self.ongoing = self.ongoing or exposure.ongoing


@dataclass(frozen=True)
class _Regimen:
    courses: tuple[_Course, ...]
    start: datetime
    end: datetime

    @property
    def antidepressants(self) -> tuple[_Course, ...]:
        return tuple(c for c in self.courses if c.role == "antidepressant")

    @property
    def names(self) -> tuple[str, ...]:
        ads = sorted(c.ingredient for c in self.antidepressants)
        others = sorted(c.ingredient for c in self.courses if c.role != "antidepressant")
        return tuple(ads + others)

    @property
    def kind(self) -> RegimenKind:
        if len(self.antidepressants) > 1:
            return "combination"
        return "augmentation" if len(self.courses) > 1 else "monotherapy"

    @property
    def ongoing(self) -> bool:
        """Still taken: a course that runs to now ends with this regimen (no later regimen
        replaced it)."""
        return any(c.ongoing and c.until <= self.end for c in self.courses)

    def exposures(self) -> list[Exposure]:
        return [
            e
            for c in self.courses
            for e in c.exposures
            if e.start < self.end and e.end > self.start
        ]


def _merge(
    exposures: list[Exposure], gap: timedelta, overlap: timedelta, grace: timedelta
) -> list[_Course]:
    """Courses: records of one ingredient joined across gaps of at most ``gap``, unless, in a
    gap longer than ``grace``, a course of another antidepressant started (or started less than
    ``overlap`` before the gap): a switch or cross-taper and a switch back are two courses, not
    one course with the other drug inside it."""
    courses: list[_Course] = []
    current: dict[str, _Course] = {}
    starts: list[datetime] = []
    names: list[str] = []
    for exposure in exposures:  # sorted by start
        course = current.get(exposure.ingredient)
        if (
            course is not None
            and exposure.start <= course.end + gap
            and (
                exposure.start <= course.end + grace
                or not _switched_between(starts, names, course.end - overlap, exposure)
            )
        ):
            course.add(exposure)
            continue
        course = _Course(exposure.ingredient, exposure.role, [exposure])
        current[exposure.ingredient] = course
        courses.append(course)
        if exposure.role == "antidepressant":  # a course that starts (a renewal does not)
            starts.append(exposure.start)
            names.append(exposure.ingredient)
    return courses


def _switched_between(
    starts: list[datetime], names: list[str], low: datetime, exposure: Exposure
) -> bool:
    """Whether a course of another antidepressant started after ``low`` and before
    ``exposure``."""
    if exposure.role != "antidepressant":
        return False
    index = bisect_left(starts, low)
    return any(
        name != exposure.ingredient and start < exposure.start
        for start, name in zip(starts[index:], names[index:], strict=True)
    )


def _for_depression(course: _Course, knowledge: Knowledge) -> str | None:
    """Why the course is not a depression treatment (sleep/pain dose, other indication)."""
    uses = [e.non_depression_use for e in course.exposures if e.non_depression_use]
    if uses and len(uses) == len(course.exposures):
        return f"not a depression trial: {uses[0]}"
    ceiling = knowledge.ingredients[course.ingredient].non_depression_max_daily_mg
    doses = [e.daily_mg for e in course.exposures if e.daily_mg is not None]
    if ceiling is not None and doses and max(doses) <= ceiling:
        return f"{max(doses):g} mg/day is a sleep or pain dose (at most {ceiling:g} mg)"
    return None


def _overlap_courses(courses: list[_Course], threshold: timedelta) -> list[_Course]:
    """Apply cross-tapers and drop brief add-ons; keep the courses that form regimens."""
    kept: list[_Course] = []
    for course in sorted(courses, key=lambda c: c.start):
        brief = False
        for earlier in kept:
            if earlier.ingredient == course.ingredient or course.start >= earlier.until:
                continue
            if course.end <= earlier.until:
                # Started and ended inside the earlier course: an add-on if long enough.
                brief = course.end - course.start < threshold
            elif earlier.until - course.start < threshold and course.role == earlier.role:
                earlier.until = course.start  # cross-taper: the earlier one stops here
        if course.role == "augmenter":
            overlap = max(
                (
                    min(course.end, ad.until) - max(course.start, ad.start)
                    for ad in kept
                    if ad.role == "antidepressant"
                ),
                default=timedelta(0),
            )
            if overlap < threshold:
                continue  # an augmenting drug that never ran with an antidepressant long enough
        if not brief:
            kept.append(course)
    return kept


def _regimens(courses: list[_Course], lead_in: timedelta) -> list[_Regimen]:
    """Time slices with the same set of courses. A slice shorter than ``lead_in`` that runs
    straight into one keeping all its drugs (an early add-on or augmentation) is that
    regimen's start, not a trial of its own (clinical review S3)."""
    times = sorted({t for c in courses for t in (c.start, c.until)})
    regimens: list[_Regimen] = []
    for low, high in itertools.pairwise(times):
        active = tuple(c for c in courses if c.start <= low and c.until >= high)
        if not any(c.role == "antidepressant" for c in active):
            continue
        last = regimens[-1] if regimens else None
        if last is not None and last.end == low and last.courses == active:
            regimens[-1] = _Regimen(last.courses, last.start, high)
        elif (
            last is not None
            and last.end == low
            and last.end - last.start < lead_in
            and all(c in active for c in last.courses)
        ):
            regimens[-1] = _Regimen(active, last.start, high)
        else:
            regimens.append(_Regimen(active, low, high))
    return regimens


def _adequate_run(
    regimen: _Regimen, knowledge: Knowledge
) -> tuple[datetime | None, timedelta, dict[str, float]]:
    """Start and length of the longest covered run at an adequate dose of one of the regimen's
    antidepressants (inside the regimen), and each antidepressant's largest daily dose."""
    grace = knowledge.thresholds.coverage_grace_days.delta
    best_start: datetime | None = None
    best = timedelta(0)
    doses: dict[str, float] = {}
    for course in regimen.antidepressants:
        minimum = knowledge.ingredients[course.ingredient].min_daily_dose_mg or 0.0
        spans: list[tuple[datetime, datetime]] = []
        for exposure in course.exposures:
            start, end = max(exposure.start, regimen.start), min(exposure.end, regimen.end)
            if exposure.daily_mg is not None and end > start:
                doses[course.ingredient] = max(doses.get(course.ingredient, 0.0), exposure.daily_mg)
            if exposure.daily_mg is None or exposure.daily_mg < minimum or end <= start:
                continue
            spans.append((start, end))
        spans.sort()
        run_start: datetime | None = None
        run_end: datetime | None = None
        for start, end in spans:
            if run_start is None or run_end is None or start > run_end + grace:
                run_start, run_end = start, end
            else:
                run_end = max(run_end, end)
            if run_end - run_start > best:
                best_start, best = run_start, run_end - run_start
    return best_start, best, doses


def _reason(regimen: _Regimen, knowledge: Knowledge, list_name: str) -> str | None:
    code_list = knowledge.code_list(list_name)
    for exposure in regimen.exposures():
        for reason in exposure.fact.status_reasons:
            if any(code_list.matches_code(c.system, c.code) for c in reason.codings) or any(
                code_list.matches_text(t) for t in reason.texts()
            ):
                return reason.label()
    return None


class _Timeline:
    """Scores sorted by time, for "the latest one between two instants" in O(log n)."""

    def __init__(self, scores: tuple[Score, ...]) -> None:
        self._scores = sorted(scores, key=lambda s: s.effective)
        self._times = [s.effective for s in self._scores]

    def last_between(self, low: datetime, high: datetime) -> Score | None:
        index = bisect_right(self._times, high)
        if index and self._times[index - 1] >= low:
            return self._scores[index - 1]
        return None


def _phq9(
    regimen: _Regimen, adequate_from: datetime, phq9: _Timeline, knowledge: Knowledge
) -> tuple[str | None, tuple[str, ...], bool]:
    """(non-response text, its evidence, documented response) around an adequate regimen."""
    limits = knowledge.thresholds
    baseline = phq9.last_between(
        regimen.start - limits.phq9_baseline_window_days.delta, regimen.start + WEEK
    )
    if baseline is None or baseline.value <= 0:
        return None, (), False
    follow_up = phq9.last_between(
        adequate_from + limits.min_adequate_weeks.delta, regimen.end + 2 * WEEK
    )
    if follow_up is None:
        return None, (), False
    reduction = (baseline.value - follow_up.value) / baseline.value
    if reduction < limits.phq9_response_reduction.value:
        return (
            f"PHQ-9 {baseline.value:g} -> {follow_up.value:g} ({reduction:.0%} reduction, "
            f"below {limits.phq9_response_reduction.value:.0%})",
            (baseline.ref, follow_up.ref),
            False,
        )
    return None, (), True


def _next_change(
    regimen: _Regimen, later: list[_Regimen], adequate_from: datetime, knowledge: Knowledge
) -> tuple[str, str] | None:
    """The next regimen as a failure signal: (why, its first record)."""
    limits = knowledge.thresholds
    for nxt in later:
        if nxt.start < regimen.end or nxt.start > regimen.end + limits.switch_window_weeks.delta:
            continue
        if nxt.start - adequate_from < limits.min_adequate_weeks.delta:
            return None  # changed before the regimen had been adequate long enough
        now_names = {c.ingredient for c in regimen.courses}
        added = [c for c in nxt.courses if c.ingredient not in now_names]
        kept = [c for c in nxt.courses if c.ingredient in now_names]
        first = (added or list(nxt.courses))[0].exposures[0].ref
        if not added:
            return None  # an agent was stopped, the rest continues: not a new treatment
        names = " + ".join(c.ingredient for c in added)
        if not kept:
            return f"switched to {names}", first
        verb = "augmented with" if all(c.role == "augmenter" for c in added) else "added"
        return f"{verb} {names}", first
    return None


@dataclass(frozen=True)
class _Judged:
    outcome: Outcome
    why: str
    extra: tuple[str, ...] = ()
    adequate: timedelta = timedelta(0)
    doses: dict[str, float] = field(default_factory=dict)
    remission: bool = False


def _judge(
    regimen: _Regimen, later: list[_Regimen], phq9: _Timeline, knowledge: Knowledge
) -> _Judged:
    limits = knowledge.thresholds
    adequate_from, span, doses = _adequate_run(regimen, knowledge)
    weeks = span / WEEK
    minima = {
        c.ingredient: knowledge.ingredients[c.ingredient].min_daily_dose_mg or 0.0
        for c in regimen.antidepressants
    }
    if not doses:
        return _Judged("unknown-dose", "daily dose cannot be computed from the records")
    if adequate_from is None:
        below = all(doses.get(name, 0.0) < minimum for name, minimum in minima.items())
        if below and len(doses) == len(minima):
            shown = ", ".join(f"{n} {doses[n]:g} mg/day (adequate {minima[n]:g})" for n in doses)
            return _Judged("inadequate-dose", f"below the adequate dose: {shown}", doses=doses)
        if len(doses) < len(minima):
            return _Judged(
                "unknown-dose", "the daily dose of part of the regimen is unknown", doses=doses
            )
    needed = limits.min_adequate_weeks.value
    ongoing = regimen.ongoing
    if adequate_from is None or weeks < needed:
        if ongoing:
            return _Judged("ongoing", f"{weeks:.1f} weeks at an adequate dose so far", doses=doses)
        intolerance = _reason(regimen, knowledge, "status-reason-intolerance")
        if intolerance:
            return _Judged("intolerance", f"stopped for intolerance ({intolerance})", doses=doses)
        return _Judged(
            "inadequate-duration",
            f"{weeks:.1f} weeks covered at an adequate dose (needs {needed:g})",
            adequate=span,
            doses=doses,
        )
    efficacy = _reason(regimen, knowledge, "status-reason-efficacy")
    if efficacy:
        return _Judged("failed", f"stopped as ineffective ({efficacy})", adequate=span, doses=doses)
    non_response, evidence, responded = _phq9(regimen, adequate_from, phq9, knowledge)
    if non_response:
        return _Judged("failed", non_response, evidence, adequate=span, doses=doses)
    remission = _reason(regimen, knowledge, "status-reason-remission")
    if remission and not ongoing:
        return _Judged(
            "adequate-not-failed",
            f"stopped in remission ({remission})",
            adequate=span,
            doses=doses,
            remission=True,
        )
    not_failure = _reason(regimen, knowledge, "status-reason-not-failure")
    if not_failure and not ongoing:
        return _Judged(
            "adequate-not-failed",
            f"stopped for a reason that is not an efficacy failure ({not_failure})",
            adequate=span,
            doses=doses,
        )
    change = None if responded else _next_change(regimen, later, adequate_from, knowledge)
    if change is not None:
        why, ref = change
        return _Judged("failed", f"adequate trial, then {why}", (ref,), span, doses)
    intolerance = _reason(regimen, knowledge, "status-reason-intolerance")
    if intolerance and not ongoing:
        return _Judged(
            "intolerance", f"stopped for intolerance ({intolerance})", adequate=span, doses=doses
        )
    if ongoing:
        return _Judged(
            "ongoing",
            f"{weeks:.1f} weeks at an adequate dose, no failure yet",
            adequate=span,
            doses=doses,
        )
    if responded:
        return _Judged(
            "adequate-not-failed",
            f"PHQ-9 improved by at least {limits.phq9_response_reduction.value:.0%}",
            adequate=span,
            doses=doses,
        )
    return _Judged(
        "adequate-not-failed",
        "adequate trial ended without a sign of failure",
        adequate=span,
        doses=doses,
    )


@dataclass(frozen=True)
class Treatment:
    """The reconstructed treatment history: every trial, and where the regimens stopped in
    remission (an episode boundary)."""

    trials: list[Trial]
    remissions: list[tuple[datetime, str]]
    """(end, evidence reference) of regimens stopped in documented remission."""
    gaps: list[str]


def _trial(regimen: _Regimen, judged: _Judged, now: datetime) -> Trial:
    refs = list(dict.fromkeys(e.ref for e in regimen.exposures()))
    main = regimen.antidepressants[0].ingredient if regimen.antidepressants else regimen.names[0]
    return Trial(
        ingredient=" + ".join(regimen.names),
        outcome=judged.outcome,
        start=regimen.start,
        end=None if regimen.ongoing else regimen.end,
        weeks=round((regimen.end - regimen.start) / WEEK, 1),
        max_daily_dose_mg=judged.doses.get(main),
        evidence=tuple(refs + [r for r in judged.extra if r not in refs]),
        why=judged.why,
        ingredients=regimen.names,
        kind=regimen.kind,
        adequate_weeks=round(judged.adequate / WEEK, 1),
        doses_mg=tuple(sorted(judged.doses.items())),
    )


def _course_trial(course: _Course, why: str) -> Trial:
    doses = [e.daily_mg for e in course.exposures if e.daily_mg is not None]
    return Trial(
        ingredient=course.ingredient,
        outcome="not-for-depression",
        start=course.start,
        end=None if course.ongoing else course.end,
        weeks=round((course.end - course.start) / WEEK, 1),
        max_daily_dose_mg=max(doses) if doses else None,
        evidence=tuple(dict.fromkeys(e.ref for e in course.exposures)),
        why=why,
        ingredients=(course.ingredient,),
    )


def build_trials(
    exposures: list[Exposure],
    phq9: tuple[Score, ...],
    *,
    now: datetime,
    knowledge: Knowledge,
) -> Treatment:
    """Trials (regimens) within the lookback window, oldest first, and the data gaps found."""
    limits = knowledge.thresholds
    gaps: list[str] = []
    trial_exposures: list[Exposure] = []
    for exposure in exposures:
        ingredient = knowledge.ingredients[exposure.ingredient]
        if ingredient.role == "antidepressant":
            if ingredient.min_daily_dose_mg is not None:  # dextromethorphan forms no trial
                trial_exposures.append(exposure)
        elif ingredient.role == "augmenter":
            minimum = ingredient.min_daily_dose_mg
            if exposure.daily_mg is None:
                gaps.append(
                    f"{exposure.ref}: {exposure.ingredient} dose unknown; "
                    "not counted as augmentation"
                )
            elif minimum is None or exposure.daily_mg >= minimum:
                trial_exposures.append(exposure)
    courses = _merge(
        trial_exposures,
        limits.merge_gap_weeks.delta,
        limits.combination_overlap_days.delta,
        limits.coverage_grace_days.delta,
    )
    lookback_start = shift(now, weeks=-limits.episode_lookback_weeks.value) or now
    trials: list[Trial] = []
    depression: list[_Course] = []
    for course in courses:
        other_use = _for_depression(course, knowledge) if course.role == "antidepressant" else None
        if other_use is None:
            depression.append(course)
        elif course.end >= lookback_start:
            trials.append(_course_trial(course, other_use))
    kept = _overlap_courses(depression, limits.combination_overlap_days.delta)
    regimens = _regimens(kept, knowledge.thresholds.min_adequate_weeks.delta)
    for course in depression:
        if course not in kept and course.role == "antidepressant" and course.end >= lookback_start:
            regimens.append(_Regimen((course,), course.start, course.end))
    regimens.sort(key=lambda r: r.start)
    timeline = _Timeline(phq9)
    remissions: list[tuple[datetime, str]] = []
    for index, regimen in enumerate(regimens):
        if regimen.end < lookback_start:
            continue
        judged = _judge(regimen, regimens[index + 1 :], timeline, knowledge)
        if judged.remission:
            remissions.append((regimen.end, regimen.exposures()[-1].ref))
        trials.append(_trial(regimen, judged, now))
    trials.sort(key=lambda t: t.start)
    return Treatment(trials, remissions, gaps)


def failed_regimens(trials: list[Trial]) -> list[Trial]:
    """Failed trials of the current episode, each distinct set of antidepressants once."""
    seen: set[tuple[str, ...]] = set()
    out: list[Trial] = []
    for trial in trials:
        if trial.outcome != "failed" or trial.episode != "current":
            continue
        key = trial.ingredients
        if key not in seen:
            seen.add(key)
            out.append(trial)
    return out
