"""Draft orders from an order-select / order-sign context, read tolerantly.

A draft order is a work in progress: EHRs (and the CDS Hooks sandbox) send it with fields in odd
shapes (``category`` as one object) or missing (no ``intent`` until a drug is chosen). So:

- a defect in an element no rule reads never drops the order;
- an element a rule reads that is malformed is read as absent and named in ``defects`` (the
  order is still checked with what can be read, and the card says what could not be);
- an order whose drug cannot be identified (a medication element that cannot be read, or a
  referenced Medication that was not sent) is ``unreadable``: the hook says so in a card, since
  it may be a ketamine or esketamine order;
- an order with no medication element at all is one where no drug has been chosen yet: nothing
  to check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_mappers.collect import bundle_resources, index_medications
from fhir_mappers.facts import MedicationFact
from fhir_mappers.medication import map_medication, resolve_medication
from fhir_mappers.parse import inspect, resource_ref
from hooks.base import HookInput
from hooks.patient_data import all_resources
from hooks.rules.medications import ResolvedIngredient, resolve_ingredients

MEDICATION_ELEMENTS = ("medicationCodeableConcept", "medicationReference")


@dataclass(frozen=True)
class DraftOrder:
    fact: MedicationFact
    ingredients: list[ResolvedIngredient]
    resource: dict[str, Any]
    defects: tuple[str, ...] = ()
    """Elements a rule reads that were malformed and read as absent."""


@dataclass(frozen=True)
class DraftOrders:
    orders: list[DraftOrder]
    unreadable: list[str]
    """References of draft MedicationRequests whose drug could not be identified."""
    notes: list[str]


def draft_medication_orders(hook_input: HookInput, only: set[str] | None = None) -> DraftOrders:
    """MedicationRequests in ``context.draftOrders`` (optionally only the selected ones)."""
    resources = bundle_resources(hook_input.context.draftOrders)
    medications = index_medications(resources + all_resources(hook_input))
    orders: list[DraftOrder] = []
    unreadable: list[str] = []
    notes: list[str] = []
    for resource in resources:
        if resource.get("resourceType") != "MedicationRequest":
            continue
        ref = resource_ref(resource)[:120]
        if only is not None and ref not in only:
            continue
        if not any(resource.get(e) not in (None, "", {}, []) for e in MEDICATION_ELEMENTS):
            continue  # no drug chosen yet
        inspection = inspect(resource)
        defects = inspection.bad_fields if not inspection.usable else ()
        readable = {k: v for k, v in resource.items() if k not in defects}
        product, ingredients, resolved = resolve_medication(readable, medications)
        if product.is_empty() and not ingredients:
            unreadable.append(ref)
            continue
        fact, _ = map_medication(readable, medications, resolution=(product, ingredients, resolved))
        names = resolve_ingredients(fact.product, fact.ingredients, hook_input.knowledge)
        if defects:
            notes.append(f"{ref} (draft order): {', '.join(defects)} could not be read")
        orders.append(DraftOrder(fact, names, resource, tuple(defects)))
    return DraftOrders(orders, unreadable, notes)
