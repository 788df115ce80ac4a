"""MedicationRequest and MedicationStatement -> MedicationFact.

Real EHR shapes handled here: the product as ``medicationCodeableConcept``, as a reference to a
``contained`` Medication ("#med1"), or as a reference to a Medication that came in the same Bundle
(``_include``) or prefetch; dose as ``doseAndRate.doseQuantity`` (mg, mg/kg or a count of
units such as tablets, or a bare number as Synthea writes it) or ``doseRange``; frequency from
``timing.repeat`` or ``timing.code``; split doses (several dosage lines with the same
``sequence``) added up.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from fhir_mappers.codes import as_list, concept, concepts, number, quantity_value, reference_key
from fhir_mappers.dates import parse_end, parse_start, period_days
from fhir_mappers.facts import (
    EMPTY_CONCEPT,
    Concept,
    DoseStep,
    IngredientStrength,
    MedicationFact,
    MedicationResource,
)
from fhir_mappers.parse import resource_ref

MASS_TO_MG: dict[str, float] = {
    "mg": 1.0,
    "milligram": 1.0,
    "milligrams": 1.0,
    "g": 1000.0,
    "gram": 1000.0,
    "grams": 1000.0,
    "ug": 0.001,
    "mcg": 0.001,
    "microgram": 0.001,
    "micrograms": 0.001,
}
"""Mass units (UCUM code or unit text, lowercase) and their factor to milligrams."""

COUNT_UNITS = frozenset(
    {
        "1",
        "{tbl}",
        "{tablet}",
        "{tablets}",
        "tab",
        "tabs",
        "tablet",
        "tablets",
        "{capsule}",
        "{capsules}",
        "cap",
        "caps",
        "capsule",
        "capsules",
        "{patch}",
        "patch",
        "patches",
        "{device}",
        "device",
        "devices",
        "each",
        "ea",
    }
)
"""Units meaning "so many of the product" (tablets, capsules, patches, devices...)."""

SPRAY_UNITS = frozenset({"{spray}", "spray", "sprays", "{actuation}", "actuation", "{puff}"})
"""Units meaning "so many sprays": a nasal device may deliver several (a SPRAVATO device is two
sprays), so a spray is its own unit, not a device."""

PER_DAY: dict[str, float] = {
    "s": 86400.0,
    "min": 1440.0,
    "h": 24.0,
    "d": 1.0,
    "wk": 1 / 7,
    "mo": 1 / 30,
    "a": 1 / 365,
}

TIMING_CODES: dict[str, float] = {
    "QD": 1,
    "QOD": 0.5,
    "BID": 2,
    "TID": 3,
    "QID": 4,
    "AM": 1,
    "PM": 1,
    "QHS": 1,
    "HS": 1,
    "Q4H": 6,
    "Q6H": 4,
    "Q8H": 3,
    "Q12H": 2,
    "WK": 1 / 7,
    "MO": 1 / 30,
}
"""HL7 v3 GTSAbbreviation codes (``Timing.code``) as administrations per day."""

MedicationIndex = dict[str, dict[str, Any]]
"""Medication resources by "Medication/id" and by fullUrl."""


def normalise_dose_unit(unit: str | None) -> tuple[float, str, bool]:
    """(factor to apply, normalised unit, per-kg) for a dose unit.

    Normalised units: "mg" (mass, converted), "unit" (a count of the product), "ml", or the raw
    lowercase unit when it is something else.
    """
    if unit is None:
        return 1.0, "unit", False
    lowered = unit.strip().lower()
    per_kg = lowered.endswith("/kg")
    base = lowered[: -len("/kg")] if per_kg else lowered
    if base in MASS_TO_MG:
        return MASS_TO_MG[base], "mg", per_kg
    if base in COUNT_UNITS:
        return 1.0, "unit", per_kg
    if base in SPRAY_UNITS:
        return 1.0, "spray", per_kg
    if base in {"ml", "milliliter", "millilitre"}:
        return 1.0, "ml", per_kg
    return 1.0, base, per_kg


def _doses_per_day(timing: Any) -> float | None:
    if not isinstance(timing, dict):
        return None
    repeat = timing.get("repeat")
    if isinstance(repeat, dict) and (repeat.get("period") or repeat.get("frequency")):
        frequency = number(repeat.get("frequencyMax")) or number(repeat.get("frequency")) or 1.0
        period = number(repeat.get("period")) or 1.0
        unit = repeat.get("periodUnit") or "d"
        if frequency > 0 and period > 0:
            factor = PER_DAY.get(str(unit))
            if factor is not None:
                return frequency / period * factor
    code = concept(timing.get("code"))
    for coding in code.codings:
        if coding.code and coding.code.upper() in TIMING_CODES:
            return TIMING_CODES[coding.code.upper()]
    return None


def _dose_quantity(dose_and_rate: Any) -> tuple[float | None, str | None]:
    for item in as_list(dose_and_rate):
        if not isinstance(item, dict):
            continue
        if "doseQuantity" in item:
            return quantity_value(item["doseQuantity"])
        dose_range = item.get("doseRange")
        if isinstance(dose_range, dict):
            value, unit = quantity_value(dose_range.get("high"))
            if value is None:
                value, unit = quantity_value(dose_range.get("low"))
            return value, unit
    return None, None


class _Dosage:
    """What the rules need from a list of Dosage elements."""

    def __init__(self, dosages: Any) -> None:
        self.dose_value: float | None = None
        self.daily_value: float | None = None
        self.unit: str | None = None
        self.per_kg = False
        self.doses_per_day: float | None = None
        self.as_needed = False
        self.route: Concept = EMPTY_CONCEPT
        self.text: str | None = None
        self.bounds_start: Any = None
        self.bounds_end: Any = None
        self.steps: tuple[DoseStep, ...] = ()
        self.infusion_minutes: float | None = None
        self._read([d for d in as_list(dosages) if isinstance(d, dict)])

    def _read(self, dosages: list[dict[str, Any]]) -> None:
        by_sequence: dict[object, list[tuple[float, float | None]]] = defaultdict(list)
        step_days: dict[object, float | None] = {}
        units: set[str] = set()
        for dosage in dosages:
            step_days.setdefault(dosage.get("sequence"), _bounds_days(dosage.get("timing")))
            if self.infusion_minutes is None:
                self.infusion_minutes = _infusion_minutes(dosage)
            if self.text is None and isinstance(dosage.get("text"), str):
                self.text = dosage["text"]
            if self.route.is_empty():
                self.route = concept(dosage.get("route"))
            if dosage.get("asNeededBoolean") is True or "asNeededCodeableConcept" in dosage:
                self.as_needed = True
            timing = dosage.get("timing")
            if isinstance(timing, dict) and isinstance(timing.get("repeat"), dict):
                bounds = timing["repeat"].get("boundsPeriod")
                if isinstance(bounds, dict) and self.bounds_start is None:
                    self.bounds_start = bounds.get("start")
                    self.bounds_end = bounds.get("end")
            value, raw_unit = _dose_quantity(dosage.get("doseAndRate"))
            if value is None:
                continue
            factor, unit, per_kg = normalise_dose_unit(raw_unit)
            units.add(unit)
            self.per_kg = self.per_kg or per_kg
            per_day = _doses_per_day(timing)
            by_sequence[dosage.get("sequence")].append((value * factor, per_day))
        if not by_sequence or len(units) != 1:
            return
        self.unit = units.pop()
        self.dose_value = max(v for lines in by_sequence.values() for v, _ in lines)
        best: float | None = None
        steps: list[tuple[object, DoseStep]] = []
        for sequence, lines in by_sequence.items():
            # Lines with the same sequence are taken together (split doses); different
            # sequences are successive steps (titration): the highest step's daily total counts,
            # and with step durations the steps are kept in order (weeks at the adequate dose
            # then count from the step that reaches it).
            if any(per_day is None for _, per_day in lines):
                continue
            daily = sum(v * (p or 0.0) for v, p in lines)
            steps.append((sequence, DoseStep(daily, step_days.get(sequence))))
            if best is None or daily > best:
                best = daily
                self.doses_per_day = sum(p or 0.0 for _, p in lines)
        self.daily_value = best
        ordered = [step for _, step in sorted(steps, key=lambda s: _sequence_key(s[0]))]
        if len(ordered) > 1 and all(step.days is not None for step in ordered[:-1]):
            self.steps = tuple(ordered)


def _sequence_key(sequence: object) -> float:
    value = number(sequence)
    return value if value is not None else 0.0


_MINUTES = {"s": 1 / 60, "min": 1.0, "h": 60.0, "d": 1440.0}


def _bounds_days(timing: Any) -> float | None:
    """A step's length: ``timing.repeat.boundsDuration``, else its ``boundsPeriod``."""
    repeat = timing.get("repeat") if isinstance(timing, dict) else None
    if not isinstance(repeat, dict):
        return None
    days = period_days(repeat.get("boundsDuration"))
    if days is not None:
        return days if days > 0 else None
    bounds = repeat.get("boundsPeriod")
    if isinstance(bounds, dict):
        start, end = parse_start(bounds.get("start")), parse_end(bounds.get("end"))
        if start is not None and end is not None and end > start:
            return (end - start).total_seconds() / 86400
    return None


def _infusion_minutes(dosage: dict[str, Any]) -> float | None:
    """How long one administration runs: ``timing.repeat.duration``, or dose / rate."""
    timing = dosage.get("timing")
    repeat = timing.get("repeat") if isinstance(timing, dict) else None
    if isinstance(repeat, dict):
        duration = number(repeat.get("duration"))
        factor = _MINUTES.get(str(repeat.get("durationUnit")))
        if duration is not None and duration > 0 and factor is not None:
            return duration * factor
    for item in as_list(dosage.get("doseAndRate")):
        if not isinstance(item, dict):
            continue
        rate, rate_unit = quantity_value(item.get("rateQuantity"))
        dose, dose_unit = quantity_value(item.get("doseQuantity"))
        if rate is None or not rate_unit or dose is None or rate <= 0:
            continue
        amount, _, per = rate_unit.lower().partition("/")
        if amount != (dose_unit or "").lower() or per not in _MINUTES:
            continue
        return number(dose / rate * _MINUTES[per])
    return None


def _ingredients(medication: dict[str, Any]) -> tuple[IngredientStrength, ...]:
    found: list[IngredientStrength] = []
    for item in as_list(medication.get("ingredient")):
        if not isinstance(item, dict):
            continue
        item_concept = concept(item.get("itemCodeableConcept"))
        if item_concept.is_empty():
            display = item.get("itemReference", {})
            if isinstance(display, dict) and isinstance(display.get("display"), str):
                item_concept = Concept((), display["display"])
        found.append(IngredientStrength(item_concept, _strength_mg(item.get("strength"))))
    return tuple(found)


def _strength_mg(ratio: Any) -> float | None:
    if not isinstance(ratio, dict):
        return None
    value, unit = quantity_value(ratio.get("numerator"))
    if value is None or unit is None:
        return None
    factor = MASS_TO_MG.get(unit.lower())
    if factor is None:
        return None
    denominator, _ = quantity_value(ratio.get("denominator"))
    if denominator is not None and denominator > 0:
        value /= denominator
    return number(value * factor)


def resolve_medication(
    resource: dict[str, Any], medications: MedicationIndex
) -> tuple[Concept, tuple[IngredientStrength, ...], bool]:
    """The product concept and ingredients of a request/statement, and whether it resolved."""
    if "medicationCodeableConcept" in resource:
        return concept(resource.get("medicationCodeableConcept")), (), True
    reference = resource.get("medicationReference")
    key = reference_key(reference)
    medication: dict[str, Any] | None = None
    if key and key.startswith("#"):
        for item in as_list(resource.get("contained")):
            if isinstance(item, dict) and item.get("id") == key[1:]:
                medication = item
                break
    elif key:
        medication = medications.get(key) or medications.get(key.rsplit("/_history", 1)[0])
        if medication is None and "/Medication/" in key:
            medication = medications.get("Medication/" + key.rsplit("/Medication/", 1)[1])
    if isinstance(medication, dict) and medication.get("resourceType") == "Medication":
        return concept(medication.get("code")), _ingredients(medication), True
    display = reference.get("display") if isinstance(reference, dict) else None
    if isinstance(display, str) and display:
        return Concept((), display), (), False
    return EMPTY_CONCEPT, (), False


def map_medication(
    resource: dict[str, Any],
    medications: MedicationIndex,
    *,
    resolution: tuple[Concept, tuple[IngredientStrength, ...], bool] | None = None,
    conditions: dict[str, Concept] | None = None,
) -> tuple[MedicationFact, bool]:
    """Map one MedicationRequest, MedicationStatement, MedicationAdministration or
    MedicationDispense; the flag says if its product resolved.

    An administration covers its effective period (one day for a single time); a dispense
    covers ``daysSupply`` (or quantity / daily dose) from when it was handed over.

    ``conditions`` (Condition id -> code) resolves ``reasonReference``: the referenced
    Conditions' codes join ``reasonCode`` as the stated indications.

    ``resolution`` is ``resolve_medication``'s answer when the caller already has it."""
    given = resource.get("resourceType")
    kind: MedicationResource = (
        given
        if given in ("MedicationStatement", "MedicationAdministration", "MedicationDispense")
        else "MedicationRequest"
    )
    product, ingredients, resolved = (
        resolution if resolution is not None else resolve_medication(resource, medications)
    )
    if kind == "MedicationRequest":
        dosage = _Dosage(resource.get("dosageInstruction"))
        dispense = resource.get("dispenseRequest")
        dispense = dispense if isinstance(dispense, dict) else {}
        start = parse_start(dosage.bounds_start) or parse_start(resource.get("authoredOn"))
        if start is None and isinstance(dispense.get("validityPeriod"), dict):
            start = parse_start(dispense["validityPeriod"].get("start"))
        end = parse_end(dosage.bounds_end)
        supply = _supply_days(dispense, dosage)
        status_reasons: tuple[Concept, ...] = tuple(
            c for c in (concept(resource.get("statusReason")),) if not c.is_empty()
        )
    elif kind == "MedicationAdministration":
        dosage = _Dosage(_administration_dosage(resource.get("dosage")))
        period = resource.get("effectivePeriod")
        period = period if isinstance(period, dict) else {}
        start = parse_start(period.get("start")) or parse_start(resource.get("effectiveDateTime"))
        end = parse_end(period.get("end"))
        supply = None if end is not None else 1.0
        status_reasons = concepts(resource.get("statusReason"))
    elif kind == "MedicationDispense":
        dosage = _Dosage(resource.get("dosageInstruction"))
        start = parse_start(resource.get("whenHandedOver")) or parse_start(
            resource.get("whenPrepared")
        )
        end = None
        supply = period_days(resource.get("daysSupply")) or _supply_days(
            {"quantity": resource.get("quantity")}, dosage
        )
        status_reasons = ()
    else:
        dosage = _Dosage(resource.get("dosage"))
        period = resource.get("effectivePeriod")
        period = period if isinstance(period, dict) else {}
        start = (
            parse_start(period.get("start"))
            or parse_start(resource.get("effectiveDateTime"))
            or parse_start(resource.get("dateAsserted"))
        )
        end = parse_end(period.get("end"))
        supply = None
        status_reasons = concepts(resource.get("statusReason"))
    intent = resource.get("intent")
    status = resource.get("status")
    fact = MedicationFact(
        ref=resource_ref(resource),
        resource_type=kind,
        product=product,
        ingredients=ingredients,
        status=status if isinstance(status, str) else None,
        intent=intent if isinstance(intent, str) else None,
        status_reasons=status_reasons,
        reasons=concepts(resource.get("reasonCode")) + _referenced_reasons(resource, conditions),
        start=start,
        end=end,
        supply_days=supply,
        dose_value=dosage.dose_value,
        daily_dose_value=dosage.daily_value,
        dose_unit=dosage.unit,
        dose_per_kg=dosage.per_kg,
        doses_per_day=dosage.doses_per_day,
        as_needed=dosage.as_needed,
        route=dosage.route,
        dosage_text=dosage.text,
        steps=dosage.steps,
        infusion_minutes=dosage.infusion_minutes,
    )
    return fact, resolved


def _administration_dosage(dosage: Any) -> list[dict[str, Any]]:
    """A MedicationAdministration's one ``dosage`` (dose, rate, route, text) as a Dosage."""
    if not isinstance(dosage, dict):
        return []
    rate: dict[str, Any] = {}
    if isinstance(dosage.get("dose"), dict):
        rate["doseQuantity"] = dosage["dose"]
    if isinstance(dosage.get("rateQuantity"), dict):
        rate["rateQuantity"] = dosage["rateQuantity"]
    out: dict[str, Any] = {"doseAndRate": [rate]} if rate else {}
    for element in ("text", "route"):
        if element in dosage:
            out[element] = dosage[element]
    return [out]


def _referenced_reasons(
    resource: dict[str, Any], conditions: dict[str, Concept] | None
) -> tuple[Concept, ...]:
    if not conditions:
        return ()
    found: list[Concept] = []
    for ref in as_list(resource.get("reasonReference")):
        key = reference_key(ref)
        if key is None:
            continue
        # "Condition/123", an absolute URL ending in it, or a bundle-local "urn:uuid:123".
        ident = key.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
        code = conditions.get(ident)
        if code is not None and not code.is_empty():
            found.append(code)
    return tuple(found)


def daily_amount(fact: MedicationFact, default_doses_per_day: float) -> float | None:
    """The daily amount in the fact's dose unit, applying a default frequency if none is given."""
    if fact.daily_dose_value is not None:
        return fact.daily_dose_value
    if fact.dose_value is None:
        return None
    return fact.dose_value * default_doses_per_day


def _supply_days(dispense: dict[str, Any], dosage: _Dosage) -> float | None:
    repeats = number(dispense.get("numberOfRepeatsAllowed"))
    fills = 1 + (int(repeats) if repeats is not None and repeats > 0 else 0)
    days = period_days(dispense.get("expectedSupplyDuration"))
    if days is not None:
        return days * fills
    quantity, unit = quantity_value(dispense.get("quantity"))
    if quantity is None or not dosage.daily_value:
        return None
    _, normalised, _ = normalise_dose_unit(unit)
    if normalised != dosage.unit:
        return None
    return quantity / dosage.daily_value * fills
