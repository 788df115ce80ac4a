"""Builders of frozen facts (not FHIR JSON) for the unit tests of the pure rules.

Every date is relative to the frozen clock ``tests.factories.NOW`` (``ago(weeks=..., days=...)``),
so that no table goes stale. Each builder gives a realistic default and takes keywords for what a
test varies; references are unique ("MedicationRequest/mr-7") so that evidence can be asserted.
"""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from typing import Literal

from hypothesis import strategies as st

from fhir_mappers.codes import ICD10CM, LOINC, RXNORM, SNOMED
from fhir_mappers.facts import (
    EMPTY_CONCEPT,
    AllergyFact,
    BirthPrecision,
    Coding,
    ComponentFact,
    Concept,
    DiagnosisFact,
    DoseStep,
    Facts,
    IngredientStrength,
    MedicationFact,
    ObservationFact,
    PatientFact,
    Unreadable,
)
from hooks.rules.knowledge import Knowledge, default_knowledge
from hooks.rules.medications import Exposure
from hooks.rules.questionnaires import Score
from tests.factories import NOW

KNOWLEDGE: Knowledge = default_knowledge()
LIMITS = KNOWLEDGE.thresholds

STATUS_REASON = "http://terminology.hl7.org/CodeSystem/medicationrequest-status-reason"

_ids = itertools.count(1)


def ago(weeks: float = 0, days: float = 0) -> datetime:
    """An instant before the frozen clock."""
    return NOW - timedelta(weeks=weeks, days=days)


def ref(kind: str, prefix: str) -> str:
    return f"{kind}/{prefix}-{next(_ids)}"


def coded(code: str, system: str = ICD10CM, display: str | None = None) -> Concept:
    """A concept with one coding (and the display as text when given)."""
    return Concept((Coding(system, code, display),), display)


def text(value: str) -> Concept:
    """A text-only concept (no coding), as free-text problem lists and orders have."""
    return Concept((), value)


def rxnorm(code: str, display: str | None = None) -> Concept:
    return coded(code, RXNORM, display)


def snomed(code: str, display: str | None = None) -> Concept:
    return coded(code, SNOMED, display)


def loinc(code: str, display: str | None = None) -> Concept:
    return coded(code, LOINC, display)


# --- diagnoses -----------------------------------------------------------------------------------


def dx(
    code: str | Concept,
    *,
    status: str | None = "active",
    verification: str | None = "confirmed",
    weeks_ago: float | None = 52,
    abated_weeks_ago: float | None = None,
    recorded_weeks_ago: float | None = None,
    system: str = ICD10CM,
) -> DiagnosisFact:
    """A Condition: an ICD-10-CM code (or any concept), active and confirmed by default, noted
    ``weeks_ago`` (None: undated)."""
    concept = code if isinstance(code, Concept) else coded(code, system)
    onset = ago(weeks_ago) if weeks_ago is not None else None
    recorded = ago(recorded_weeks_ago) if recorded_weeks_ago is not None else onset
    return DiagnosisFact(
        ref=ref("Condition", "c"),
        concept=concept,
        clinical_status=status,
        verification_status=verification,
        onset=onset,
        abatement=ago(abated_weeks_ago) if abated_weeks_ago is not None else None,
        recorded=recorded,
    )


MDD = "F33.1"
"""Major depressive disorder, recurrent, moderate: an active unipolar diagnosis."""


def mdd(**kw: object) -> DiagnosisFact:
    return dx(MDD, **kw)  # type: ignore[arg-type]


# --- medications ---------------------------------------------------------------------------------


def order(
    product: str | Concept,
    *,
    weeks_ago: float,
    mg: float | None = None,
    per_day: float | None = 1,
    unit: str | None = "mg",
    supply_days: float | None = 30,
    status: str | None = "completed",
    end_weeks_ago: float | None = None,
    intent: str | None = "order",
    reasons: tuple[Concept, ...] = (),
    status_reasons: tuple[Concept, ...] = (),
    ingredients: tuple[IngredientStrength, ...] = (),
    steps: tuple[DoseStep, ...] = (),
    route: Concept = EMPTY_CONCEPT,
    dosage_text: str | None = None,
    per_kg: bool = False,
    as_needed: bool = False,
    infusion_minutes: float | None = None,
    start: datetime | Literal["none"] | None = None,
    resource_type: Literal["MedicationRequest", "MedicationStatement"] = "MedicationRequest",
) -> MedicationFact:
    """A MedicationRequest fact: ``mg`` per administration, ``per_day`` administrations a day
    (``mg`` x ``per_day`` is the daily dose), ``supply_days`` of supply from ``weeks_ago``."""
    concept = product if isinstance(product, Concept) else text(product)
    daily = mg * per_day if mg is not None and per_day is not None else None
    began = None if start == "none" else (start or ago(weeks_ago))
    prefix = "mr" if resource_type == "MedicationRequest" else "ms"
    return MedicationFact(
        ref=ref(resource_type, prefix),
        resource_type=resource_type,
        product=concept,
        ingredients=ingredients,
        status=status,
        intent=intent if resource_type == "MedicationRequest" else None,
        status_reasons=status_reasons,
        reasons=reasons,
        start=began,
        end=ago(end_weeks_ago) if end_weeks_ago is not None else None,
        supply_days=supply_days if resource_type == "MedicationRequest" else None,
        dose_value=mg,
        daily_dose_value=daily,
        dose_unit=unit if mg is not None else None,
        dose_per_kg=per_kg,
        doses_per_day=per_day if mg is not None else None,
        as_needed=as_needed,
        route=route,
        dosage_text=dosage_text,
        steps=steps,
        infusion_minutes=infusion_minutes,
    )


def statement(
    product: str | Concept,
    *,
    weeks_ago: float,
    end_weeks_ago: float | None,
    mg: float | None = None,
    status: str = "completed",
    status_reasons: tuple[Concept, ...] = (),
) -> MedicationFact:
    """A MedicationStatement fact over ``weeks_ago`` .. ``end_weeks_ago`` (None: open)."""
    return order(
        product,
        weeks_ago=weeks_ago,
        end_weeks_ago=end_weeks_ago,
        mg=mg,
        status=status,
        status_reasons=status_reasons,
        supply_days=None,
        resource_type="MedicationStatement",
    )


def reason(words: str) -> Concept:
    """A statusReason given as text."""
    return text(words)


def reason_code(code: str) -> Concept:
    """A statusReason coded in the HL7 medicationrequest-status-reason system."""
    return Concept((Coding(STATUS_REASON, code, None),), None)


def exposure(
    ingredient: str,
    *,
    start_weeks_ago: float,
    weeks: float,
    mg: float | None,
    ongoing: bool = False,
    status_reasons: tuple[Concept, ...] = (),
    use: str | None = None,
) -> Exposure:
    """One record's exposure to one ingredient, as ``medications.exposures`` makes them: the
    trial rules' input. An ongoing exposure runs to now."""
    start = ago(start_weeks_ago)
    end = NOW if ongoing else start + timedelta(weeks=weeks)
    fact = order(
        ingredient,
        weeks_ago=start_weeks_ago,
        mg=mg,
        supply_days=weeks * 7,
        status="active" if ongoing else ("stopped" if status_reasons else "completed"),
        status_reasons=status_reasons,
    )
    return Exposure(
        ingredient=ingredient,
        role=KNOWLEDGE.ingredients[ingredient].role,
        ref=fact.ref,
        start=start,
        end=end,
        ongoing=ongoing,
        daily_mg=mg,
        non_depression_use=use,
        fact=fact,
    )


def fills(
    ingredient: str,
    *,
    start_weeks_ago: float,
    weeks: float,
    mg: float | None,
    every_weeks: float = 4,
    last_reasons: tuple[Concept, ...] = (),
    ongoing: bool = False,
) -> list[Exposure]:
    """Back-to-back monthly supplies of one drug (the usual record of one course); the last one
    carries the stop reasons, or runs to now when ``ongoing``."""
    out: list[Exposure] = []
    offset = 0.0
    while offset < weeks:
        length = min(every_weeks, weeks - offset)
        last = offset + every_weeks >= weeks
        out.append(
            exposure(
                ingredient,
                start_weeks_ago=start_weeks_ago - offset,
                weeks=length,
                mg=mg,
                ongoing=ongoing and last,
                status_reasons=last_reasons if last else (),
            )
        )
        offset += every_weeks
    return out


# --- observations --------------------------------------------------------------------------------


def obs(
    concept: Concept,
    value: float | None,
    *,
    weeks_ago: float = 0,
    days_ago: float = 0,
    unit: str | None = None,
    status: str | None = "final",
    value_concept: Concept = EMPTY_CONCEPT,
    components: tuple[ComponentFact, ...] = (),
) -> ObservationFact:
    return ObservationFact(
        ref=ref("Observation", "o"),
        concept=concept,
        status=status,
        effective=ago(weeks_ago, days_ago),
        value=value,
        unit=unit,
        value_concept=value_concept,
        components=components,
    )


PHQ9_TOTAL = loinc("44261-6", "PHQ-9 total score")
PHQ9_ITEM9 = loinc("44260-8", "Thoughts that you would be better off dead")


def phq9(value: float, *, weeks_ago: float = 0, days_ago: float = 0) -> ObservationFact:
    return obs(PHQ9_TOTAL, value, weeks_ago=weeks_ago, days_ago=days_ago, unit="{score}")


def item9(value: float, *, weeks_ago: float = 0, days_ago: float = 0) -> ObservationFact:
    return obs(PHQ9_ITEM9, value, weeks_ago=weeks_ago, days_ago=days_ago, unit="{score}")


def score(value: float, *, weeks_ago: float = 0, days_ago: float = 0) -> Score:
    """A PHQ-9 total as the trial and episode rules read it."""
    return Score(ref("Observation", "phq"), ago(weeks_ago, days_ago), value)


def bp(systolic: float | None, diastolic: float | None, *, days_ago: float) -> ObservationFact:
    """A blood-pressure panel (85354-9) with systolic and diastolic components."""
    parts = []
    if systolic is not None:
        parts.append(ComponentFact(loinc("8480-6"), systolic, "mm[Hg]"))
    if diastolic is not None:
        parts.append(ComponentFact(loinc("8462-4"), diastolic, "mm[Hg]"))
    return obs(loinc("85354-9"), None, days_ago=days_ago, components=tuple(parts))


def weight(value: float, *, days_ago: float, unit: str = "kg") -> ObservationFact:
    return obs(loinc("29463-7", "Body weight"), value, days_ago=days_ago, unit=unit)


def pregnancy_status(pregnant: bool, *, weeks_ago: float) -> ObservationFact:
    answer = snomed("77386006", "Pregnant") if pregnant else snomed("60001007", "Not pregnant")
    return obs(loinc("82810-3"), None, weeks_ago=weeks_ago, value_concept=answer)


# --- patient, allergies, the whole record --------------------------------------------------------


def person(
    birth: date | None = date(1980, 5, 17),
    *,
    precision: BirthPrecision | None = "day",
    gender: str | None = "female",
    deceased: bool = False,
    deceased_at: datetime | None = None,
) -> PatientFact:
    return PatientFact(
        ref="Patient/p1",
        birth_date=birth,
        birth_precision=precision if birth is not None else None,
        gender=gender,
        deceased=deceased or deceased_at is not None,
        deceased_at=deceased_at,
    )


def allergy(
    concept: Concept, *, verification: str | None = "confirmed", status: str | None = "active"
) -> AllergyFact:
    return AllergyFact(ref("AllergyIntolerance", "a"), concept, status, verification)


def record(
    *items: DiagnosisFact | MedicationFact | ObservationFact | AllergyFact,
    patient: PatientFact | None = None,
    unreadable: tuple[Unreadable, ...] = (),
) -> Facts:
    """A patient's facts from a flat list of items (a default adult woman)."""
    return Facts(
        patient=patient if patient is not None else person(),
        diagnoses=tuple(i for i in items if isinstance(i, DiagnosisFact)),
        medications=tuple(i for i in items if isinstance(i, MedicationFact)),
        observations=tuple(i for i in items if isinstance(i, ObservationFact)),
        allergies=tuple(i for i in items if isinstance(i, AllergyFact)),
        unreadable=unreadable,
    )


# --- Hypothesis strategies -----------------------------------------------------------------------

HISTORY_DRUGS = (
    "sertraline",
    "escitalopram",
    "fluoxetine",
    "venlafaxine",
    "bupropion",
    "trazodone",
    "mirtazapine",
    "dextromethorphan",
    "quetiapine",
    "aripiprazole",
    "lithium",
    "lorazepam",
)
"""Antidepressants (with sleep doses and one without an ATRQ dose), augmenters and a
co-medication: enough to make switches, combinations, augmentations and non-trials collide."""

RECORD_KINDS: tuple[Literal["MedicationRequest", "MedicationStatement"], ...] = (
    "MedicationRequest",
    "MedicationStatement",
)

RECORD_STATUSES = (
    "active",
    "completed",
    "stopped",
    "on-hold",
    "unknown",
    "entered-in-error",
    "cancelled",
    "not-taken",
    "intended",
    "draft",
    None,
)

STOP_REASONS = (
    (),
    (reason("ineffective"),),
    (reason("remission achieved"),),
    (reason("insurance no longer covers"),),
    (reason_code("sintol"),),
    (reason("nausea, no response"),),
)


@st.composite
def medication_facts(draw: st.DrawFn) -> MedicationFact:
    """One MedicationRequest or MedicationStatement in the past 200 weeks, with any dose (none,
    zero, negative, huge), frequency, supply, status, stop reason and titration steps."""
    kind = draw(st.sampled_from(RECORD_KINDS))
    start_weeks = draw(st.floats(min_value=0, max_value=200))
    mg = draw(st.none() | st.floats(min_value=-1e3, max_value=1e7, allow_nan=False))
    steps = draw(
        st.lists(
            st.builds(
                DoseStep,
                st.floats(min_value=0, max_value=1e4),
                st.none() | st.floats(min_value=0, max_value=400),
            ),
            max_size=3,
        )
    )
    return order(
        draw(st.sampled_from(HISTORY_DRUGS)),
        weeks_ago=start_weeks,
        mg=mg,
        per_day=draw(st.none() | st.sampled_from((0.0, 0.5, 1.0, 2.0, 3.0))),
        unit=draw(st.sampled_from(("mg", "unit", "ml", "puff"))),
        supply_days=draw(st.none() | st.floats(min_value=0, max_value=731)),
        status=draw(st.sampled_from(RECORD_STATUSES)),
        end_weeks_ago=draw(st.none() | st.floats(min_value=0, max_value=200)),
        intent=draw(st.sampled_from(("order", "plan", "proposal", None))),
        status_reasons=draw(st.sampled_from(STOP_REASONS)),
        steps=tuple(steps) if len(steps) > 1 else (),
        start="none" if draw(st.integers(0, 19)) == 0 else None,
        resource_type=kind,
    )
