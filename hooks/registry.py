"""The CDS services, in discovery order: the single source for discovery and dispatch."""

from __future__ import annotations

from hooks import ketamine_order_safety, trd_antidepressant_order, trd_ketamine_screen
from hooks.base import HookService
from hooks.contexts import OrderSelectContext, OrderSignContext, PatientViewContext
from hooks.patient_data import REQUIRED_KEYS, prefetch_templates
from hooks.rules.knowledge import Knowledge

USAGE = (
    "Send the prefetch below, or fhirServer (+ fhirAuthorization) so the service can query it. "
    "Patient, Condition and MedicationRequest data are required."
)


def build_registry(knowledge: Knowledge) -> tuple[HookService, ...]:
    prefetch = prefetch_templates(knowledge)
    return (
        HookService(
            id=trd_ketamine_screen.SERVICE_ID,
            hook="patient-view",
            title="Treatment-resistant depression: ketamine/esketamine screen",
            description=(
                "Counts failed adequate antidepressant trials, screens contraindications to "
                "ketamine and esketamine, and suggests a referral for evaluation when the "
                "patient qualifies."
            ),
            prefetch=prefetch,
            required_prefetch=REQUIRED_KEYS,
            context_model=PatientViewContext,
            evaluate=trd_ketamine_screen.evaluate,
            usage_requirements=USAGE,
        ),
        HookService(
            id=trd_antidepressant_order.SERVICE_ID,
            hook="order-select",
            title="Antidepressant order in treatment-resistant depression",
            description=(
                "When another antidepressant is selected for a patient whose record already "
                "shows treatment-resistant depression, suggests evaluation for "
                "ketamine/esketamine first (or says what to verify)."
            ),
            prefetch=prefetch,
            required_prefetch=REQUIRED_KEYS,
            context_model=OrderSelectContext,
            evaluate=trd_antidepressant_order.evaluate,
            usage_requirements=USAGE,
        ),
        HookService(
            id=ketamine_order_safety.SERVICE_ID,
            hook="order-sign",
            title="Ketamine/esketamine order safety",
            description=(
                "Checks draft ketamine and esketamine orders for contraindications and label "
                "warnings, the esketamine dose, schedule and indication, the ketamine dose per "
                "kg and infusion time, the latest blood pressure and co-medications."
            ),
            prefetch=prefetch,
            required_prefetch=REQUIRED_KEYS,
            context_model=OrderSignContext,
            evaluate=ketamine_order_safety.evaluate,
            usage_requirements=USAGE,
        ),
    )
