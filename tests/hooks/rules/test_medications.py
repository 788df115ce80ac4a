"""hooks/rules/medications.py: products -> ingredients, records -> exposures, daily doses.

Table-driven over facts (``tests/hooks/rules/facts.py``) at the frozen clock ``NOW``; every number
the knowledge defines is read from it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_mappers.facts import Concept, DoseStep, IngredientStrength, MedicationFact
from hooks.rules.medications import (
    SKIPPED_STATUSES,
    ResolvedIngredient,
    daily_mg,
    exposures,
    plausible_daily_mg,
    resolve_ingredients,
)
from tests.factories import NOW
from tests.hooks.rules.facts import (
    KNOWLEDGE,
    LIMITS,
    ago,
    coded,
    medication_facts,
    order,
    rxnorm,
    statement,
    text,
)

DEFAULT_SUPPLY = LIMITS.default_supply_days.value
GRACE = LIMITS.coverage_grace_days.value
STALE = LIMITS.stale_active_weeks.value


def _exposures(
    *facts: MedicationFact, deceased_at: datetime | None = None
) -> tuple[list[tuple[str, datetime, datetime, bool, float | None]], list[str]]:
    found, gaps = exposures(facts, now=NOW, knowledge=KNOWLEDGE, deceased_at=deceased_at)
    return [(e.ingredient, e.start, e.end, e.ongoing, e.daily_mg) for e in found], gaps


# --- resolve_ingredients -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("product", "ingredients", "expected"),
    [
        (rxnorm("312941", "sertraline 50 MG Oral Tablet"), (), [("sertraline", 50.0)]),
        (
            rxnorm("403969"),
            (),
            [("fluoxetine", 25.0), ("olanzapine", 6.0)],
        ),
        (
            Concept((rxnorm("36437").codings[0],), "sertraline 100 mg tablet"),
            (),
            [("sertraline", 100.0)],
        ),
        (rxnorm("36437"), (), [("sertraline", None)]),
        (
            text("Medication"),
            (IngredientStrength(rxnorm("321988"), 10.0),),
            [("escitalopram", 10.0)],
        ),
        (
            text("house formulary tablet"),
            (IngredientStrength(text("Escitalopram oxalate"), 20.0),),
            [("escitalopram", 20.0)],
        ),
        (text("Zoloft 150 mg"), (), [("sertraline", 150.0)]),
        (text("desvenlafaxine 50 MG 24HR tablet"), (), [("desvenlafaxine", 50.0)]),
        (text("lithium carbonate 300 mg capsule"), (), [("lithium", 300.0)]),
        (text("sertraline 20 MG/ML oral concentrate"), (), [("sertraline", 20.0)]),
        (text("acetaminophen 500 mg"), (), []),
        (Concept(), (), []),
    ],
    ids=[
        "rxnorm-product",
        "rxnorm-combination-product",
        "rxnorm-ingredient-strength-from-text",
        "rxnorm-ingredient-no-strength",
        "medication-ingredient-code",
        "medication-ingredient-text",
        "brand-name-in-text",
        "longest-name-wins",
        "salt-name",
        "strength-per-ml",
        "unknown-drug",
        "empty-product",
    ],
)
def test_resolve_ingredients_product_shapes_give_known_ingredients(
    product: Concept,
    ingredients: tuple[IngredientStrength, ...],
    expected: list[tuple[str, float | None]],
) -> None:
    """Verify that every product shape resolves to its known ingredients and strengths, and an
    unknown or empty product to none."""
    resolved = resolve_ingredients(product, ingredients, KNOWLEDGE)
    assert [(r.name, r.strength_mg) for r in resolved] == expected


def test_resolve_ingredients_non_depression_product_carries_its_use() -> None:
    """Verify that a product the knowledge marks as never an antidepressant (oral selegiline)
    carries that use, and an ordinary product none."""
    (selegiline,) = resolve_ingredients(rxnorm("859193"), (), KNOWLEDGE)
    (sertraline,) = resolve_ingredients(rxnorm("312941"), (), KNOWLEDGE)
    assert selegiline.name == "selegiline"
    assert selegiline.non_depression_use
    assert sertraline.non_depression_use is None


# --- daily doses ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fact", "strength", "expected"),
    [
        (order("sertraline", weeks_ago=1, mg=50, per_day=2), None, 100.0),
        (order("sertraline", weeks_ago=1, mg=2, per_day=1, unit="unit"), 50.0, 100.0),
        (order("sertraline", weeks_ago=1, mg=2, per_day=1, unit="unit"), None, None),
        (order("sertraline", weeks_ago=1, mg=5, per_day=1, unit="ml"), 20.0, 100.0),
        (order("sertraline", weeks_ago=1, mg=2, per_day=1, unit="puff"), 50.0, None),
        (order("sertraline", weeks_ago=1, mg=1, per_day=1, per_kg=True), None, None),
        (order("sertraline", weeks_ago=1, mg=None), 50.0, None),
    ],
    ids=[
        "mg-times-frequency",
        "tablets-times-strength",
        "tablets-without-strength",
        "ml-times-strength-per-ml",
        "unknown-unit",
        "per-kg-dose",
        "no-dose",
    ],
)
def test_daily_mg_dose_shapes_give_mg_per_day(
    fact: MedicationFact, strength: float | None, expected: float | None
) -> None:
    """Verify that the daily dose is dose x frequency in mg, tablets x strength, and unknown when
    the unit or the strength cannot give milligrams."""
    assert daily_mg(fact, strength, KNOWLEDGE) == expected


def test_daily_mg_no_frequency_uses_the_default_doses_per_day() -> None:
    """Verify that a dose with no timing is taken the knowledge's default number of times a day."""
    fact = order("sertraline", weeks_ago=1, mg=50, per_day=None)
    assert daily_mg(fact, None, KNOWLEDGE) == 50 * LIMITS.default_doses_per_day.value


SERTRALINE_MIN = KNOWLEDGE.ingredients["sertraline"].min_daily_dose_mg or 0.0
MULTIPLE = LIMITS.implausible_dose_multiple.value


@pytest.mark.parametrize(
    ("ingredient", "mg", "plausible"),
    [
        ("sertraline", SERTRALINE_MIN, True),
        ("sertraline", SERTRALINE_MIN * MULTIPLE, True),
        ("sertraline", SERTRALINE_MIN * MULTIPLE + 1, False),
        ("sertraline", 0.0, True),
        ("sertraline", -5.0, False),
        ("dextromethorphan", 1e6, True),
    ],
    ids=[
        "adequate-minimum",
        "at-the-multiple",
        "above-the-multiple",
        "zero",
        "negative",
        "no-adequate-minimum",
    ],
)
def test_plausible_daily_mg_implausible_dose_reads_as_unknown(
    ingredient: str, mg: float, plausible: bool
) -> None:
    """Verify that a daily dose above implausible_dose_multiple x the adequate minimum, or below
    zero, reads as unknown with a reason, and any other dose is kept."""
    fact = order(ingredient, weeks_ago=1, mg=mg)
    dose, why = plausible_daily_mg(fact, ResolvedIngredient(ingredient, None), KNOWLEDGE)
    if plausible:
        assert (dose, why) == (mg, None)
    else:
        assert dose is None
        assert why is not None and fact.ref in why and "implausible" in why


def test_exposures_implausible_dose_is_an_unknown_dose_and_a_gap() -> None:
    """Verify that an exposure with an implausible daily dose keeps its period, has no dose, and
    the record is reported."""
    fact = order("sertraline", weeks_ago=10, mg=SERTRALINE_MIN * MULTIPLE * 2)
    found, gaps = _exposures(fact)
    assert [(name, dose) for name, _, _, _, dose in found] == [("sertraline", None)]
    assert any(fact.ref in gap and "implausible" in gap for gap in gaps)


# --- which records are exposures -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "intent"),
    [(status, "order") for status in sorted(SKIPPED_STATUSES)] + [("active", "proposal")],
    ids=[*sorted(SKIPPED_STATUSES), "proposal"],
)
def test_exposures_never_taken_record_gives_no_exposure(status: str, intent: str) -> None:
    """Verify that a record whose status or intent says the drug was never taken (or not yet
    ordered) gives no exposure and no gap."""
    fact = order("sertraline", weeks_ago=10, mg=100, status=status, intent=intent)
    assert _exposures(fact) == ([], [])


@pytest.mark.parametrize(
    ("fact", "expected"),
    [
        (order("acetaminophen", weeks_ago=10, mg=1000), []),
        (order("lorazepam", weeks_ago=10, mg=1), [("lorazepam", "cns-depressant")]),
        (order("quetiapine", weeks_ago=10, mg=150), [("quetiapine", "augmenter")]),
    ],
    ids=["unknown-drug", "co-medication", "augmenter"],
)
def test_exposures_drug_role_comes_from_the_knowledge(
    fact: MedicationFact, expected: list[tuple[str, str]]
) -> None:
    """Verify that an unknown drug gives no exposure, and a known one an exposure with its role
    from the knowledge (the trial rules decide what each role means)."""
    found, _ = exposures((fact,), now=NOW, knowledge=KNOWLEDGE)
    assert [(e.ingredient, e.role) for e in found] == expected


def test_exposures_undated_record_is_a_gap_not_an_exposure() -> None:
    """Verify that a record without any date is not placed and is reported by reference."""
    fact = order("sertraline", weeks_ago=10, mg=100, start="none")
    found, gaps = _exposures(fact)
    assert found == []
    assert len(gaps) == 1 and fact.ref in gaps[0] and "no date" in gaps[0]


# --- the period a record covers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fact", "end", "ongoing"),
    [
        (order("sertraline", weeks_ago=20, mg=100, supply_days=28), ago(20) + timedelta(28), False),
        (
            order("sertraline", weeks_ago=20, mg=100, supply_days=90, end_weeks_ago=15),
            ago(15),
            False,
        ),
        (
            order("sertraline", weeks_ago=20, mg=100, supply_days=None),
            ago(20) + timedelta(DEFAULT_SUPPLY),
            False,
        ),
        (order("sertraline", weeks_ago=20, mg=100, supply_days=None, status="active"), NOW, True),
        (
            order(
                "sertraline",
                weeks_ago=0,
                mg=100,
                supply_days=30,
                status="active",
                start=ago(days=30 + DEFAULT_SUPPLY - 1),
            ),
            NOW,
            True,
        ),
        (
            order(
                "sertraline",
                weeks_ago=0,
                mg=100,
                supply_days=30,
                status="active",
                start=ago(days=30 + DEFAULT_SUPPLY + 1),
            ),
            ago(days=DEFAULT_SUPPLY + 1),
            False,
        ),
        (order("sertraline", weeks_ago=2, mg=100, supply_days=90), NOW, True),
        (statement("sertraline", weeks_ago=20, end_weeks_ago=12, mg=100), ago(12), False),
        (
            statement("sertraline", weeks_ago=20, end_weeks_ago=None, mg=100, status="active"),
            NOW,
            True,
        ),
        (
            statement("sertraline", weeks_ago=20, end_weeks_ago=None, mg=100),
            ago(20) + timedelta(DEFAULT_SUPPLY),
            False,
        ),
        (
            order("sertraline", weeks_ago=20, mg=100, supply_days=90, end_weeks_ago=25),
            ago(20),
            False,
        ),
    ],
    ids=[
        "supply-days",
        "end-date-wins-over-supply",
        "no-supply-default-supply",
        "active-no-supply-runs-to-now",
        "active-supply-ran-out-within-a-default-supply",
        "active-supply-ran-out-longer-ago",
        "supply-still-covers-now",
        "statement-period",
        "statement-active-open",
        "statement-completed-open-default-supply",
        "end-before-start-is-clamped",
    ],
)
def test_exposures_record_period_gives_end_and_ongoing(
    fact: MedicationFact, end: datetime, ongoing: bool
) -> None:
    """Verify that an exposure covers the record's end date, else its supply, else (active) now,
    else the default supply, and that what runs to now is ongoing."""
    found, _ = _exposures(fact)
    assert [(e, o) for _, _, e, o, _ in found] == [(end, ongoing)]


@pytest.mark.parametrize(
    ("started_weeks_ago", "gap"),
    [(STALE + 1, True), (STALE - 1, False)],
    ids=["older-than-stale-active-weeks", "recent"],
)
def test_exposures_active_order_without_end_or_supply_stale_is_reported(
    started_weeks_ago: float, gap: bool
) -> None:
    """Verify that an active order with no end and no supply is taken as still taken, and reported
    for verification once it started more than stale_active_weeks ago."""
    fact = order(
        "sertraline", weeks_ago=started_weeks_ago, mg=100, supply_days=None, status="active"
    )
    found, gaps = _exposures(fact)
    assert [(e, o) for _, _, e, o, _ in found] == [(NOW, True)]
    assert bool([g for g in gaps if fact.ref in g and "verify" in g]) is gap


def test_exposures_stopped_order_supply_past_now_is_not_ongoing() -> None:
    """Verify that an order with status "stopped" (permanently halted) is not read as still taken
    even when its supply would run past now."""
    fact = order(
        "sertraline",
        weeks_ago=3,
        mg=100,
        supply_days=90,
        status="stopped",
        status_reasons=(text("side effects"),),
    )
    found, _ = _exposures(fact)
    assert found
    assert not any(ongoing for _, _, _, ongoing, _ in found)


@pytest.mark.parametrize(
    ("deceased_weeks_ago", "end"),
    [(10, ago(10)), (None, NOW)],
    ids=["deceased-ten-weeks-ago", "alive"],
)
def test_exposures_deceased_nothing_taken_after_death(
    deceased_weeks_ago: float | None, end: datetime
) -> None:
    """Verify that an order still running is taken to end at the date of death."""
    fact = order("sertraline", weeks_ago=20, mg=100, supply_days=None, status="active")
    died = ago(deceased_weeks_ago) if deceased_weeks_ago is not None else None
    found, _ = _exposures(fact, deceased_at=died)
    assert [e for _, _, e, _, _ in found] == [end]


# --- indications ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reasons", "use"),
    [
        ((), None),
        ((text("Insomnia"),), "prescribed for Insomnia"),
        ((text("Insomnia"), coded("F33.1")), None),
        ((coded("F33.1"),), None),
        ((text("Major depression"),), None),
    ],
    ids=["no-reason", "other-indication", "other-and-depression", "depression-code", "text"],
)
def test_exposures_stated_indication_other_than_depression_is_marked(
    reasons: tuple[Concept, ...], use: str | None
) -> None:
    """Verify that an order whose only stated indications are not depression is marked as for
    another use, and any depression reason (or none) keeps it a depression treatment."""
    found, _ = exposures(
        (order("trazodone", weeks_ago=10, mg=300, reasons=reasons),), now=NOW, knowledge=KNOWLEDGE
    )
    assert [e.non_depression_use for e in found] == [use]


@pytest.mark.parametrize(
    ("as_needed", "reasons", "use"),
    [
        (False, (), None),
        (True, (), "taken as needed (not a regular daily dose)"),
        (True, (text("Insomnia"),), "prescribed for Insomnia"),
    ],
    ids=["scheduled", "as-needed", "as-needed-with-other-indication"],
)
def test_exposures_as_needed_record_is_not_a_depression_treatment(
    as_needed: bool, reasons: tuple[Concept, ...], use: str | None
) -> None:
    """Verify that an as-needed record is marked as not a depression treatment (an
    antidepressant works taken daily), a stated other indication taking precedence in the
    wording."""
    fact = order("trazodone", weeks_ago=10, mg=300, reasons=reasons, as_needed=as_needed)
    found, _ = exposures((fact,), now=NOW, knowledge=KNOWLEDGE)
    assert [e.non_depression_use for e in found] == [use]


# --- titration steps -----------------------------------------------------------------------------

VENLAFAXINE_MIN = KNOWLEDGE.ingredients["venlafaxine"].min_daily_dose_mg or 0.0


@pytest.mark.parametrize(
    ("fact", "doses"),
    [
        (
            order(
                "venlafaxine",
                weeks_ago=10,
                mg=VENLAFAXINE_MIN,
                supply_days=42,
                steps=(DoseStep(VENLAFAXINE_MIN / 2, 28), DoseStep(VENLAFAXINE_MIN, 14)),
            ),
            [(VENLAFAXINE_MIN / 2, 28), (VENLAFAXINE_MIN, 14)],
        ),
        (
            order(
                "venlafaxine 75 MG tablet",
                weeks_ago=10,
                mg=2,
                unit="unit",
                supply_days=42,
                steps=(DoseStep(1, 28), DoseStep(2, 14)),
            ),
            [(75.0, 28), (150.0, 14)],
        ),
        (
            order(
                "venlafaxine",
                weeks_ago=10,
                mg=VENLAFAXINE_MIN,
                supply_days=21,
                steps=(DoseStep(VENLAFAXINE_MIN / 2, 28), DoseStep(VENLAFAXINE_MIN, 14)),
            ),
            [(VENLAFAXINE_MIN / 2, 21)],
        ),
        (
            order("venlafaxine", weeks_ago=10, mg=VENLAFAXINE_MIN, supply_days=42),
            [(VENLAFAXINE_MIN, 42)],
        ),
    ],
    ids=["mg-steps", "tablet-steps-times-strength", "supply-ends-in-first-step", "no-steps"],
)
def test_exposures_titration_steps_give_one_exposure_per_step(
    fact: MedicationFact, doses: list[tuple[float, float]]
) -> None:
    """Verify that a titration inside one order gives one exposure per step, in order and back
    to back, each with its own daily dose, so that adequacy counts from the step that reaches
    the dose."""
    found, _ = _exposures(fact)
    assert [(dose, (end - start) / timedelta(days=1)) for _, start, end, _, dose in found] == doses
    assert all(a[2] == b[1] for a, b in pairwise(found))


# --- the patient's reports -----------------------------------------------------------------------


SUPPLY = 30.0


@pytest.mark.parametrize(
    ("order_days_before_statement", "removed"),
    [
        (0, True),
        (GRACE, True),
        (SUPPLY + GRACE + 7, False),
        (GRACE + 7, False),
    ],
    ids=[
        "same-start",
        "within-coverage-grace",
        "order-ended-before-the-statement",
        "order-started-earlier-and-overlaps",
    ],
)
def test_exposures_not_taken_statement_removes_the_orders_it_overlaps(
    order_days_before_statement: float, removed: bool
) -> None:
    """Verify that an order of a drug the patient reported not taking is not exposure when it
    starts inside the not-taken statement's period (coverage_grace_days of slack), the report is
    named, and an order that started earlier keeps what it covered before the period (clipped
    there: see the next test) or, when it ended before the period, all of it."""
    said = statement("escitalopram", weeks_ago=47, end_weeks_ago=37, status="not-taken")
    ordered = order(
        "escitalopram",
        weeks_ago=0,
        mg=20,
        supply_days=SUPPLY,
        start=ago(47, days=order_days_before_statement),
    )
    found, gaps = _exposures(ordered, said)
    assert bool(found) is not removed
    reported = [g for g in gaps if said.ref in g and ordered.ref in g and "not taken" in g]
    assert bool(reported) is (removed or order_days_before_statement == GRACE + 7)


def test_exposures_not_taken_statement_clips_an_order_started_before_it() -> None:
    """Verify that an order started before a not-taken period ends where the period starts."""
    said = statement("escitalopram", weeks_ago=47, end_weeks_ago=37, status="not-taken")
    ordered = order("escitalopram", weeks_ago=0, mg=20, supply_days=90, start=ago(49))
    found, gaps = _exposures(ordered, said)
    assert [end for _, _, end, _, _ in found] == [said.start]
    assert any("supply cut" in g and said.ref in g for g in gaps)


def test_exposures_not_taken_statement_other_drug_keeps_the_order() -> None:
    """Verify that a not-taken report about one drug leaves an order of another drug alone."""
    said = statement("escitalopram", weeks_ago=47, end_weeks_ago=37, status="not-taken")
    ordered = order("sertraline", weeks_ago=47, mg=100, supply_days=90)
    found, gaps = _exposures(ordered, said)
    assert [name for name, *_ in found] == ["sertraline"]
    assert gaps == []


@pytest.mark.parametrize(
    ("stmt", "end", "clipped"),
    [
        (
            statement("escitalopram", weeks_ago=46, end_weeks_ago=44.5, mg=20, status="stopped"),
            ago(44.5),
            True,
        ),
        (
            statement("escitalopram", weeks_ago=46, end_weeks_ago=44.5, mg=20, status="completed"),
            ago(44.5),
            True,
        ),
        (
            statement("escitalopram", weeks_ago=60, end_weeks_ago=50, mg=20, status="stopped"),
            ago(46) + timedelta(90),
            False,
        ),
        (
            statement("escitalopram", weeks_ago=46, end_weeks_ago=None, mg=20, status="stopped"),
            ago(46) + timedelta(90),
            False,
        ),
    ],
    ids=["stopped-early", "completed-early", "stopped-before-the-order", "stopped-without-end"],
)
def test_exposures_stopped_statement_clips_the_order(
    stmt: MedicationFact, end: datetime, clipped: bool
) -> None:
    """Verify that an order ends where the patient's own statement says the drug was stopped
    (reported as a gap), and a statement that ended before the order, or has no end, leaves the
    order's supply alone."""
    ordered = order("escitalopram", weeks_ago=46, mg=20, supply_days=90)
    found, gaps = exposures((ordered, stmt), now=NOW, knowledge=KNOWLEDGE)
    from_order = [e for e in found if e.ref == ordered.ref]
    assert [e.end for e in from_order] == [end]
    assert bool([g for g in gaps if "supply cut" in g and stmt.ref in g]) is clipped


@pytest.mark.parametrize(
    "drug",
    ["lorazepam", "sertraline"],
    ids=["no-adequate-minimum", "with-adequate-minimum"],
)
def test_exposures_negative_dose_reads_as_unknown(drug: str) -> None:
    """Verify that a negative dose is never a dose, whether or not the ingredient has an adequate
    minimum (found by the property below: lorazepam at -1 mg kept its dose)."""
    found, gaps = exposures(
        (order(drug, weeks_ago=10, mg=-1, supply_days=30),), now=NOW, knowledge=KNOWLEDGE
    )
    assert found and all(e.daily_mg is None for e in found)
    assert any("implausible" in g for g in gaps)


# --- properties ----------------------------------------------------------------------------------

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(facts=st.lists(medication_facts(), max_size=12))
def test_exposures_any_history_never_raises_and_stays_in_time(facts: list[MedicationFact]) -> None:
    """Verify that any medication history gives exposures without raising: each of a known
    ingredient, from a record that may be taken, inside its record's start and now, and with a
    non-negative daily dose when it has one."""
    found, gaps = exposures(tuple(facts), now=NOW, knowledge=KNOWLEDGE)
    by_ref = {f.ref: f for f in facts}
    for item in found:
        fact = by_ref[item.ref]
        assert item.ingredient in KNOWLEDGE.ingredients
        assert fact.status not in SKIPPED_STATUSES and fact.intent != "proposal"
        assert fact.start is not None and fact.start <= item.start <= item.end <= NOW
        assert item.daily_mg is None or item.daily_mg >= 0
    assert all(isinstance(gap, str) and gap for gap in gaps)
