"""Where the current depressive episode starts. Pure.

TRD is failure of treatments *in the current episode* (SPRAVATO PI; TRANSFORM). The episode
starts after the last documented remission within the lookback window (``episode_lookback_weeks``,
Zhdanava 2021's two years): a full-remission diagnosis (F32.5, F33.40, F33.42 and SNOMED CT
equivalents), a PHQ-9 total below ``phq9_remission_score`` (Kroenke 2001: minimal), or a
regimen stopped in remission. Trials that ended by then belong to a previous episode and are not
counted (clinical review M9). Without a documented remission the episode is the lookback window.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from fhir_mappers.dates import shift
from fhir_mappers.facts import Facts
from hooks.rules.conditions import is_recorded, matching
from hooks.rules.findings import Episode, Trial
from hooks.rules.knowledge import Knowledge
from hooks.rules.questionnaires import Score


def current_episode(
    facts: Facts,
    *,
    now: datetime,
    knowledge: Knowledge,
    totals: tuple[Score, ...],
    remissions: list[tuple[datetime, str]],
) -> Episode:
    limits = knowledge.thresholds
    lookback = limits.episode_lookback_weeks.value
    lookback_start = shift(now, weeks=-lookback) or now
    boundaries: list[tuple[datetime, str]] = []
    for diagnosis in matching(facts.diagnoses, knowledge.code_list("depression-full-remission")):
        if is_recorded(diagnosis) and diagnosis.noted is not None:
            boundaries.append((diagnosis.noted, f"{diagnosis.concept.label()} ({diagnosis.ref})"))
    for score in totals:
        if score.value < limits.phq9_remission_score.value:
            boundaries.append((score.effective, f"PHQ-9 {score.value:g} ({score.ref})"))
    boundaries += [(end, f"stopped in remission ({ref})") for end, ref in remissions]
    inside = [b for b in boundaries if lookback_start < b[0] <= now]
    if not inside:
        return Episode(lookback_start, f"the last {lookback:g} weeks (no remission documented)")
    when, what = max(inside, key=lambda b: b[0])
    return Episode(when, f"after a documented remission on {when.date().isoformat()}: {what}")


def in_episode(trials: list[Trial], episode: Episode) -> list[Trial]:
    """The trials, those that ended by the episode's start marked as a previous episode's."""
    return [
        replace(t, episode="previous") if t.end is not None and t.end <= episode.start else t
        for t in trials
    ]
