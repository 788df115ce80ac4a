"""fhir_mappers.medication.map_medication: doses, frequencies, products, dates and supply.

Each case is one MedicationRequest or MedicationStatement shaped as real systems send it (Synthea,
Epic/Cerner-style US Core, the HL7 examples) and the exact MedicationFact fields it must give.
``daily`` is ``daily_amount(fact, 1)``: the daily amount in the fact's dose unit, the number the
trial rules turn into mg/day.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from fhir_mappers.collect import index_medications
from fhir_mappers.facts import EMPTY_CONCEPT, Coding, Concept, IngredientStrength
from fhir_mappers.medication import daily_amount, map_medication

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
GTS = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"
SERTRALINE = {
    "coding": [{"system": RXNORM, "code": "312938", "display": "sertraline 100 MG Oral Tablet"}],
    "text": "sertraline 100 MG Oral Tablet",
}
SERTRALINE_CONCEPT = Concept(
    (Coding(RXNORM, "312938", "sertraline 100 MG Oral Tablet"),), "sertraline 100 MG Oral Tablet"
)


def q(value: Any, unit: str | None = None, code: str | None = None) -> dict[str, Any]:
    quantity: dict[str, Any] = {"value": value}
    if unit is not None:
        quantity["unit"] = unit
    if code is not None:
        quantity.update({"system": UCUM, "code": code})
    return quantity


def daily(frequency: float = 1, period: float = 1, unit: str = "d") -> dict[str, Any]:
    return {"repeat": {"frequency": frequency, "period": period, "periodUnit": unit}}


def line(
    dose: dict[str, Any] | None = None, timing: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    dosage: dict[str, Any] = dict(extra)
    if timing is not None:
        dosage["timing"] = timing
    if dose is not None:
        dosage["doseAndRate"] = [{"doseQuantity": dose}]
    return dosage


def request(*dosages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": "mr1",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "authoredOn": "2026-01-10",
        "medicationCodeableConcept": copy.deepcopy(SERTRALINE),
        "dosageInstruction": list(dosages),
    }
    resource.update(fields)
    return {k: v for k, v in resource.items() if v is not None}


def statement(**fields: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "id": "ms1",
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": copy.deepcopy(SERTRALINE),
    }
    resource.update(fields)
    return {k: v for k, v in resource.items() if v is not None}


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def _check(
    resource: dict[str, Any],
    expected: dict[str, Any],
    medications: list[dict[str, Any]] | None = None,
) -> None:
    fact, resolved = map_medication(resource, index_medications(medications or []))
    actual: dict[str, Any] = {}
    for name in expected:
        if name == "daily":
            actual[name] = daily_amount(fact, 1)
        elif name == "resolved":
            actual[name] = resolved
        else:
            actual[name] = getattr(fact, name)
    assert actual == expected


# --------------------------------------------------------------------------------------------
# Dose quantity and units


@pytest.mark.parametrize(
    ("dose", "expected"),
    [
        pytest.param(
            q(20, "mg", "mg"),
            {"dose_value": 20.0, "dose_unit": "mg", "dose_per_kg": False},
            id="mg",
        ),
        pytest.param(
            q(0.5, "g", "g"),
            {"dose_value": 500.0, "dose_unit": "mg", "dose_per_kg": False},
            id="gram",
        ),
        pytest.param(
            q(250, "mcg", "ug"),
            {"dose_value": 0.25, "dose_unit": "mg", "dose_per_kg": False},
            id="microgram",
        ),
        pytest.param(
            q(20, "milligram"),
            {"dose_value": 20.0, "dose_unit": "mg", "dose_per_kg": False},
            id="mg-unit-text",
        ),
        pytest.param(
            q(2, "TAB", "{tbl}"),
            {"dose_value": 2.0, "dose_unit": "unit", "dose_per_kg": False},
            id="tablet-ucum",
        ),
        pytest.param(
            q(1, "TAB"),
            {"dose_value": 1.0, "dose_unit": "unit", "dose_per_kg": False},
            id="tablet-text",
        ),
        pytest.param(
            q(1, "capsule", "{capsule}"),
            {"dose_value": 1.0, "dose_unit": "unit", "dose_per_kg": False},
            id="capsule",
        ),
        pytest.param(
            q(2, "spray"),
            {"dose_value": 2.0, "dose_unit": "spray", "dose_per_kg": False},
            id="nasal-spray",
        ),
        pytest.param(
            q(1, "1", "1"),
            {"dose_value": 1.0, "dose_unit": "unit", "dose_per_kg": False},
            id="ucum-unity",
        ),
        pytest.param(
            q(1),
            {"dose_value": 1.0, "dose_unit": "unit", "dose_per_kg": False},
            id="no-unit-synthea",
        ),
        pytest.param(
            q(0.5, "mg/kg", "mg/kg"),
            {"dose_value": 0.5, "dose_unit": "mg", "dose_per_kg": True},
            id="mg-per-kg",
        ),
        pytest.param(
            q(5, "mL", "mL"),
            {"dose_value": 5.0, "dose_unit": "ml", "dose_per_kg": False},
            id="millilitre",
        ),
        pytest.param(
            q(2, "puff"),
            {"dose_value": 2.0, "dose_unit": "puff", "dose_per_kg": False},
            id="other-unit-kept",
        ),
        pytest.param(
            q("20", "mg", "mg"),
            {"dose_value": None, "dose_unit": None, "dose_per_kg": False},
            id="string-value",
        ),
    ],
)
def test_map_medication_dose_quantity_gives_normalised_dose(
    dose: dict[str, Any], expected: dict[str, Any]
) -> None:
    """Verify that doseQuantity becomes mg, a count of units, mL, or the raw unit."""
    _check(request(line(dose, daily())), expected)


@pytest.mark.parametrize(
    ("dose_and_rate", "expected"),
    [
        pytest.param(
            [{"doseRange": {"low": q(50, "mg", "mg"), "high": q(100, "mg", "mg")}}],
            {"dose_value": 100.0, "dose_unit": "mg", "daily": 100.0},
            id="range-high",
        ),
        pytest.param(
            [{"doseRange": {"low": q(1, "TAB", "{tbl}")}}],
            {"dose_value": 1.0, "dose_unit": "unit", "daily": 1.0},
            id="range-low-only",
        ),
        pytest.param(
            [{"type": {"text": "ordered"}, "doseQuantity": q(50, "mg", "mg")}],
            {"dose_value": 50.0, "dose_unit": "mg", "daily": 50.0},
            id="typed-ordered-dose",
        ),
        pytest.param([], {"dose_value": None, "dose_unit": None, "daily": None}, id="empty"),
        pytest.param(
            [{"rateQuantity": q(10, "mL/h")}],
            {"dose_value": None, "dose_unit": None, "daily": None},
            id="rate-only",
        ),
    ],
)
def test_map_medication_dose_and_rate_variants_give_dose(
    dose_and_rate: list[dict[str, Any]], expected: dict[str, Any]
) -> None:
    """Verify that doseRange uses its high (else low) bound and rate-only gives no dose."""
    _check(request({"timing": daily(), "doseAndRate": dose_and_rate}), expected)


def test_map_medication_no_dosage_gives_no_dose_or_frequency() -> None:
    """Verify that a request without dosageInstruction has no dose, frequency or text."""
    _check(
        request(dosageInstruction=None),
        {
            "dose_value": None,
            "dose_unit": None,
            "doses_per_day": None,
            "dosage_text": None,
            "daily": None,
        },
    )


def test_map_medication_mixed_units_across_lines_gives_no_dose() -> None:
    """Verify that dosage lines in different units give no dose rather than a wrong sum."""
    _check(
        request(line(q(50, "mg", "mg"), daily()), line(q(1, "TAB"), daily())),
        {"dose_value": None, "dose_unit": None, "doses_per_day": None, "daily": None},
    )


# --------------------------------------------------------------------------------------------
# Frequency: timing.repeat and timing.code


@pytest.mark.parametrize(
    ("timing", "per_day"),
    [
        pytest.param(daily(1, 1, "d"), 1.0, id="once-daily"),
        pytest.param(daily(2, 1, "d"), 2.0, id="twice-daily"),
        pytest.param(daily(3, 2, "d"), 1.5, id="three-per-2-days"),
        pytest.param(daily(1, 12, "h"), 2.0, id="every-12h"),
        pytest.param(daily(1, 8, "h"), 3.0, id="every-8h"),
        pytest.param(daily(1, 1, "wk"), 1 / 7, id="weekly"),
        pytest.param(daily(2, 1, "wk"), 2 / 7, id="twice-weekly"),
        pytest.param(daily(1, 1, "mo"), 1 / 30, id="monthly"),
        pytest.param({"repeat": {"frequency": 2, "period": 1}}, 2.0, id="no-period-unit-is-days"),
        pytest.param(
            {"repeat": {"frequency": 1, "frequencyMax": 3, "period": 1, "periodUnit": "d"}},
            3.0,
            id="frequency-max",
        ),
        pytest.param({"code": {"coding": [{"system": GTS, "code": "BID"}]}}, 2.0, id="code-bid"),
        pytest.param({"code": {"coding": [{"system": GTS, "code": "TID"}]}}, 3.0, id="code-tid"),
        pytest.param({"code": {"coding": [{"system": GTS, "code": "QID"}]}}, 4.0, id="code-qid"),
        pytest.param({"code": {"coding": [{"system": GTS, "code": "QD"}]}}, 1.0, id="code-qd"),
        pytest.param({"code": {"coding": [{"system": GTS, "code": "QOD"}]}}, 0.5, id="code-qod"),
        pytest.param({"code": {"coding": [{"system": GTS, "code": "Q8H"}]}}, 3.0, id="code-q8h"),
        pytest.param({"code": {"coding": [{"code": "bid"}]}}, 2.0, id="code-lowercase"),
        pytest.param(
            {
                "repeat": {"boundsPeriod": {"start": "2026-01-10"}},
                "code": {"coding": [{"system": GTS, "code": "TID"}]},
            },
            3.0,
            id="bounds-only-repeat-then-code",
        ),
        pytest.param(
            {"repeat": {"frequency": 1, "period": 1, "periodUnit": "x"}},
            None,
            id="unknown-period-unit",
        ),
        pytest.param(
            {"code": {"coding": [{"system": GTS, "code": "PRN"}]}}, None, id="unknown-code"
        ),
        pytest.param(None, None, id="no-timing"),
    ],
)
def test_map_medication_timing_gives_doses_per_day(
    timing: dict[str, Any] | None, per_day: float | None
) -> None:
    """Verify that the frequency comes from timing.repeat, else from timing.code."""
    resource = request(line(q(50, "mg", "mg"), timing))
    expected_daily = 50.0 * per_day if per_day is not None else 50.0  # default: once a day
    fact, _ = map_medication(resource, {})
    if per_day is None:
        assert fact.doses_per_day is None
    else:
        assert fact.doses_per_day == pytest.approx(per_day)
    assert daily_amount(fact, 1) == pytest.approx(expected_daily)


# --------------------------------------------------------------------------------------------
# Several dosage lines: split doses (same sequence) and sequential doses (titration)


def mg(value: float, per_day: float = 1, **extra: Any) -> dict[str, Any]:
    return line(q(value, "mg", "mg"), daily(per_day), **extra)


@pytest.mark.parametrize(
    ("dosages", "expected"),
    [
        pytest.param(
            [mg(50, sequence=1), mg(50, sequence=1)],
            {"doses_per_day": 2.0, "daily": 100.0},
            id="split-even-same-sequence",
        ),
        pytest.param(
            [mg(50, sequence=1), mg(100, sequence=1)],
            {"doses_per_day": 2.0, "daily": 150.0},
            id="split-uneven-am-50-pm-100",
        ),
        pytest.param(
            [mg(100, sequence=1), mg(50, sequence=1)],
            {"doses_per_day": 2.0, "daily": 150.0},
            id="split-uneven-am-100-pm-50",
        ),
        pytest.param(
            [mg(37.5, sequence=1), mg(75, sequence=1), mg(75, sequence=1)],
            {"doses_per_day": 3.0, "daily": 187.5},
            id="split-three-lines",
        ),
        pytest.param(
            [mg(25, sequence=1), mg(50, sequence=2)],
            {"dose_value": 50.0, "doses_per_day": 1.0, "daily": 50.0},
            id="sequential-titration-takes-highest-step",
        ),
        pytest.param(
            [mg(25, per_day=2, sequence=1), mg(50, per_day=1, sequence=2)],
            {"daily": 50.0},
            id="sequential-25-bid-then-50-qd",
        ),
        pytest.param(
            [mg(50, per_day=1, sequence=1), mg(25, per_day=4, sequence=2)],
            {"daily": 100.0},
            id="sequential-50-qd-then-25-qid",
        ),
    ],
)
def test_map_medication_several_dosage_lines_give_daily_amount(
    dosages: list[dict[str, Any]], expected: dict[str, Any]
) -> None:
    """Verify that split doses add up and titration steps give the highest step's daily amount."""
    _check(request(*dosages), expected)


def test_map_medication_dosage_details_give_text_route_and_as_needed() -> None:
    """Verify that the first dosage text and route are kept and asNeeded is recognised."""
    route = {
        "coding": [
            {"system": "http://snomed.info/sct", "code": "26643006", "display": "Oral route"}
        ]
    }
    _check(
        request(
            line(
                q(50, "mg", "mg"),
                daily(),
                text="50 mg by mouth daily as needed",
                route=route,
                asNeededBoolean=True,
            ),
            line(q(50, "mg", "mg"), daily(), text="second line"),
        ),
        {
            "dosage_text": "50 mg by mouth daily as needed",
            "route": Concept((Coding("http://snomed.info/sct", "26643006", "Oral route"),)),
            "as_needed": True,
        },
    )


# --------------------------------------------------------------------------------------------
# Product: coded, contained, referenced, display only


def sertraline_medication(mid: str, strength: dict[str, Any] | None = None) -> dict[str, Any]:
    ingredient: dict[str, Any] = {
        "itemCodeableConcept": {
            "coding": [{"system": RXNORM, "code": "36437", "display": "sertraline"}]
        }
    }
    if strength is not None:
        ingredient["strength"] = strength
    return {
        "resourceType": "Medication",
        "id": mid,
        "code": {
            "coding": [
                {"system": RXNORM, "code": "312938", "display": "sertraline 100 MG Oral Tablet"}
            ]
        },
        "ingredient": [ingredient],
    }


def ratio(numerator: dict[str, Any], denominator: dict[str, Any] | None) -> dict[str, Any]:
    result: dict[str, Any] = {"numerator": numerator}
    if denominator is not None:
        result["denominator"] = denominator
    return result


MED_CONCEPT = Concept((Coding(RXNORM, "312938", "sertraline 100 MG Oral Tablet"),))
INGREDIENT_CONCEPT = Concept((Coding(RXNORM, "36437", "sertraline"),))
PER_TAB = q(1, "TAB", "TAB")


@pytest.mark.parametrize(
    ("strength", "strength_mg"),
    [
        pytest.param(ratio(q(100, "mg", "mg"), PER_TAB), 100.0, id="mg-per-tablet"),
        pytest.param(ratio(q(100, "mg", "mg"), q(5, "mL", "mL")), 20.0, id="mg-per-5ml"),
        pytest.param(ratio(q(0.1, "g", "g"), PER_TAB), 100.0, id="gram-per-tablet"),
        pytest.param(ratio(q(100, "mg", "mg"), None), 100.0, id="no-denominator"),
        pytest.param(ratio(q(2, "%", "%"), PER_TAB), None, id="not-a-mass"),
        pytest.param(None, None, id="no-strength"),
    ],
)
def test_map_medication_contained_medication_gives_product_and_strength(
    strength: dict[str, Any] | None, strength_mg: float | None
) -> None:
    """Verify that a contained Medication gives the product and ingredient strengths in mg."""
    resource = request(
        line(q(1, "TAB", "TAB"), daily()),
        medicationCodeableConcept=None,
        contained=[sertraline_medication("med1", strength)],
        medicationReference={"reference": "#med1"},
    )
    _check(
        resource,
        {
            "product": MED_CONCEPT,
            "ingredients": (IngredientStrength(INGREDIENT_CONCEPT, strength_mg),),
            "resolved": True,
        },
    )


@pytest.mark.parametrize(
    ("reference", "medications", "expected"),
    [
        pytest.param(
            {"reference": "Medication/m1"},
            [sertraline_medication("m1", ratio(q(100, "mg", "mg"), PER_TAB))],
            {
                "product": MED_CONCEPT,
                "ingredients": (IngredientStrength(INGREDIENT_CONCEPT, 100.0),),
                "resolved": True,
            },
            id="relative-reference-included",
        ),
        pytest.param(
            {"reference": "https://ehr.example/fhir/Medication/m1"},
            [sertraline_medication("m1")],
            {
                "product": MED_CONCEPT,
                "ingredients": (IngredientStrength(INGREDIENT_CONCEPT, None),),
                "resolved": True,
            },
            id="absolute-reference-included",
        ),
        pytest.param(
            {"reference": "Medication/m1/_history/3"},
            [sertraline_medication("m1")],
            {"product": MED_CONCEPT, "resolved": True},
            id="versioned-reference-included",
        ),
        pytest.param(
            {"reference": "Medication/missing", "display": "Sertraline 50 mg tablet"},
            [sertraline_medication("m1")],
            {
                "product": Concept((), "Sertraline 50 mg tablet"),
                "ingredients": (),
                "resolved": False,
            },
            id="reference-not-provided-display-kept",
        ),
        pytest.param(
            {"reference": "Medication/missing"},
            [],
            {"product": EMPTY_CONCEPT, "ingredients": (), "resolved": False},
            id="reference-not-provided-no-display",
        ),
        pytest.param(
            {"display": "Zoloft 100 mg"},
            [],
            {"product": Concept((), "Zoloft 100 mg"), "ingredients": (), "resolved": False},
            id="display-only",
        ),
        pytest.param(
            {"reference": "#absent", "display": "sertraline"},
            [],
            {"product": Concept((), "sertraline"), "resolved": False},
            id="contained-id-not-found",
        ),
    ],
)
def test_map_medication_medication_reference_gives_product(
    reference: dict[str, Any], medications: list[dict[str, Any]], expected: dict[str, Any]
) -> None:
    """Verify that a provided Medication resolves and an unresolved reference keeps its display."""
    resource = request(
        line(q(1, "TAB", "TAB"), daily()),
        medicationCodeableConcept=None,
        medicationReference=reference,
    )
    _check(resource, expected, medications)


def test_map_medication_ingredient_item_reference_gives_display_concept() -> None:
    """Verify that a Medication ingredient given as itemReference with a display is named by it."""
    medication = {
        "resourceType": "Medication",
        "id": "m2",
        "code": {"text": "Auvelity"},
        "ingredient": [
            {
                "itemReference": {
                    "reference": "Substance/dxm",
                    "display": "dextromethorphan hydrobromide",
                },
                "strength": ratio(q(45, "mg", "mg"), PER_TAB),
            },
        ],
    }
    resource = request(
        line(q(1, "TAB", "TAB"), daily()),
        medicationCodeableConcept=None,
        medicationReference={"reference": "Medication/m2"},
    )
    _check(
        resource,
        {
            "product": Concept((), "Auvelity"),
            "ingredients": (
                IngredientStrength(Concept((), "dextromethorphan hydrobromide"), 45.0),
            ),
            "resolved": True,
        },
        [medication],
    )


def test_map_medication_codeable_concept_gives_product() -> None:
    """Verify that medicationCodeableConcept is the product, resolved, with no ingredients."""
    _check(
        request(line(q(1, "TAB", "TAB"), daily())),
        {"product": SERTRALINE_CONCEPT, "ingredients": (), "resolved": True},
    )


# --------------------------------------------------------------------------------------------
# MedicationRequest dates, supply, status


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({}, {"start": utc(2026, 1, 10), "end": None}, id="authored-on"),
        pytest.param(
            {"authoredOn": "2026-01-10T09:15:00-05:00"},
            {"start": datetime.fromisoformat("2026-01-10T09:15:00-05:00"), "end": None},
            id="authored-on-datetime",
        ),
        pytest.param(
            {
                "authoredOn": None,
                "dispenseRequest": {"validityPeriod": {"start": "2026-02-01", "end": "2026-08-01"}},
            },
            {"start": utc(2026, 2, 1), "end": None},
            id="validity-period-start",
        ),
        pytest.param({"authoredOn": None}, {"start": None, "end": None}, id="no-date"),
    ],
)
def test_map_medication_request_dates_give_start(
    fields: dict[str, Any], expected: dict[str, Any]
) -> None:
    """Verify that a request starts at authoredOn, else validityPeriod.start, with no end."""
    _check(request(line(q(1, "TAB", "TAB"), daily()), **fields), expected)


def test_map_medication_bounds_period_gives_start_and_end() -> None:
    """Verify that boundsPeriod gives the start and the end (partial end read at its end)."""
    timing = {
        "repeat": {
            "frequency": 1,
            "period": 1,
            "periodUnit": "d",
            "boundsPeriod": {"start": "2026-01-12", "end": "2026-03"},
        }
    }
    _check(
        request(line(q(50, "mg", "mg"), timing)),
        {"start": utc(2026, 1, 12), "end": utc(2026, 3, 31, 23, 59, 59), "doses_per_day": 1.0},
    )


def supply(
    duration: dict[str, Any] | None = None,
    repeats: Any = None,
    quantity: dict[str, Any] | None = None,
) -> dict[str, Any]:
    dispense: dict[str, Any] = {}
    if duration is not None:
        dispense["expectedSupplyDuration"] = duration
    if repeats is not None:
        dispense["numberOfRepeatsAllowed"] = repeats
    if quantity is not None:
        dispense["quantity"] = quantity
    return dispense


@pytest.mark.parametrize(
    ("dose", "per_day", "dispense", "supply_days"),
    [
        pytest.param(q(1, "TAB", "TAB"), 1, supply(q(30, "days", "d")), 30.0, id="duration-30d"),
        pytest.param(
            q(1, "TAB", "TAB"), 1, supply(q(30, "days", "d"), 0), 30.0, id="duration-no-refill"
        ),
        pytest.param(
            q(1, "TAB", "TAB"), 1, supply(q(30, "days", "d"), 2), 90.0, id="duration-times-fills"
        ),
        pytest.param(
            q(1, "TAB", "TAB"), 1, supply(q(4, "weeks", "wk"), 5), 168.0, id="weeks-times-fills"
        ),
        pytest.param(
            q(1, "TAB", "TAB"),
            1,
            supply(q(30, "days", "d"), -1),
            30.0,
            id="negative-repeats-ignored",
        ),
        pytest.param(
            q(1, "TAB", "TAB"),
            2,
            supply(quantity=q(60, "TAB", "TAB")),
            30.0,
            id="quantity-tablets-bid",
        ),
        pytest.param(
            q(2, "TAB", "TAB"),
            1,
            supply(quantity=q(60, "tablet"), repeats=1),
            60.0,
            id="quantity-times-fills",
        ),
        pytest.param(
            q(50, "mg", "mg"), 2, supply(quantity=q(3000, "mg", "mg")), 30.0, id="quantity-mg"
        ),
        pytest.param(
            q(1, "TAB", "TAB"),
            1,
            supply(q(14, "days", "d"), quantity=q(90, "TAB", "TAB")),
            14.0,
            id="duration-wins-over-quantity",
        ),
        pytest.param(
            q(50, "mg", "mg"),
            1,
            supply(quantity=q(30, "TAB", "TAB")),
            None,
            id="quantity-unit-differs-from-dose",
        ),
        pytest.param(
            None, 1, supply(quantity=q(30, "TAB", "TAB")), None, id="quantity-without-dose"
        ),
        pytest.param(
            q(1, "TAB", "TAB"), 1, supply(q(30, "mg", "mg")), None, id="duration-not-time"
        ),
        pytest.param(q(1, "TAB", "TAB"), 1, {}, None, id="no-dispense-information"),
    ],
)
def test_map_medication_dispense_request_gives_supply_days(
    dose: dict[str, Any] | None, per_day: float, dispense: dict[str, Any], supply_days: float | None
) -> None:
    """Verify that supply days come from the supply duration, else quantity, times fills."""
    resource = request(line(dose, daily(per_day)), dispenseRequest=dispense or None)
    _check(resource, {"supply_days": supply_days})


def test_map_medication_quantity_supply_without_frequency_gives_none() -> None:
    """Verify that a dispensed quantity gives no supply when the frequency is unknown."""
    resource = request(
        line(q(1, "TAB", "TAB"), None), dispenseRequest=supply(quantity=q(30, "TAB", "TAB"))
    )
    _check(resource, {"supply_days": None, "doses_per_day": None})


def test_map_medication_request_status_and_reasons_give_fact_fields() -> None:
    """Verify that ref, type, status, intent, statusReason and reasonCode are carried over."""
    reason = {
        "coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F33.1"}],
        "text": "MDD",
    }
    resource = request(
        line(q(1, "TAB", "TAB"), daily()),
        status="stopped",
        intent="plan",
        statusReason={"text": "not effective"},
        reasonCode=[reason],
    )
    _check(
        resource,
        {
            "ref": "MedicationRequest/mr1",
            "resource_type": "MedicationRequest",
            "status": "stopped",
            "intent": "plan",
            "status_reasons": (Concept((), "not effective"),),
            "reasons": (Concept((Coding("http://hl7.org/fhir/sid/icd-10-cm", "F33.1"),), "MDD"),),
        },
    )


# --------------------------------------------------------------------------------------------
# MedicationStatement


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(
            {"effectivePeriod": {"start": "2025-03-01", "end": "2025-06-15"}},
            {"start": utc(2025, 3, 1), "end": utc(2025, 6, 15, 23, 59, 59)},
            id="effective-period",
        ),
        pytest.param(
            {"effectivePeriod": {"start": "2025-03", "end": "2025-05"}},
            {"start": utc(2025, 3, 1), "end": utc(2025, 5, 31, 23, 59, 59)},
            id="effective-period-partial",
        ),
        pytest.param(
            {"effectivePeriod": {"start": "2025-03-01T08:00:00+02:00"}},
            {"start": datetime.fromisoformat("2025-03-01T08:00:00+02:00"), "end": None},
            id="effective-period-open",
        ),
        pytest.param(
            {"effectiveDateTime": "2025-04-02"},
            {"start": utc(2025, 4, 2), "end": None},
            id="effective-datetime",
        ),
        pytest.param(
            {"dateAsserted": "2025-04-20T10:00:00Z"},
            {"start": utc(2025, 4, 20, 10), "end": None},
            id="date-asserted-only",
        ),
        pytest.param(
            {
                "effectivePeriod": {"start": "2025-03-01"},
                "effectiveDateTime": "2025-04-02",
                "dateAsserted": "2025-04-20",
            },
            {"start": utc(2025, 3, 1), "end": None},
            id="period-before-datetime-before-asserted",
        ),
        pytest.param({}, {"start": None, "end": None}, id="no-date"),
    ],
)
def test_map_medication_statement_dates_give_start_and_end(
    fields: dict[str, Any], expected: dict[str, Any]
) -> None:
    """Verify that a statement's dates come from effective[x], else dateAsserted."""
    _check(statement(**fields), expected)


def test_map_medication_statement_dosage_gives_dose_and_no_supply() -> None:
    """Verify that a statement's dosage, status and statusReasons are read, with no supply."""
    resource = statement(
        status="stopped",
        effectivePeriod={"start": "2025-03-01", "end": "2025-06-15"},
        dosage=[line(q(100, "mg", "mg"), daily(1))],
        statusReason=[{"text": "side effects"}, {"text": "nausea"}],
    )
    _check(
        resource,
        {
            "ref": "MedicationStatement/ms1",
            "resource_type": "MedicationStatement",
            "status": "stopped",
            "intent": None,
            "dose_value": 100.0,
            "dose_unit": "mg",
            "doses_per_day": 1.0,
            "supply_days": None,
            "daily": 100.0,
            "status_reasons": (Concept((), "side effects"), Concept((), "nausea")),
        },
    )


@pytest.mark.parametrize(
    "reference",
    ["Condition/ptsd-1", "urn:uuid:ptsd-1", "https://ehr.example/fhir/Condition/ptsd-1"],
    ids=["relative", "urn-uuid", "absolute"],
)
def test_map_medication_reason_reference_resolves_condition_code(reference: str) -> None:
    """Verify that reasonReference to a Condition adds that Condition's code to the reasons."""
    from fhir_mappers.collect import AcceptAll, map_resources

    ptsd = {
        "resourceType": "Condition",
        "id": "ptsd-1",
        "code": {
            "coding": [
                {
                    "system": "http://snomed.info/sct",
                    "code": "47505003",
                    "display": "Posttraumatic stress disorder",
                }
            ]
        },
        "subject": {"reference": "Patient/p1"},
    }
    order = {
        "resourceType": "MedicationRequest",
        "id": "mr-ptsd",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"text": "sertraline 100 MG Oral Tablet"},
        "subject": {"reference": "Patient/p1"},
        "reasonReference": [{"reference": reference}],
    }
    facts = map_resources([ptsd, order], AcceptAll())
    (fact,) = facts.medications
    assert [r.label() for r in fact.reasons] == ["Posttraumatic stress disorder"]
