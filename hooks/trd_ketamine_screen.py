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
from hooks.rules.findings import Assessment
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
        return [
            Card(
                summary=shorten(
                    "Possible ketamine/esketamine candidate: verify antidepressant doses, "
                    "durations and diagnosis."
                ),
                indicator="info",
                detail=detail(
                    assessment,
                    heading=(
                        "The record may meet criteria for treatment-resistant depression, but "
                        "the data below must be verified first."
                    ),
                ),
                source=source(knowledge, ATRQ_LABEL),
                links=links(knowledge, ATRQ_LABEL, PI_LABEL),
            )
        ]
    return []


def evaluate(hook_input: HookInput) -> HookResult:
    _, assessment = patient_assessment(hook_input)
    patient_id = str(hook_input.context["patientId"])
    return HookResult(cards_for(assessment, patient_id, hook_input), assessment)
