"""Clinical facts: the small, frozen, FHIR-free shapes the rules work on.

Every fact keeps ``ref`` ("Type/id") so that findings can cite their evidence. Datetimes are always
timezone-aware (see ``fhir_mappers.dates`` for the partial-date policy).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

BirthPrecision = Literal["year", "month", "day"]


@dataclass(frozen=True, slots=True)
class Coding:
    system: str | None
    code: str | None
    display: str | None = None


@dataclass(frozen=True, slots=True)
class Concept:
    """A CodeableConcept reduced to its codings and text."""

    codings: tuple[Coding, ...] = ()
    text: str | None = None

    def texts(self) -> Iterator[str]:
        """The human-readable strings: text first, then each coding's display."""
        if self.text:
            yield self.text
        for coding in self.codings:
            if coding.display:
                yield coding.display

    def is_empty(self) -> bool:
        return not self.codings and not self.text

    def label(self) -> str:
        """A short human label (text, else first display, else first code)."""
        for text in self.texts():
            return text
        for coding in self.codings:
            if coding.code:
                return coding.code
        return "unnamed"


EMPTY_CONCEPT = Concept()


@dataclass(frozen=True, slots=True)
class DiagnosisFact:
    ref: str
    concept: Concept
    clinical_status: str | None
    verification_status: str | None
    onset: datetime | None
    abatement: datetime | None
    recorded: datetime | None

    @property
    def noted(self) -> datetime | None:
        """When the condition is known to have been present: onset, else recorded date."""
        return self.onset or self.recorded


@dataclass(frozen=True, slots=True)
class IngredientStrength:
    """One ``Medication.ingredient`` with its strength per unit, when it is in mg."""

    concept: Concept
    strength_mg: float | None


@dataclass(frozen=True, slots=True)
class DoseStep:
    """One step of a titration inside one order (dosage lines with the same ``sequence``)."""

    daily_value: float
    """Dose x frequency of the step, in the fact's ``dose_unit``."""
    days: float | None
    """How long the step lasts (``boundsDuration``/``boundsPeriod``); None: until the end."""


MedicationResource = Literal[
    "MedicationRequest", "MedicationStatement", "MedicationAdministration", "MedicationDispense"
]
"""A record of a drug: ordered, reported by the patient, given, or handed over."""


@dataclass(frozen=True, slots=True)
class MedicationFact:
    """One MedicationRequest, MedicationStatement, MedicationAdministration or
    MedicationDispense, with the product resolved if referenced."""

    ref: str
    resource_type: MedicationResource
    product: Concept
    ingredients: tuple[IngredientStrength, ...]
    status: str | None
    intent: str | None
    status_reasons: tuple[Concept, ...]
    reasons: tuple[Concept, ...]
    start: datetime | None
    end: datetime | None
    supply_days: float | None
    dose_value: float | None
    """The largest single administration, in ``dose_unit`` (mg when the unit is a mass)."""
    daily_dose_value: float | None
    """Dose x frequency added over concurrent lines (same ``sequence``), the largest step."""
    dose_unit: str | None
    dose_per_kg: bool
    doses_per_day: float | None
    as_needed: bool
    route: Concept
    dosage_text: str | None
    steps: tuple[DoseStep, ...] = ()
    """Titration steps in order, when the order has more than one with a known duration."""
    infusion_minutes: float | None = None
    """How long one administration runs (timing.repeat.duration, or dose / rate)."""


@dataclass(frozen=True, slots=True)
class ComponentFact:
    concept: Concept
    value: float | None
    unit: str | None
    value_concept: Concept = EMPTY_CONCEPT
    """A coded answer (valueCodeableConcept), e.g. a PHQ-9 item answered with a LOINC answer."""


@dataclass(frozen=True, slots=True)
class ObservationFact:
    ref: str
    concept: Concept
    status: str | None
    effective: datetime | None
    value: float | None
    unit: str | None
    value_concept: Concept
    components: tuple[ComponentFact, ...] = ()


@dataclass(frozen=True, slots=True)
class ReferralFact:
    """One ServiceRequest: what is requested, where it stands, and when."""

    ref: str
    concept: Concept
    status: str | None
    intent: str | None
    identifier_systems: tuple[str, ...]
    authored: datetime | None
    occurrence_end: datetime | None
    """When it was (to be) done: ``occurrenceDateTime`` or the end of ``occurrencePeriod``."""


@dataclass(frozen=True, slots=True)
class AllergyFact:
    ref: str
    concept: Concept
    clinical_status: str | None
    verification_status: str | None


@dataclass(frozen=True, slots=True)
class PatientFact:
    ref: str
    birth_date: date | None
    birth_precision: BirthPrecision | None
    gender: str | None
    deceased: bool
    deceased_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Unreadable:
    """Data the rules could not read: a whole source (a query that failed, answered garbage or
    was cut short) or one record malformed in an element a rule reads. The rules turn each one
    into the screens it leaves undone; it is never read as "nothing found"."""

    resource_type: str
    why: str
    concept: Concept | None = None
    """The record's code when it could be read: only the screens whose code lists match it are
    affected. None: any record of the type may have been affected."""


@dataclass(frozen=True, slots=True)
class Facts:
    """All facts about one patient, plus what could not be read."""

    patient: PatientFact | None = None
    diagnoses: tuple[DiagnosisFact, ...] = ()
    medications: tuple[MedicationFact, ...] = ()
    observations: tuple[ObservationFact, ...] = ()
    allergies: tuple[AllergyFact, ...] = ()
    referrals: tuple[ReferralFact, ...] = ()
    gaps: tuple[str, ...] = field(default=())
    unreadable: tuple[Unreadable, ...] = ()
