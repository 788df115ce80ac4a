"""hooks/rules/episode.py: where the current depressive episode starts, and which trials are in it.

The episode starts after the last documented remission inside the lookback window (a
full-remission diagnosis, a PHQ-9 total below the remission score, a regimen stopped in
remission); without one it is the lookback window (clinical review M9).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from fhir_mappers.facts import DiagnosisFact
from hooks.rules.episode import current_episode, in_episode
from hooks.rules.findings import Episode, Trial
from hooks.rules.knowledge import Knowledge
from hooks.rules.questionnaires import Score
from tests.factories import NOW
from tests.hooks.rules.facts import KNOWLEDGE, LIMITS, ago, dx, mdd, record, score, text

LOOKBACK_WEEKS = LIMITS.episode_lookback_weeks.value
LOOKBACK_START = NOW - timedelta(weeks=LOOKBACK_WEEKS)
REMISSION_SCORE = LIMITS.phq9_remission_score.value


def episode(
    *diagnoses: DiagnosisFact,
    totals: tuple[Score, ...] = (),
    remissions: list[tuple[datetime, str]] | None = None,
    knowledge: Knowledge = KNOWLEDGE,
) -> Episode:
    return current_episode(
        record(mdd(), *diagnoses),
        now=NOW,
        knowledge=knowledge,
        totals=totals,
        remissions=remissions or [],
    )


def test_current_episode_no_remission_is_the_lookback_window() -> None:
    """Verify that without a documented remission the episode is the last
    episode_lookback_weeks, and says so."""
    found = episode()
    assert found.start == LOOKBACK_START
    assert f"{LOOKBACK_WEEKS:g} weeks" in found.basis and "no remission" in found.basis


def test_current_episode_operator_lookback_setting_moves_the_start() -> None:
    """Verify that an operator's episode lookback (a knowledge override) is the default start."""
    shorter = KNOWLEDGE.with_thresholds(episode_lookback_weeks=LOOKBACK_WEEKS / 2)
    found = episode(knowledge=shorter)
    assert found.start == NOW - timedelta(weeks=LOOKBACK_WEEKS / 2)


@pytest.mark.parametrize(
    ("diagnosis", "start"),
    [
        (dx("F33.42", weeks_ago=30), ago(30)),
        (dx("F32.5", status="resolved", weeks_ago=30), ago(30)),
        (dx(text("Recurrent major depression in full remission"), weeks_ago=30), ago(30)),
        (dx("F33.42", weeks_ago=None, recorded_weeks_ago=20), ago(20)),
        (dx("F33.42", verification="refuted", weeks_ago=30), LOOKBACK_START),
        (dx("F33.42", verification="entered-in-error", weeks_ago=30), LOOKBACK_START),
        (dx("F33.42", weeks_ago=None), LOOKBACK_START),
        (dx("F33.42", weeks_ago=LOOKBACK_WEEKS + 1), LOOKBACK_START),
        (dx("F33.42", weeks_ago=-2), LOOKBACK_START),
        (dx("F33.41", weeks_ago=30), LOOKBACK_START),
    ],
    ids=[
        "full-remission-code",
        "resolved-full-remission-code",
        "full-remission-text",
        "recorded-date-when-no-onset",
        "refuted",
        "entered-in-error",
        "undated",
        "before-the-lookback",
        "in-the-future",
        "partial-remission-is-not-remission",
    ],
)
def test_current_episode_full_remission_diagnosis_starts_the_episode(
    diagnosis: DiagnosisFact, start: datetime
) -> None:
    """Verify that a recorded full-remission diagnosis inside the lookback starts the episode
    when it was noted (refuted, undated, too old or future ones do not), naming it."""
    found = episode(diagnosis)
    assert found.start == start
    assert (diagnosis.ref in found.basis) is (start != LOOKBACK_START)


@pytest.mark.parametrize(
    ("value", "boundary"),
    [
        (REMISSION_SCORE - 1, True),
        (0, True),
        (REMISSION_SCORE, False),
        (REMISSION_SCORE + 10, False),
    ],
    ids=["below-remission-score", "zero", "at-remission-score", "depressed"],
)
def test_current_episode_phq9_below_remission_score_starts_the_episode(
    value: float, boundary: bool
) -> None:
    """Verify that a PHQ-9 total below phq9_remission_score starts the episode, and one at it
    does not."""
    low = score(value, weeks_ago=20)
    found = episode(totals=(low,))
    assert found.start == (ago(20) if boundary else LOOKBACK_START)
    assert (low.ref in found.basis) is boundary


def test_current_episode_regimen_stopped_in_remission_starts_the_episode() -> None:
    """Verify that a regimen stopped in remission (from build_trials) starts the episode."""
    found = episode(remissions=[(ago(40), "MedicationRequest/mr-x")])
    assert found.start == ago(40)
    assert "stopped in remission" in found.basis and "MedicationRequest/mr-x" in found.basis


def test_current_episode_latest_remission_wins() -> None:
    """Verify that of several documented remissions the latest starts the episode."""
    found = episode(
        dx("F33.42", weeks_ago=60),
        totals=(score(3, weeks_ago=50), score(18, weeks_ago=10)),
        remissions=[(ago(30), "MedicationRequest/mr-y")],
    )
    assert found.start == ago(30)


def test_current_episode_remission_before_lookback_is_ignored() -> None:
    """Verify that a remission older than the lookback does not move the start."""
    found = episode(
        totals=(score(2, weeks_ago=LOOKBACK_WEEKS + 5),),
        remissions=[(ago(LOOKBACK_WEEKS + 1), "MedicationRequest/mr-z")],
    )
    assert found.start == LOOKBACK_START


def _trial(end: datetime | None) -> Trial:
    return Trial(
        ingredient="sertraline",
        outcome="failed" if end is not None else "ongoing",
        start=ago(80),
        end=end,
        weeks=10.0,
        max_daily_dose_mg=100.0,
        evidence=(),
        why="",
        ingredients=("sertraline",),
    )


@pytest.mark.parametrize(
    ("end", "part"),
    [
        (ago(41), "previous"),
        (ago(40), "previous"),
        (ago(39), "current"),
        (None, "current"),
    ],
    ids=["ended-before-the-start", "ended-at-the-start", "ended-after-the-start", "ongoing"],
)
def test_in_episode_trial_that_ended_by_the_start_is_previous(
    end: datetime | None, part: str
) -> None:
    """Verify that a trial that ended by the episode's start belongs to a previous episode and
    one that ended later, or is ongoing, to the current one."""
    (trial,) = in_episode([_trial(end)], Episode(ago(40), "test"))
    assert trial.episode == part
