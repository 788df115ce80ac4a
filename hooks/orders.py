"""Draft orders from an order-select / order-sign context, mapped like any medication record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_mappers.collect import bundle_resources, index_medications
from fhir_mappers.facts import MedicationFact
from fhir_mappers.medication import map_medication
from fhir_mappers.parse import is_valid, resource_ref
from hooks.base import HookInput
from hooks.patient_data import all_resources
from hooks.rules.medications import ResolvedIngredient, resolve_ingredients


@dataclass(frozen=True)
class DraftOrder:
    fact: MedicationFact
    ingredients: list[ResolvedIngredient]
    resource: dict[str, Any]


def draft_medication_orders(
    hook_input: HookInput, only: set[str] | None = None
) -> tuple[list[DraftOrder], list[str]]:
    """MedicationRequests in ``context.draftOrders`` (optionally only the selected ones)."""
    gaps: list[str] = []
    resources = bundle_resources(hook_input.context.get("draftOrders"))
    medications = index_medications(resources + all_resources(hook_input))
    orders: list[DraftOrder] = []
    for resource in resources:
        if resource.get("resourceType") != "MedicationRequest":
            continue
        ref = resource_ref(resource)
        if only is not None and ref not in only:
            continue
        if not is_valid(resource):
            gaps.append(f"{ref[:120]} (draft order) is malformed and was not checked")
            continue
        fact, _ = map_medication(resource, medications)
        ingredients = resolve_ingredients(fact.product, fact.ingredients, hook_input.knowledge)
        orders.append(DraftOrder(fact, ingredients, resource))
    return orders, gaps
