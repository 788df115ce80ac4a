"""Antidepressant trials: merge exposures, judge adequacy, find failure signals, count. Pure.

Definitions (sources in ``knowledge/policy.json``):

- A trial is the exposures to one antidepressant ingredient merged while the gap between one
  record's end and the next one's start is at most ``merge_gap_weeks`` (Fabbri 2021).
- Adequate = at least the ingredient's minimum adequate daily dose (ATRQ) sustained for at least
  ``min_adequate_weeks`` (6, ATRQ/TRANSFORM convention).
- Failure signals for an adequate trial (clinical-knowledge §A3.4): a switch to another
  antidepressant within ``switch_window_weeks`` of its end, or a second antidepressant or an
  augmenting drug at its adequacy dose started during it; a stop with an efficacy reason; a PHQ-9
  total at least 6 weeks into the adequate dose that has not fallen by ``phq9_response_reduction``
  from the baseline taken up to ``phq9_baseline_window_days`` before the start.
- Not failures: stops for intolerance, stops before 6 weeks, doses below the minimum, low doses used
  for sleep or pain (``non_depression_max_daily_mg``), products or reasons for other indications.
- Only trials that reach into the lookback window (``episode_lookback_weeks``, the current
  episode) are reported and counted; a failed trial is counted once per ingredient.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hooks.rules.findings import Outcome, Trial
from hooks.rules.knowledge import Knowledge
from hooks.rules.medications import Exposure
from hooks.rules.questionnaires import Score

WEEK = timedelta(weeks=1)


@dataclass
class _Draft:
    """Exposures of one ingredient merged into one trial. ``end`` and ``ongoing`` are kept up
    to date by ``add`` (so merging a long renewal history stays linear)."""

    ingredient: str
    exposures: list[Exposure] = field(default_factory=list)
    end: datetime = field(init=False)
    ongoing: bool = field(init=False)

    def __post_init__(self) -> None:
        self.end = max(e.end for e in self.exposures)
        self.ongoing = any(e.ongoing for e in self.exposures)

    @property
    def start(self) -> datetime:
        return self.exposures[0].start

    def add(self, exposure: Exposure) -> None:
        self.exposures.append(exposure)
        if exposure.end > self.end:
            self.end = exposure.end
        self.ongoing = self.ongoing or exposure.ongoing


def _merge(exposures: list[Exposure], gap: timedelta) -> list[_Draft]:
    drafts: list[_Draft] = []
    current: dict[str, _Draft] = {}
    for exposure in exposures:  # sorted by start
        draft = current.get(exposure.ingredient)
        if draft is not None and exposure.start <= draft.end + gap:
            draft.add(exposure)
            continue
        draft = _Draft(exposure.ingredient, [exposure])
        current[exposure.ingredient] = draft
        drafts.append(draft)
    return drafts


def _adequate_span(draft: _Draft, minimum: float) -> tuple[datetime | None, timedelta]:
    """Start of the longest run of records at or above the minimum dose, and its length."""
    best_start: datetime | None = None
    best = timedelta(0)
    run_start: datetime | None = None
    end = draft.end
    for index, exposure in enumerate(draft.exposures):
        adequate = exposure.daily_mg is not None and exposure.daily_mg >= minimum
        if adequate and run_start is None:
            run_start = exposure.start
        if not adequate and exposure.daily_mg is not None and run_start is not None:
            length = exposure.start - run_start
            if length > best:
                best_start, best = run_start, length
            run_start = None
        if index == len(draft.exposures) - 1 and run_start is not None:
            length = end - run_start
            if length > best:
                best_start, best = run_start, length
    return best_start, best


def _matches(knowledge: Knowledge, list_name: str, exposure: Exposure) -> str | None:
    code_list = knowledge.code_list(list_name)
    for reason in exposure.fact.status_reasons:
        if any(code_list.matches_code(c.system, c.code) for c in reason.codings) or any(
            code_list.matches_text(t) for t in reason.texts()
        ):
            return reason.label()
    return None


@dataclass(frozen=True)
class _Signal:
    why: str
    evidence: tuple[str, ...]


class _Timeline:
    """Dated observations sorted by time, for "the latest one between two instants" lookups in
    O(log n) (a trial's PHQ-9 baseline and follow-up)."""

    def __init__(self, scores: tuple[Score, ...]) -> None:
        dated = sorted(scores, key=lambda s: s.effective)  # stable: equal times keep their order
        self._times = [s.effective for s in dated]
        self._observations = dated

    def last_between(self, low: datetime, high: datetime) -> Score | None:
        """The last observation (in time order) with ``low <= effective <= high``."""
        index = bisect_right(self._times, high)
        if index and self._times[index - 1] >= low:
            return self._observations[index - 1]
        return None


def _phq9_signal(
    adequate_from: datetime, draft: _Draft, phq9: _Timeline, knowledge: Knowledge
) -> tuple[_Signal | None, bool]:
    """(non-response signal, documented response) from PHQ-9 totals around an adequate trial."""
    baseline_window = timedelta(days=knowledge.thresholds.phq9_baseline_window_days.value)
    weeks = knowledge.thresholds.min_adequate_weeks.value
    baseline = phq9.last_between(draft.start - baseline_window, draft.start + WEEK)
    if baseline is None or baseline.value is None or baseline.value <= 0:
        return None, False
    follow_up = phq9.last_between(adequate_from + weeks * WEEK, draft.end + 2 * WEEK)
    if follow_up is None or follow_up.value is None:
        return None, False
    reduction = (baseline.value - follow_up.value) / baseline.value
    if reduction < knowledge.thresholds.phq9_response_reduction.value:
        return (
            _Signal(
                f"PHQ-9 {baseline.value:g} -> {follow_up.value:g} "
                f"({reduction:.0%} reduction, below 50%)",
                (baseline.ref, follow_up.ref),
            ),
            False,
        )
    return None, True


def _next_treatment_signal(
    draft: _Draft, others: list[_Draft], augmenters: list[Exposure], knowledge: Knowledge
) -> _Signal | None:
    window = knowledge.thresholds.switch_window_weeks.value * WEEK
    for other in others:
        if other.ingredient == draft.ingredient or other.start <= draft.start:
            continue
        if other.start > draft.end + window:
            continue
        if other.start >= draft.end - WEEK:
            return _Signal(f"switched to {other.ingredient}", (other.exposures[0].ref,))
        return _Signal(f"{other.ingredient} added", (other.exposures[0].ref,))
    for aug in augmenters:
        if draft.start < aug.start <= draft.end:
            return _Signal(f"augmented with {aug.ingredient}", (aug.ref,))
    return None


def _classify(
    draft: _Draft,
    others: list[_Draft],
    augmenters: list[Exposure],
    phq9: _Timeline,
    knowledge: Knowledge,
) -> tuple[Outcome, str, tuple[str, ...]]:
    ingredient = knowledge.ingredients[draft.ingredient]
    doses = [e.daily_mg for e in draft.exposures if e.daily_mg is not None]
    max_dose = max(doses) if doses else None
    minimum = ingredient.min_daily_dose_mg or 0.0
    weeks_needed = knowledge.thresholds.min_adequate_weeks.value
    other_use = [e.non_depression_use for e in draft.exposures if e.non_depression_use]
    if other_use and len(other_use) == len(draft.exposures):
        return "not-for-depression", f"not a depression trial: {other_use[0]}", ()
    low_ceiling = ingredient.non_depression_max_daily_mg
    if max_dose is not None and low_ceiling is not None and max_dose <= low_ceiling:
        return (
            "not-for-depression",
            f"{max_dose:g} mg/day is a sleep or pain dose (at most {low_ceiling:g} mg)",
            (),
        )
    if max_dose is None:
        return "unknown-dose", "daily dose cannot be computed from the records", ()
    if max_dose < minimum:
        return (
            "inadequate-dose",
            f"maximum {max_dose:g} mg/day is below the adequate {minimum:g} mg/day",
            (),
        )
    intolerance = next(
        (r for e in draft.exposures if (r := _matches(knowledge, "status-reason-intolerance", e))),
        None,
    )
    if intolerance:
        return "intolerance", f"stopped for intolerance ({intolerance})", ()
    adequate_from, span = _adequate_span(draft, minimum)
    weeks_at_dose = span / WEEK
    if adequate_from is None or weeks_at_dose < weeks_needed:
        if draft.ongoing:
            return "ongoing", f"{weeks_at_dose:.1f} weeks at an adequate dose so far", ()
        return (
            "inadequate-duration",
            f"{weeks_at_dose:.1f} weeks at an adequate dose (needs {weeks_needed:g})",
            (),
        )
    efficacy = next(
        (r for e in draft.exposures if (r := _matches(knowledge, "status-reason-efficacy", e))),
        None,
    )
    if efficacy:
        return "failed", f"stopped as ineffective ({efficacy})", ()
    phq9_signal, responded = _phq9_signal(adequate_from, draft, phq9, knowledge)
    if phq9_signal:
        return "failed", phq9_signal.why, phq9_signal.evidence
    signal = _next_treatment_signal(draft, others, augmenters, knowledge)
    if signal and not responded:
        return "failed", f"adequate trial, then {signal.why}", signal.evidence
    if draft.ongoing:
        return "ongoing", f"{weeks_at_dose:.1f} weeks at an adequate dose, no failure yet", ()
    if responded:
        return "adequate-not-failed", "PHQ-9 improved by at least 50%", ()
    return "adequate-not-failed", "adequate trial ended without a sign of failure", ()


def build_trials(
    exposures: list[Exposure],
    phq9: tuple[Score, ...],
    *,
    now: datetime,
    knowledge: Knowledge,
) -> tuple[list[Trial], list[str]]:
    """Trials of antidepressants within the lookback window, and data gaps found on the way."""
    gaps: list[str] = []
    gap = knowledge.thresholds.merge_gap_weeks.value * WEEK
    lookback = knowledge.thresholds.episode_lookback_weeks.delta
    trial_exposures: list[Exposure] = []
    augmenters: list[Exposure] = []
    for exposure in exposures:
        ingredient = knowledge.ingredients[exposure.ingredient]
        if ingredient.role == "antidepressant":
            if ingredient.min_daily_dose_mg is None:
                continue  # no adequate-dose reference (e.g. dextromethorphan in Auvelity)
            trial_exposures.append(exposure)
        elif ingredient.role == "augmenter":
            minimum = ingredient.min_daily_dose_mg
            if exposure.daily_mg is None:
                gaps.append(
                    f"{exposure.ref}: {exposure.ingredient} dose unknown; "
                    "not counted as augmentation"
                )
            elif minimum is None or exposure.daily_mg >= minimum:
                augmenters.append(exposure)
    drafts = _merge(trial_exposures, gap)
    phq9_timeline = _Timeline(phq9)
    candidates = [d for d in drafts if _treats_depression(d, knowledge)]
    trials: list[Trial] = []
    for draft in drafts:
        if draft.end < now - lookback:
            continue
        outcome, why, extra = _classify(draft, candidates, augmenters, phq9_timeline, knowledge)
        doses = [e.daily_mg for e in draft.exposures if e.daily_mg is not None]
        refs = list(dict.fromkeys(e.ref for e in draft.exposures))
        trials.append(
            Trial(
                ingredient=draft.ingredient,
                outcome=outcome,
                start=draft.start,
                end=None if draft.ongoing else draft.end,
                weeks=round((draft.end - draft.start) / WEEK, 1),
                max_daily_dose_mg=max(doses) if doses else None,
                evidence=tuple(refs + [r for r in extra if r not in refs]),
                why=why,
            )
        )
    return trials, gaps


def _treats_depression(draft: _Draft, knowledge: Knowledge) -> bool:
    """Whether a trial can be the "next treatment" of a switch (not a sleep/pain use)."""
    if all(e.non_depression_use for e in draft.exposures):
        return False
    ceiling = knowledge.ingredients[draft.ingredient].non_depression_max_daily_mg
    doses = [e.daily_mg for e in draft.exposures if e.daily_mg is not None]
    return not (ceiling is not None and doses and max(doses) <= ceiling)


def count_failed(trials: list[Trial]) -> int:
    """Distinct ingredients with a failed adequate trial."""
    return len({t.ingredient for t in trials if t.outcome == "failed"})
