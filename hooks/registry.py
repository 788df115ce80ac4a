"""The CDS services, in discovery order: the single source for discovery and dispatch."""

from __future__ import annotations

from hooks import ketamine_order_safety, trd_antidepressant_order, trd_ketamine_screen
from hooks.base import HookService
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
            required_context=("userId", "patientId"),
            evaluate=trd_ketamine_screen.evaluate,
            usage_requirements=USAGE,
        ),
        HookService(
            id=trd_antidepressant_order.SERVICE_ID,
            hook="order-select",
            title="Antidepressant order after two failed trials",
            description=(
                "When another antidepressant is selected for a patient who already has two or "
                "more failed adequate trials, suggests evaluation for ketamine/esketamine first."
            ),
            prefetch=prefetch,
            required_prefetch=REQUIRED_KEYS,
            required_context=("userId", "patientId", "selections", "draftOrders"),
            evaluate=trd_antidepressant_order.evaluate,
            usage_requirements=USAGE,
        ),
        HookService(
            id=ketamine_order_safety.SERVICE_ID,
            hook="order-sign",
            title="Ketamine/esketamine order safety",
            description=(
                "Checks draft ketamine and esketamine orders for contraindications, a recent "
                "blood pressure, body weight and the IV ketamine dose (0.5 mg/kg)."
            ),
            prefetch=prefetch,
            required_prefetch=REQUIRED_KEYS,
            required_context=("userId", "patientId", "draftOrders"),
            evaluate=ketamine_order_safety.evaluate,
            usage_requirements=USAGE,
        ),
    )
