"""``trd-ketamine-screen`` on ``patient-view``: one card per recommendation, none when idle.

- refer-for-evaluation -> 1 card (warning when suicidal ideation is a reason, else info) listing
  the trials and reasons, with a suggestion that creates a draft referral ServiceRequest;
- not-recommended -> 1 warning card naming each contraindication and its evidence; no referral;
- insufficient-data -> 1 info card saying what to verify;
- not-a-candidate -> no card (alert fatigue).
"""

from __future__ import annotations

from hooks.base import HookInput, HookResult
from hooks.cards import Card, shorten
from hooks.patient_data import patient_assessment
from hooks.render import (
    ATRQ_LABEL,
    CI_TEXT,
    CONSENSUS_LABEL,
    PI_LABEL,
    detail,
    links,
    reasons_text,
    referral_suggestion,
    source,
)
from hooks.rules.findings import SCREEN_LABELS, Assessment
from hooks.rules.knowledge import Knowledge

SERVICE_ID = "trd-ketamine-screen"


def cards_for(assessment: Assessment, patient_id: str, hook_input: HookInput) -> list[Card]:
    knowledge: Knowledge = hook_input.knowledge
    if assessment.recommendation == "refer-for-evaluation":
        summary = shorten(
            "Consider ketamine/esketamine evaluation: " + reasons_text(assessment) + "."
        )
        indicator = "warning" if "suicidal-ideation" in assessment.candidate_reasons else "info"
        return [
            Card(
                kind="screen-referral",
                summary=summary,
                indicator=indicator,
                detail=detail(
                    assessment,
                    heading=(
                        "This patient may benefit from evaluation for esketamine (SPRAVATO, "
                        "approved for treatment-resistant depression alone or with an oral "
                        "antidepressant; REMS) or off-label IV ketamine (0.5 mg/kg over 40 min)."
                    ),
                ),
                source=source(knowledge, PI_LABEL),
                suggestions=[referral_suggestion(patient_id, assessment, hook_input.now)],
                selectionBehavior="at-most-one",
                links=links(knowledge, PI_LABEL, CONSENSUS_LABEL, ATRQ_LABEL),
            )
        ]
    if assessment.recommendation == "not-recommended":
        names = ", ".join(CI_TEXT[c.id] for c in assessment.contraindications)
        return [
            Card(
                kind="screen-not-recommended",
                summary=shorten(f"Ketamine/esketamine not recommended: {names}."),
                indicator="warning",
                detail=detail(
                    assessment,
                    heading=(
                        f"Candidate for ketamine/esketamine ({reasons_text(assessment)}), but "
                        "the record shows contraindications or label warnings."
                    ),
                ),
                source=source(knowledge, PI_LABEL),
                links=links(knowledge, PI_LABEL, CONSENSUS_LABEL),
            )
        ]
    if assessment.recommendation == "insufficient-data":
        summary, heading = _insufficient(assessment)
        return [
            Card(
                kind="screen-verify",
                summary=shorten(summary),
                indicator="info",
                detail=detail(assessment, heading=heading),
                source=source(knowledge, ATRQ_LABEL),
                links=links(knowledge, ATRQ_LABEL, PI_LABEL),
            )
        ]
    return []


def _insufficient(assessment: Assessment) -> tuple[str, str]:
    """Summary and heading of the "verify first" card: what exactly could not be settled."""
    undone = assessment.incomplete
    if assessment.candidate_reasons and undone:
        names = ", ".join(SCREEN_LABELS[s.id] for s in undone)
        return (
            "Possible ketamine/esketamine candidate: the contraindication screen is incomplete.",
            f"The record shows {reasons_text(assessment)}, but these contraindication checks "
            f"could not be done because data could not be read: {names}. Verify them in the "
            "chart before a referral (what failed is listed under Not verified).",
        )
    trd = assessment.screen("treatment-resistant-depression")
    if trd is not None and trd.why:
        return (
            "Possible treatment-resistant depression: part of the medication history could not "
            "be read; verify.",
            "Antidepressant trials were counted from the data that could be read; what could "
            "not be read may change the count (listed under Not verified).",
        )
    return (
        "Possible ketamine/esketamine candidate: verify antidepressant doses, durations and "
        "diagnosis.",
        "The record may meet criteria for treatment-resistant depression, but the data below "
        "must be verified first.",
    )


def evaluate(hook_input: HookInput) -> HookResult:
    _, assessment = patient_assessment(hook_input)
    patient_id = str(hook_input.context["patientId"])
    return HookResult(cards_for(assessment, patient_id, hook_input), assessment)
