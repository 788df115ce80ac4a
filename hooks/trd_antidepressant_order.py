"""``trd-antidepressant-order`` on ``order-select``.

A selected draft MedicationRequest for a further antidepressant, gated on the same assessment as
patient-view (clinical review M3):

- refer-for-evaluation with treatment-resistant depression -> one card suggesting evaluation for
  ketamine/esketamine before the further trial, with the referral suggestion;
- not-recommended with treatment-resistant depression -> one card saying why evaluation is not
  suggested (contraindications or label warnings);
- insufficient-data on the treatment-resistance count (unknown doses, unread medication history,
  no diagnosis) -> one card saying what to verify, without a suggestion;
- otherwise (bipolar disorder, fewer failures, other drugs) -> no card. A selected order whose
  drug cannot be identified is named only when the patient is one failure or less from the
  threshold (where the card would matter).
"""

from __future__ import annotations

from dataclasses import replace

from hooks.base import HookInput, HookResult
from hooks.cards import Card, shorten
from hooks.orders import draft_medication_orders
from hooks.override_reasons import REFERRAL_REASONS
from hooks.patient_data import patient_assessment
from hooks.render import (
    ATRQ_LABEL,
    PI_LABEL,
    detail,
    findings_text,
    links,
    referral_suggestion,
    source,
    verify_text,
    with_evidence_link,
)
from hooks.rules.candidates import TRD_INDICATION
from hooks.rules.findings import Assessment
from hooks.rules.suppression import feedback_suppression, in_progress_suppression

SERVICE_ID = "trd-antidepressant-order"
TRD = "treatment-resistant-depression"


def evaluate(hook_input: HookInput) -> HookResult:
    knowledge = hook_input.knowledge
    facts, assessment = patient_assessment(hook_input)
    selections = set(hook_input.context.selections)
    drafts = draft_medication_orders(hook_input, only=selections)
    gaps = [*drafts.notes, *(f"{ref} (draft order) could not be read" for ref in drafts.unreadable)]
    antidepressants = [
        name
        for order in drafts.orders
        for name in (i.name for i in order.ingredients)
        if knowledge.ingredients[name].role == "antidepressant"
        # Ingredients without an adequate-dose reference (dextromethorphan in cough syrups and
        # Auvelity) form no trial, so ordering them is not "a further antidepressant trial".
        and knowledge.ingredients[name].min_daily_dose_mg is not None
    ]
    extra = {"selected_antidepressants": antidepressants, "order_gaps": gaps}
    deceased = facts.patient is not None and facts.patient.deceased
    if not antidepressants or deceased:
        return HookResult([], assessment, extra)
    drug = antidepressants[0]
    count = assessment.failed_adequate_trials
    patient_id = hook_input.context.patientId
    trd = TRD in assessment.candidate_reasons
    label = (
        "Esketamine (SPRAVATO) is approved for treatment-resistant depression, alone or with "
        "an oral antidepressant."
        if assessment.esketamine_indication == TRD_INDICATION
        else "Esketamine's label needs two different antidepressants to have failed; "
        "off-label ketamine may be considered."
    )
    if assessment.recommendation == "refer-for-evaluation" and trd:
        card = Card(
            kind="select-referral",
            summary=shorten(
                f"{count} failed adequate treatment regimens: consider ketamine/esketamine "
                f"evaluation before {drug}."
            ),
            indicator="info",
            detail=detail(
                assessment,
                heading=(
                    f"A further antidepressant trial ({drug}) is being ordered for a patient "
                    f"who already has treatment-resistant depression. {label}"
                ),
                knowledge=knowledge,
            ),
            source=source(knowledge, PI_LABEL),
            suggestions=[
                referral_suggestion(patient_id, assessment, hook_input.now, knowledge=knowledge)
            ],
            overrideReasons=list(REFERRAL_REASONS),
            selectionBehavior="at-most-one",
            links=links(knowledge, PI_LABEL, ATRQ_LABEL),
        )
    elif assessment.recommendation == "not-recommended" and trd:
        names = findings_text(assessment.contraindications)
        card = Card(
            kind="select-not-suggested",
            summary=shorten(
                f"{count} failed adequate treatment regimens before {drug}; ketamine/esketamine "
                f"not suggested: {names}."
            ),
            indicator="info",
            detail=detail(
                assessment,
                heading=(
                    "The patient already meets the treatment-resistant threshold. "
                    f"Ketamine/esketamine evaluation is not suggested because of: {names}."
                ),
                knowledge=knowledge,
            ),
            source=source(knowledge, ATRQ_LABEL),
            links=links(knowledge, ATRQ_LABEL, PI_LABEL),
        )
    elif assessment.recommendation == "insufficient-data" and not assessment.candidate_reasons:
        summary, heading = verify_text(assessment)
        card = Card(
            kind="select-verify",
            summary=shorten(f"Before {drug}: {summary[0].lower()}{summary[1:]}"),
            indicator="info",
            detail=detail(
                assessment,
                heading=f"A further antidepressant trial ({drug}) is being ordered. {heading}",
                knowledge=knowledge,
            ),
            source=source(knowledge, ATRQ_LABEL),
            links=links(knowledge, ATRQ_LABEL, PI_LABEL),
        )
    else:
        return HookResult([], assessment, extra)
    assessment, cards = _apply_suppression(assessment, card, drug, hook_input)
    return HookResult(with_evidence_link(cards, hook_input, SERVICE_ID), assessment, extra)


WITHHELD_BY_REFERRAL = frozenset({"select-referral", "select-verify"})


def _apply_suppression(
    assessment: Assessment, card: Card, drug: str, hook_input: HookInput
) -> tuple[Assessment, list[Card]]:
    """Treatment in progress: no card. A referral in progress: the referral or verify card
    becomes one naming the existing referral. A clinician's feedback on an earlier referral
    card: no referral card (``hooks/rules/suppression.py``)."""
    suppression = in_progress_suppression(assessment)
    lifted = None
    if suppression is None:
        suppression, lifted = feedback_suppression(
            assessment, hook_input.suppression, hook_input.now
        )
    if suppression is None:
        return replace(assessment, suppression_lifted=lifted), [card]
    if suppression.reason == "treatment-in-progress":
        cards: list[Card] = []
    elif suppression.reason == "referral-in-progress":
        if card.kind not in WITHHELD_BY_REFERRAL:
            return assessment, [card]
        cards = [_referral_exists_card(assessment, suppression.detail, drug, hook_input)]
    elif card.kind == "select-referral":
        cards = []
    else:
        return assessment, [card]
    withheld = replace(suppression, withheld=(card.kind,))
    return replace(assessment, suppression=withheld), cards


def _referral_exists_card(
    assessment: Assessment, referral: str, drug: str, hook_input: HookInput
) -> Card:
    knowledge = hook_input.knowledge
    return Card(
        kind="select-referral-exists",
        summary=shorten(
            f"Before {drug}: a referral for ketamine/esketamine evaluation is already in progress."
        ),
        indicator="info",
        detail=detail(
            assessment,
            heading=(
                f"A further antidepressant trial ({drug}) is being ordered. A referral for "
                f"ketamine/esketamine evaluation is already in progress: {referral}. No new "
                "referral is suggested."
            ),
            knowledge=knowledge,
        ),
        source=source(knowledge, ATRQ_LABEL),
        links=links(knowledge, ATRQ_LABEL, PI_LABEL),
    )
