"""``trd-antidepressant-order`` on ``order-select``.

A selected draft MedicationRequest for an antidepressant while the patient already has at least
two failed adequate trials -> one card suggesting evaluation for ketamine/esketamine before a
further trial (the referral suggestion only when nothing contraindicates it). Otherwise no card.
"""

from __future__ import annotations

from hooks.base import HookInput, HookResult
from hooks.cards import Card, shorten
from hooks.orders import draft_medication_orders
from hooks.patient_data import patient_assessment
from hooks.render import (
    ATRQ_LABEL,
    CI_TEXT,
    PI_LABEL,
    detail,
    links,
    referral_suggestion,
    source,
)

SERVICE_ID = "trd-antidepressant-order"


def evaluate(hook_input: HookInput) -> HookResult:
    knowledge = hook_input.knowledge
    facts, assessment = patient_assessment(hook_input)
    selections = {str(s) for s in hook_input.context.get("selections") or []}
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
    threshold = int(knowledge.thresholds.trd_min_failed_trials.value)
    deceased = facts.patient is not None and facts.patient.deceased
    if not antidepressants or assessment.failed_adequate_trials < threshold or deceased:
        return HookResult([], assessment, extra)
    drug = antidepressants[0]
    count = assessment.failed_adequate_trials
    patient_id = str(hook_input.context["patientId"])
    if assessment.contraindications or assessment.incomplete:
        names = ", ".join(CI_TEXT[c.id] for c in assessment.contraindications) or (
            "contraindication screen incomplete"
        )
        card = Card(
            kind="select-not-suggested",
            summary=shorten(
                f"{count} failed adequate antidepressant trials before {drug}; "
                f"ketamine/esketamine contraindicated ({names})."
            ),
            indicator="info",
            detail=detail(
                assessment,
                heading=(
                    f"The patient already meets the treatment-resistant threshold. "
                    f"Ketamine/esketamine evaluation is not suggested because of: {names}."
                ),
            ),
            source=source(knowledge, ATRQ_LABEL),
            links=links(knowledge, ATRQ_LABEL, PI_LABEL),
        )
    else:
        card = Card(
            kind="select-referral",
            summary=shorten(
                f"{count} failed adequate antidepressant trials: consider ketamine/esketamine "
                f"evaluation before {drug}."
            ),
            indicator="info",
            detail=detail(
                assessment,
                heading=(
                    f"A further antidepressant trial ({drug}) is being ordered for a patient "
                    "who already has treatment-resistant depression. Esketamine (SPRAVATO) is "
                    "approved for this, alone or with an oral antidepressant."
                ),
            ),
            source=source(knowledge, PI_LABEL),
            suggestions=[referral_suggestion(patient_id, assessment, hook_input.now)],
            selectionBehavior="at-most-one",
            links=links(knowledge, PI_LABEL, ATRQ_LABEL),
        )
    return HookResult([card], assessment, extra)
