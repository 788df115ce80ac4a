"""Implausible values are set aside before any rule reads them, and reported. Pure.

FHIR values are hostile until checked: a supply of 3,000,000 days, a prescription dated in year
9999, a blood pressure of 1,000,000 mmHg or a PHQ-9 total of 99 is an entry error, not a fact.
``plausible`` returns the facts without such values, each one reported as ``Unreadable`` (so the
screens that read it are not reported as done). The limits are knowledge (``policy.json``:
``max_order_supply_days``, ``future_tolerance_days``, ``max_planned_start_days``,
``max_record_age_years`` and the ``ranges`` of readings). A medication record that starts after
now but within ``max_planned_start_days`` is a planned start: not yet an exposure, left out
without a report. Doses are checked where the ingredient is known (``medications``).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

from fhir_mappers.dates import shift
from fhir_mappers.facts import (
    ComponentFact,
    Concept,
    DiagnosisFact,
    Facts,
    MedicationFact,
    ObservationFact,
    PatientFact,
    Unreadable,
)
from hooks.rules.conditions import concept_matches
from hooks.rules.knowledge import Knowledge

MASS_TO_KG = {"kg": 1.0, "g": 0.001, "[lb_av]": 0.45359237, "lb": 0.45359237, "lbs": 0.45359237}
PRESSURE = frozenset({"mm[hg]", "mmhg", "mm hg"})
SCORE = frozenset({"{score}", "score", "1", "{points}"})


def in_unit(value: float, unit: str | None, target: str) -> float | None:
    """``value`` (in ``unit``) expressed in the range's unit, or None if it cannot be."""
    given = (unit or "").strip().lower()
    if target == "kg":
        factor = MASS_TO_KG.get(given or "kg")
        return None if factor is None else value * factor
    if target == "mmHg":
        return value if not given or given in PRESSURE else None
    if target == "score":
        return value if not given or given in SCORE else None
    return value if not given or given == target.lower() else None


class _Window:
    def __init__(self, now: datetime, knowledge: Knowledge) -> None:
        tolerance = knowledge.thresholds.future_tolerance_days.value
        age = knowledge.thresholds.max_record_age_years.value
        self.now = now
        self.latest = shift(now, days=tolerance) or now
        self.latest_start = (
            shift(now, days=knowledge.thresholds.max_planned_start_days.value) or now
        )
        self.earliest = shift(now, days=-365.25 * age) or datetime.min.replace(tzinfo=now.tzinfo)

    def fits(self, moment: datetime | None) -> bool:
        return moment is None or self.earliest <= moment <= self.latest

    def fits_day(self, day: date | None) -> bool:
        return day is None or self.earliest.date() <= day <= self.latest.date()


def _reading(
    concept: Concept, value: float | None, unit: str | None, knowledge: Knowledge
) -> str | None:
    """Why a reading is implausible for its code (None: plausible, or no range applies)."""
    if value is None:
        return None
    for name, limits in knowledge.policy.ranges.items():
        if not concept_matches(knowledge.code_list(name), concept):
            continue
        converted = in_unit(value, unit, limits.unit)
        if converted is not None and not limits.low <= converted <= limits.high:
            return (
                f"{value:g} {unit or ''}".strip()
                + f" is outside {limits.low:g}-{limits.high:g} {limits.unit}"
            )
    return None


def _observation(
    obs: ObservationFact, window: _Window, knowledge: Knowledge, out: list[Unreadable]
) -> ObservationFact | None:
    if not window.fits(obs.effective):
        out.append(Unreadable("Observation", f"{obs.ref} has an implausible date", obs.concept))
        return None
    value = obs.value
    why = _reading(obs.concept, value, obs.unit, knowledge)
    if why:
        out.append(Unreadable("Observation", f"{obs.ref}: {why}", obs.concept))
        value = None
    components: list[ComponentFact] = []
    for component in obs.components:
        why = _reading(component.concept, component.value, component.unit, knowledge)
        if why:
            out.append(Unreadable("Observation", f"{obs.ref}: {why}", component.concept))
            component = replace(component, value=None)
        components.append(component)
    return replace(obs, value=value, components=tuple(components))


def _medication(
    fact: MedicationFact, window: _Window, knowledge: Knowledge, out: list[Unreadable]
) -> MedicationFact | None:
    start = fact.start
    if start is not None and window.now < start <= window.latest_start:
        return None  # a planned start: not (yet) an exposure
    if start is not None and not window.earliest <= start <= window.latest_start:
        out.append(
            Unreadable(fact.resource_type, f"{fact.ref} has an implausible date", fact.product)
        )
        return None
    supply = fact.supply_days
    if supply is not None and not 0 <= supply <= knowledge.thresholds.max_order_supply_days.value:
        out.append(
            Unreadable(
                fact.resource_type,
                f"{fact.ref}: a supply of {supply:,.0f} days is implausible; read as unknown",
                fact.product,
            )
        )
        return replace(fact, supply_days=None)
    return fact


def _diagnosis(diagnosis: DiagnosisFact, window: _Window, out: list[Unreadable]) -> DiagnosisFact:
    dates = {
        "onset": diagnosis.onset,
        "abatement": diagnosis.abatement,
        "recorded": diagnosis.recorded,
    }
    bad = [name for name, moment in dates.items() if not window.fits(moment)]
    if not bad:
        return diagnosis
    out.append(
        Unreadable(
            "Condition",
            f"{diagnosis.ref} has an implausible {' and '.join(bad)} date",
            diagnosis.concept,
        )
    )
    return replace(
        diagnosis,
        onset=None if "onset" in bad else diagnosis.onset,
        abatement=None if "abatement" in bad else diagnosis.abatement,
        recorded=None if "recorded" in bad else diagnosis.recorded,
    )


def _patient(patient: PatientFact, window: _Window, out: list[Unreadable]) -> PatientFact:
    if window.fits_day(patient.birth_date) and window.fits(patient.deceased_at):
        return patient
    out.append(Unreadable("Patient", f"{patient.ref} has an implausible birth or death date"))
    return replace(
        patient,
        birth_date=patient.birth_date if window.fits_day(patient.birth_date) else None,
        birth_precision=patient.birth_precision if window.fits_day(patient.birth_date) else None,
        deceased_at=patient.deceased_at if window.fits(patient.deceased_at) else None,
    )


def plausible(facts: Facts, *, now: datetime, knowledge: Knowledge) -> Facts:
    """The facts with implausible values set aside; each one reported as ``Unreadable``."""
    window = _Window(now, knowledge)
    out: list[Unreadable] = []
    observations = tuple(
        o for o in (_observation(o, window, knowledge, out) for o in facts.observations) if o
    )
    medications = tuple(
        m for m in (_medication(m, window, knowledge, out) for m in facts.medications) if m
    )
    diagnoses = tuple(_diagnosis(d, window, out) for d in facts.diagnoses)
    patient = _patient(facts.patient, window, out) if facts.patient is not None else None
    if not out:
        return facts
    return replace(
        facts,
        patient=patient,
        diagnoses=diagnoses,
        medications=medications,
        observations=observations,
        unreadable=facts.unreadable + tuple(out),
    )
