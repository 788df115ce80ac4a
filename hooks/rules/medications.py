"""Medication records -> exposures per ingredient (the unit the trial rules work on). Pure.

Product normalisation order (clinical-knowledge §A3.1, pitfall E1):
1. an RxNorm coding found in the product table (SCD/SBD -> ingredients and strengths);
2. an RxNorm ingredient (IN) coding;
3. ``Medication.ingredient`` items (contained or referenced Medication), by code or name;
4. generic or brand names found in the text and displays (text-only entries), with a strength read
   from "<name> ... <n> MG" when the text has one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from fhir_mappers.codes import RXNORM
from fhir_mappers.dates import shift
from fhir_mappers.facts import Concept, IngredientStrength, MedicationFact
from fhir_mappers.medication import daily_amount
from hooks.rules.knowledge import Knowledge

_STRENGTH = re.compile(r"(\d+(?:\.\d+)?)\s*mg\b", re.IGNORECASE)

SKIPPED_STATUSES = frozenset({"entered-in-error", "cancelled", "not-taken", "intended", "draft"})
"""Records that say the drug was never taken (or is not yet ordered)."""


@dataclass(frozen=True)
class ResolvedIngredient:
    name: str
    strength_mg: float | None
    non_depression_use: str | None = None


@dataclass(frozen=True)
class Exposure:
    """One record's exposure to one ingredient."""

    ingredient: str
    role: str
    ref: str
    start: datetime
    end: datetime
    ongoing: bool
    daily_mg: float | None
    non_depression_use: str | None
    fact: MedicationFact


def _names_in(text: str, knowledge: Knowledge) -> list[ResolvedIngredient]:
    lowered = text.lower()
    found: dict[str, ResolvedIngredient] = {}
    for match in knowledge.name_pattern.finditer(lowered):
        name = knowledge.name_to_ingredient[match.group(1)]
        if name in found:
            continue
        strength = None
        tail = lowered[match.end() : match.end() + 60].split("/")[0]
        number = _STRENGTH.search(tail)
        if number:
            strength = float(number.group(1))
        found[name] = ResolvedIngredient(name, strength)
    return list(found.values())


def resolve_ingredients(
    product: Concept, ingredients: tuple[IngredientStrength, ...], knowledge: Knowledge
) -> list[ResolvedIngredient]:
    """The known ingredients of a product, each with its strength per unit when known."""
    for coding in product.codings:
        if coding.system == RXNORM and coding.code:
            known = knowledge.products_by_rxcui.get(coding.code)
            if known is not None:
                return [
                    ResolvedIngredient(i.name, i.strength_mg, known.non_depression_use)
                    for i in known.ingredients
                ]
    for coding in product.codings:
        if coding.system == RXNORM and coding.code in knowledge.ingredient_by_rxcui:
            strength = None
            for text in product.texts():
                named = _names_in(text, knowledge)
                if len(named) == 1:
                    strength = named[0].strength_mg
                    break
            return [ResolvedIngredient(knowledge.ingredient_by_rxcui[coding.code], strength)]
    resolved: dict[str, ResolvedIngredient] = {}
    for item in ingredients:
        name = None
        for coding in item.concept.codings:
            if coding.system == RXNORM and coding.code in knowledge.ingredient_by_rxcui:
                name = knowledge.ingredient_by_rxcui[coding.code]
        if name is None:
            for text in item.concept.texts():
                named = _names_in(text, knowledge)
                if named:
                    name = named[0].name
                    break
        if name is not None:
            resolved[name] = ResolvedIngredient(name, item.strength_mg)
    if resolved:
        return list(resolved.values())
    for text in product.texts():
        named = _names_in(text, knowledge)
        if named:
            return named
    return []


def is_known_drug(
    product: Concept, ingredients: tuple[IngredientStrength, ...], knowledge: Knowledge
) -> bool:
    return bool(resolve_ingredients(product, ingredients, knowledge))


def daily_mg(fact: MedicationFact, strength_mg: float | None, knowledge: Knowledge) -> float | None:
    """Daily dose in mg of one ingredient: dose x frequency, tablets x strength."""
    if fact.dose_per_kg:
        return None
    amount = daily_amount(fact, knowledge.thresholds.default_doses_per_day.value)
    if amount is None:
        return None
    if fact.dose_unit == "mg":
        return round(amount, 3)
    if fact.dose_unit in ("unit", "ml") and strength_mg is not None:
        return round(amount * strength_mg, 3)
    return None


def plausible_daily_mg(
    fact: MedicationFact, item: ResolvedIngredient, knowledge: Knowledge
) -> tuple[float | None, str | None]:
    """The daily dose, or None and why when it is implausibly high for the ingredient (more than
    ``implausible_dose_multiple`` times its adequate minimum): such a dose reads as unknown."""
    dose = daily_mg(fact, item.strength_mg, knowledge)
    minimum = knowledge.ingredients[item.name].min_daily_dose_mg
    if dose is None or not minimum:
        return dose, None
    if dose > minimum * knowledge.thresholds.implausible_dose_multiple.value or dose < 0:
        return None, (
            f"{fact.ref}: {item.name} {dose:,.6g} mg/day is implausible; read as an unknown dose"
        )
    return dose, None


def _reason_use(fact: MedicationFact, knowledge: Knowledge) -> str | None:
    """A stated indication (reasonCode or referenced Condition) other than depression.

    No stated reason: taken as a depression trial (most EHR orders carry none). Any depression
    reason: a depression trial. Only other reasons (insomnia, pain, PTSD, smoking...): not a
    depression trial, because the prescriber documented what it was for (DESIGN).
    """
    if not fact.reasons:
        return None
    depression = knowledge.code_list("depression-indication")
    for reason in fact.reasons:
        if any(depression.matches_code(c.system, c.code) for c in reason.codings) or any(
            depression.matches_text(t) for t in reason.texts()
        ):
            return None
    return f"prescribed for {fact.reasons[0].label()}"


STALE_ACTIVE_WEEKS = 52
"""An "active" order with no end or supply older than this is reported as a data gap (DESIGN)."""


def exposures(
    facts: tuple[MedicationFact, ...],
    *,
    now: datetime,
    knowledge: Knowledge,
    deceased_at: datetime | None = None,
) -> tuple[list[Exposure], list[str]]:
    """Exposures of every known ingredient, and data gaps for records that cannot be placed.

    Nothing is taken after the date of death; "now" is the end of anything still running.
    """
    out: list[Exposure] = []
    gaps: list[str] = []
    default_days = knowledge.thresholds.default_supply_days.value
    if deceased_at is not None and deceased_at < now:
        now = deceased_at
    products: dict[tuple[Concept, tuple[IngredientStrength, ...]], list[ResolvedIngredient]] = {}
    for fact in facts:
        if fact.status in SKIPPED_STATUSES or fact.intent == "proposal":
            continue
        key = (fact.product, fact.ingredients)
        resolved = products.get(key)
        if resolved is None:  # renewals repeat the same product: resolve it once
            resolved = products[key] = resolve_ingredients(
                fact.product, fact.ingredients, knowledge
            )
        if not resolved:
            continue
        if fact.start is None:
            names = ", ".join(r.name for r in resolved)
            gaps.append(f"{fact.ref}: {names} record has no date; not placed in any trial")
            continue
        ongoing = False
        if fact.end is not None:
            end = fact.end
        elif fact.supply_days is not None:
            end = shift(fact.start, days=fact.supply_days) or now
        elif fact.status == "active":
            end = now
            ongoing = True
            if fact.start < (shift(now, weeks=-STALE_ACTIVE_WEEKS) or fact.start):
                gaps.append(
                    f"{fact.ref}: active since {fact.start.date().isoformat()} with no end or "
                    "supply; taken as still taken, verify"
                )
        else:
            end = shift(fact.start, days=default_days) or now
        if end >= now or (
            fact.status == "active" and end >= (shift(now, days=-default_days) or now)
        ):
            # An active order whose last supply ran out less than one supply period ago is
            # taken as still taken (refills lag); anything else ends when its supply does.
            end, ongoing = now, True
        if end < fact.start:
            end = fact.start
        reason_use = _reason_use(fact, knowledge)
        for item in resolved:
            ingredient = knowledge.ingredients[item.name]
            dose, implausible = plausible_daily_mg(fact, item, knowledge)
            if implausible:
                gaps.append(implausible)
            out.append(
                Exposure(
                    ingredient=item.name,
                    role=ingredient.role,
                    ref=fact.ref,
                    start=fact.start,
                    end=end,
                    ongoing=ongoing,
                    daily_mg=dose,
                    non_depression_use=item.non_depression_use or reason_use,
                    fact=fact,
                )
            )
    out.sort(key=lambda e: (e.start, e.ingredient, e.ref))
    return out, gaps
