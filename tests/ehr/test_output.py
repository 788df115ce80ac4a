"""The command line's reading of an explain answer: why a card did or did not fire."""

from __future__ import annotations

from typing import Any

import pytest

from ehr import output

SUPPRESSED: dict[str, Any] = {
    "recommendation": "refer-for-evaluation",
    "failed_adequate_trials": 2,
    "candidate_reasons": ["treatment-resistant-depression"],
    "in_progress": [
        {
            "id": "referral-in-progress",
            "evidence": ["ServiceRequest/sr-1"],
            "detail": "evaluation referral (ServiceRequest/sr-1, active, 2026-11-20)",
        }
    ],
    "suppression": {
        "reason": "referral-in-progress",
        "evidence": ["ServiceRequest/sr-1"],
        "detail": "evaluation referral (ServiceRequest/sr-1, active, 2026-11-20)",
        "withheld": ["screen-referral"],
    },
}
LIFTED: dict[str, Any] = {
    "recommendation": "refer-for-evaluation",
    "failed_adequate_trials": 3,
    "suppression_lifted": "the earlier feedback (patient declined) no longer holds: "
    "failed adequate regimens 2 -> 3",
}
MINIMAL: dict[str, Any] = {"recommendation": "not-a-candidate", "failed_adequate_trials": 0}


@pytest.mark.parametrize(
    ("assessment", "expected"),
    [
        (SUPPRESSED, ("card withheld (screen-referral): referral-in-progress", "in progress:")),
        (LIFTED, ("card shown again: the earlier feedback (patient declined)",)),
        (MINIMAL, ("Recommendation: not-a-candidate",)),
    ],
    ids=["withheld", "lifted", "no-optional-members"],
)
def test_print_assessment_says_why_a_card_was_withheld_or_shown(
    assessment: dict[str, Any], expected: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    """Verify that the printed assessment names a withheld card and why, a lifted suppression,
    and copes with an answer whose optional members are absent."""
    output.console.width = 200
    output.print_assessment(assessment)
    printed = " ".join(capsys.readouterr().out.split())
    for text in expected:
        assert " ".join(text.split()) in printed
