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

SKIPPED_STATUSES = frozenset(
    {
        "entered-in-error",
        "cancelled",
        "not-taken",
        "intended",
        "draft",
        "not-done",  # MedicationAdministration: not given
        "declined",  # MedicationDispense: not handed over
        "preparation",  # MedicationDispense: not yet handed over
    }
)
"""Statuses of records that say the drug was not taken (or not yet)."""
HALTED_STATUSES = frozenset({"stopped"})
"""Statuses of records that ended: never still taken, whatever the supply says."""
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
    """The daily dose, or None and why when it is negative (whatever the ingredient) or
    implausibly high for it (more than ``implausible_dose_multiple`` times its adequate minimum):
    such a dose reads as unknown."""
    dose = daily_mg(fact, item.strength_mg, knowledge)
    if dose is None:
        return None, None
    minimum = knowledge.ingredients[item.name].min_daily_dose_mg
    multiple = knowledge.thresholds.implausible_dose_multiple.value
    too_high = minimum is not None and minimum > 0 and dose > minimum * multiple
    if dose < 0 or too_high:
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


@dataclass(frozen=True)
class _Said:
    """What the patient reported (a MedicationStatement) about one ingredient."""

    ref: str
    start: datetime
    end: datetime | None
    not_taken: bool


def _patient_reports(
    facts: list[tuple[MedicationFact, list[ResolvedIngredient]]],
) -> dict[str, list[_Said]]:
    """Statements that say a drug was never taken, or when it was stopped, by ingredient."""
    said: dict[str, list[_Said]] = {}
    for fact, resolved in facts:
        if fact.resource_type != "MedicationStatement" or fact.start is None:
            continue
        not_taken = fact.status == "not-taken"
        if not not_taken and (fact.status not in ("stopped", "completed") or fact.end is None):
            continue
        for item in resolved:
            said.setdefault(item.name, []).append(_Said(fact.ref, fact.start, fact.end, not_taken))
    return said


def _reported(
    fact: MedicationFact,
    name: str,
    start: datetime,
    end: datetime,
    said: dict[str, list[_Said]],
    grace: float,
) -> tuple[datetime | None, str | None]:
    """The order's end once the patient's own report is applied, and the gap that says why;
    or (None, the report's reference) when the patient said it was never taken. A statement
    that the drug was not taken, or was stopped earlier, wins over an order (clinical review
    M8: the order's supply is not exposure)."""
    if fact.resource_type != "MedicationRequest":
        return end, None
    for report in said.get(name, ()):
        window_end = report.end or report.start
        if report.not_taken:
            low = shift(report.start, days=-grace) or report.start
            high = shift(window_end, days=grace) or window_end
            if low <= start <= high:
                return None, report.ref
            if start < low < end:  # taken before the report's period: up to its start
                return report.start, (
                    f"{fact.ref}: {name} supply cut at {report.start.date().isoformat()}, "
                    f"when {report.ref} says it was not taken"
                )
        elif report.end is not None and start <= report.end < end:
            return report.end, (
                f"{fact.ref}: {name} supply cut at {report.end.date().isoformat()}, when "
                f"{report.ref} says it was stopped"
            )
    return end, None


def _step_spans(
    fact: MedicationFact, start: datetime, end: datetime
) -> list[tuple[datetime, datetime, float]]:
    """(start, end, daily amount in the fact's unit) of each titration step of one order."""
    spans: list[tuple[datetime, datetime, float]] = []
    cursor = start
    for index, step in enumerate(fact.steps):
        last = index == len(fact.steps) - 1
        stop = end if last or step.days is None else shift(cursor, days=step.days) or end
        stop = min(stop, end)
        if stop > cursor:
            spans.append((cursor, stop, step.daily_value))
        cursor = stop
        if cursor >= end:
            break
    return spans


def _step_mg(
    fact: MedicationFact, item: ResolvedIngredient, daily_value: float, knowledge: Knowledge
) -> float | None:
    if fact.dose_unit == "mg":
        return round(daily_value, 3)
    if fact.dose_unit in ("unit", "ml", "spray") and item.strength_mg is not None:
        return round(daily_value * item.strength_mg, 3)
    return None


def exposures(
    facts: tuple[MedicationFact, ...],
    *,
    now: datetime,
    knowledge: Knowledge,
    deceased_at: datetime | None = None,
) -> tuple[list[Exposure], list[str]]:
    """Exposures of every known ingredient, and data gaps for records that cannot be placed.

    - An exposure is what a record covers: an order from its start for its supply (or until its
      end date); a statement over its period. Time between supplies is not exposure.
    - A titration inside one order (dosage steps with durations) gives one exposure per step.
    - The patient's report wins over an order: an order of a drug the patient said they never
      took is not exposure, and one they said they stopped ends there.
    - An as-needed record is not a depression trial (an antidepressant works taken daily).
    - Nothing is taken after the date of death; "now" is the end of anything still running.
    """
    out: list[Exposure] = []
    gaps: list[str] = []
    limits = knowledge.thresholds
    default_days = limits.default_supply_days.value
    grace = limits.coverage_grace_days.value
    if deceased_at is not None and deceased_at < now:
        now = deceased_at
    products: dict[tuple[Concept, tuple[IngredientStrength, ...]], list[ResolvedIngredient]] = {}
    placed: list[tuple[MedicationFact, list[ResolvedIngredient]]] = []
    for fact in facts:
        key = (fact.product, fact.ingredients)
        resolved = products.get(key)
        if resolved is None:  # renewals repeat the same product: resolve it once
            resolved = products[key] = resolve_ingredients(
                fact.product, fact.ingredients, knowledge
            )
        if resolved:
            placed.append((fact, resolved))
    said = _patient_reports(placed)
    not_taken: dict[tuple[str, str], list[str]] = {}
    stale_before = shift(now, weeks=-limits.stale_active_weeks.value) or now
    for fact, resolved in placed:
        if fact.status in SKIPPED_STATUSES or fact.intent == "proposal":
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
            if fact.start < stale_before:
                gaps.append(
                    f"{fact.ref}: active since {fact.start.date().isoformat()} with no end or "
                    "supply; taken as still taken, verify"
                )
        else:
            end = shift(fact.start, days=default_days) or now
        if fact.status in HALTED_STATUSES:
            # Stopped (permanently halted) or not done: never still taken, whatever its supply.
            end = min(end, now)
        elif end >= now or (
            fact.status == "active" and end >= (shift(now, days=-default_days) or now)
        ):
            # An active order whose last supply ran out less than one supply period ago is
            # taken as still taken (refills lag); anything else ends when its supply does.
            end, ongoing = now, True
        if end < fact.start:
            end = fact.start
        reason_use = _reason_use(fact, knowledge) or (
            "taken as needed (not a regular daily dose)" if fact.as_needed else None
        )
        for item in resolved:
            ingredient = knowledge.ingredients[item.name]
            item_end, report = _reported(fact, item.name, fact.start, end, said, grace)
            if item_end is None:
                not_taken.setdefault((item.name, report or "?"), []).append(fact.ref)
                continue
            if report:
                gaps.append(report)
            item_ongoing = ongoing and item_end >= end
            dose, implausible = plausible_daily_mg(fact, item, knowledge)
            if implausible:
                gaps.append(implausible)
            spans = (
                [
                    (s, e, _step_mg(fact, item, d, knowledge))
                    for s, e, d in _step_spans(fact, fact.start, item_end)
                ]
                if fact.steps and dose is not None and not fact.dose_per_kg
                else [(fact.start, item_end, dose)]
            )
            for span_start, span_end, span_dose in spans:
                out.append(
                    Exposure(
                        ingredient=item.name,
                        role=ingredient.role,
                        ref=fact.ref,
                        start=span_start,
                        end=span_end,
                        ongoing=item_ongoing and span_end >= item_end,
                        daily_mg=span_dose,
                        non_depression_use=item.non_depression_use or reason_use,
                        fact=fact,
                    )
                )
    for (name, report), orders in not_taken.items():
        shown = ", ".join(orders[:2]) + (f" +{len(orders) - 2} more" if len(orders) > 2 else "")
        gaps.append(f"{name} reported not taken ({report}): {shown} not counted as exposure")
    out.sort(key=lambda e: (e.start, e.ingredient, e.ref))
    return out, gaps
