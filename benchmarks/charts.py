"""Synthetic patient charts for the benchmarks: real EHR shapes, deterministic from a seed.

A chart is a list of FHIR R4 resources for one patient, dated relative to ``ANCHOR`` (the clock
the benchmarked service runs with), built the way EHRs expose history:

- **MedicationRequest histories with renewals**: an antidepressant plan (an old fluoxetine trial,
  sertraline 50 -> 100 mg then a switch, escitalopram 10 -> 20 mg stopped as ineffective,
  venlafaxine 75 -> 150 mg still active, aripiprazole augmentation, trazodone 50 mg at night for
  sleep) spread over renewals, plus chronic and acute non-psychiatric drugs (lisinopril,
  metformin, atorvastatin, albuterol as needed, antibiotics...). Products come as a coded
  ``medicationCodeableConcept`` (mg or tablets), a ``contained`` Medication, or a reference to a
  Medication that the search ``_include``s; a few patient-reported MedicationStatements.
- **Observations by visit**: vital signs every visit (a US Core blood-pressure panel with
  components, heart rate, respiratory rate, temperature, SpO2, body weight, BMI, pain), PHQ-9
  total and item 9 with GAD-7 every third visit, a metabolic panel and a blood count every fourth,
  lipids, HbA1c and TSH every eighth. Only the BP panels, weights and PHQ-9s matter to the rules;
  everything else is the noise a real chart carries.
- **Problem list and encounter diagnoses** (ICD-10-CM with SNOMED CT translations), most of them
  irrelevant (hypertension, diabetes, asthma, back pain, URIs...), one active recurrent major
  depression; a few allergies.

The clinical story is the same at every size: treatment-resistant depression (failed adequate
trials of sertraline, escitalopram and venlafaxine), no contraindication, so ``patient-view``
answers with a referral card and the order hooks have something to say. Sizes: ``typical``
(about 300 resources), ``heavy`` (5,000 Observations, 400 medication records, 200 Conditions) and
``sweep_specs()`` (fractions of heavy, same composition) for the scaling curve.
"""

from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

ANCHOR = datetime(2026, 11, 27, 10, 30, tzinfo=timezone(timedelta(hours=4)))
"""The instant charts are built around and the benchmarked service's clock."""

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"

Resource = dict[str, Any]

PATIENT_ID = "pt-0000000000"
"""The patient of every chart. Fixed width, so that a load generator can replace it with
``pt-<10 digits>`` per request (same body length) to make every call a never-seen chart."""


@dataclass(frozen=True)
class ChartSpec:
    name: str
    observations: int
    medication_records: int
    conditions: int
    allergies: int
    years: float
    """How far back the visits (observations) go."""
    code_filtered_prefetch: bool = False
    """The EHR applies the ``observations`` template's code filter (only the LOINC codes the
    service asks for are prefetched). False: every Observation is sent (the worst case)."""

    @property
    def size(self) -> int:
        """Approximate resource count (exact count: ``len(generate_chart(spec))``)."""
        return 1 + self.observations + self.medication_records + self.conditions + self.allergies


TYPICAL = ChartSpec(
    "typical", observations=190, medication_records=80, conditions=25, allergies=3, years=3
)
HEAVY = ChartSpec(
    "heavy", observations=5000, medication_records=400, conditions=200, allergies=8, years=8
)
TINY = ChartSpec("tiny", observations=40, medication_records=30, conditions=6, allergies=1, years=2)


TYPICAL_FILTERED = replace(TYPICAL, name="typical-filtered", code_filtered_prefetch=True)
"""The typical chart from an EHR that filters Observations by the template's codes."""


def scaled(fraction: float, base: ChartSpec = HEAVY) -> ChartSpec:
    """``base`` scaled down (same composition and time span), for the scaling curve."""
    return replace(
        base,
        name=f"{base.name}x{fraction:g}",
        observations=max(20, round(base.observations * fraction)),
        medication_records=max(24, round(base.medication_records * fraction)),
        conditions=max(4, round(base.conditions * fraction)),
        allergies=max(1, round(base.allergies * fraction)),
    )


def sweep_specs(
    fractions: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0),
) -> list[ChartSpec]:
    return [scaled(f) for f in fractions]


# --- time -------------------------------------------------------------------------------------


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _local(moment: datetime) -> str:
    """A dateTime with the site's offset, as many EHRs send it."""
    return moment.isoformat(timespec="seconds")


# --- the builder --------------------------------------------------------------------------------


class _Chart:
    def __init__(self, spec: ChartSpec, seed: int, now: datetime, pid: str) -> None:
        self.spec = spec
        self.rng = random.Random(f"{seed}:{spec.name}")  # noqa: S311 (not cryptographic)
        self.now = now
        self.pid = pid
        self.counter = 0
        self.resources: list[Resource] = []

    def next_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter:05d}"

    def meta(self, moment: datetime) -> dict[str, Any]:
        return {"versionId": str(1 + self.counter % 3), "lastUpdated": _instant(moment)}

    def subject(self) -> dict[str, Any]:
        return {"reference": f"Patient/{self.pid}", "display": "Rivera, Jordan"}


def _patient(chart: _Chart) -> Resource:
    return {
        "resourceType": "Patient",
        "id": chart.pid,
        "meta": chart.meta(chart.now - timedelta(days=400)),
        "identifier": [
            {
                "use": "usual",
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}
                    ],
                    "text": "MRN",
                },
                "system": "urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.14",
                "value": f"E{zlib.crc32(chart.pid.encode()) % 10_000_000:07d}",
            }
        ],
        "active": True,
        "name": [{"use": "official", "family": "Rivera", "given": ["Jordan", "A"]}],
        "telecom": [{"system": "phone", "value": "555-0100", "use": "home"}],
        "gender": "female",
        "birthDate": "1981-03-14",
        "address": [
            {
                "use": "home",
                "line": ["12 Example Street"],
                "city": "Springfield",
                "state": "IL",
                "postalCode": "62701",
                "country": "US",
            }
        ],
        "communication": [
            {
                "language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en"}]},
                "preferred": True,
            }
        ],
    }


# Conditions: (ICD-10-CM, SNOMED CT, display, chronic)
PROBLEMS: tuple[tuple[str, str, str, bool], ...] = (
    ("I10", "59621000", "Essential hypertension", True),
    ("E11.9", "44054006", "Type 2 diabetes mellitus without complications", True),
    ("E78.5", "55822004", "Hyperlipidemia", True),
    ("F41.1", "21897009", "Generalized anxiety disorder", True),
    ("G47.00", "193462001", "Insomnia", True),
    ("K21.9", "235595009", "Gastro-esophageal reflux disease", True),
    ("J45.909", "195967001", "Asthma", True),
    ("E66.9", "414916001", "Obesity", True),
    ("E03.9", "40930008", "Hypothyroidism", True),
    ("M17.11", "239873007", "Osteoarthritis of right knee", True),
    ("J30.9", "61582004", "Allergic rhinitis", True),
    ("E55.9", "34713006", "Vitamin D deficiency", True),
)
ENCOUNTER_DIAGNOSES: tuple[tuple[str, str, str, bool], ...] = (
    ("J06.9", "54150009", "Acute upper respiratory infection", False),
    ("M54.50", "279039007", "Low back pain", False),
    ("N39.0", "68566005", "Urinary tract infection", False),
    ("R51.9", "25064002", "Headache", False),
    ("S93.401A", "44465007", "Sprain of ankle", False),
    ("J02.9", "405737000", "Pharyngitis", False),
    ("R10.9", "21522001", "Abdominal pain", False),
    ("Z00.00", "185349003", "Encounter for general adult medical examination", False),
    ("R05.9", "49727002", "Cough", False),
    ("L03.90", "128045006", "Cellulitis", False),
)
DEPRESSION = ("F33.1", "18818009", "Major depressive disorder, recurrent, moderate", True)


def _condition(
    chart: _Chart, item: tuple[str, str, str, bool], onset: datetime, category: str, resolved: bool
) -> Resource:
    icd, snomed, display, _ = item
    status = "resolved" if resolved else "active"
    resource: Resource = {
        "resourceType": "Condition",
        "id": chart.next_id("cond"),
        "meta": chart.meta(onset),
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": status,
                    "display": status.capitalize(),
                }
            ]
        },
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": "confirmed",
                    "display": "Confirmed",
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": category,
                    }
                ]
            }
        ],
        "code": {
            "coding": [
                {"system": ICD10, "code": icd, "display": display},
                {"system": SNOMED, "code": snomed, "display": display},
            ],
            "text": display,
        },
        "subject": chart.subject(),
        "onsetDateTime": _local(onset),
        "recordedDate": _local(onset + timedelta(days=1)),
    }
    if resolved:
        resource["abatementDateTime"] = _local(onset + timedelta(days=chart.rng.randint(7, 30)))
    return resource


def _conditions(chart: _Chart) -> list[Resource]:
    count = chart.spec.conditions
    span = timedelta(days=365.25 * chart.spec.years)
    out = [
        _condition(chart, DEPRESSION, chart.now - timedelta(weeks=300), "problem-list-item", False)
    ]
    problems = list(PROBLEMS)
    for index in range(1, count):
        if index <= len(problems) and index <= count // 3 + 1:
            item = problems[index - 1]
            onset = chart.now - timedelta(days=chart.rng.uniform(200, 3000))
            out.append(_condition(chart, item, onset, "problem-list-item", False))
        else:
            item = ENCOUNTER_DIAGNOSES[chart.rng.randrange(len(ENCOUNTER_DIAGNOSES))]
            onset = chart.now - span * chart.rng.random()
            resolved = onset < chart.now - timedelta(days=30)
            out.append(_condition(chart, item, onset, "encounter-diagnosis", resolved))
    return out


# --- medications --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Drug:
    rxcui: str
    display: str
    strength_mg: float
    ingredient: str
    ingredient_rxcui: str


SERTRALINE_50 = Drug("312941", "sertraline 50 MG Oral Tablet", 50, "sertraline", "36437")
SERTRALINE_100 = Drug("312938", "sertraline 100 MG Oral Tablet", 100, "sertraline", "36437")
ESCITALOPRAM_10 = Drug("349332", "escitalopram 10 MG Oral Tablet", 10, "escitalopram", "321988")
ESCITALOPRAM_20 = Drug("351250", "escitalopram 20 MG Oral Tablet", 20, "escitalopram", "321988")
VENLAFAXINE_75 = Drug(
    "313585", "24 HR venlafaxine 75 MG Extended Release Oral Capsule", 75, "venlafaxine", "39786"
)
VENLAFAXINE_150 = Drug(
    "313581", "24 HR venlafaxine 150 MG Extended Release Oral Capsule", 150, "venlafaxine", "39786"
)
FLUOXETINE_20 = Drug("310385", "fluoxetine 20 MG Oral Capsule", 20, "fluoxetine", "4493")
ARIPIPRAZOLE_5 = Drug("402131", "aripiprazole 5 MG Oral Tablet", 5, "aripiprazole", "89013")
TRAZODONE_50 = Drug("856377", "trazodone hydrochloride 50 MG Oral Tablet", 50, "trazodone", "10737")
VORTIOXETINE_10 = Drug("1439808", "vortioxetine 10 MG Oral Tablet", 10, "vortioxetine", "1455099")


@dataclass(frozen=True)
class Phase:
    drug: Drug
    start_weeks_ago: float
    end_weeks_ago: float
    tablets_per_day: float = 1
    last_status: str = "completed"
    last_reason: str | None = None
    for_sleep: bool = False


PSYCH_PLAN: tuple[Phase, ...] = (
    Phase(FLUOXETINE_20, 300, 270),
    Phase(SERTRALINE_50, 100, 94),
    Phase(SERTRALINE_100, 94, 82, last_status="stopped"),
    Phase(ESCITALOPRAM_10, 81, 77),
    Phase(ESCITALOPRAM_20, 77, 65, last_status="stopped", last_reason="Ineffective"),
    Phase(VENLAFAXINE_75, 64, 60),
    Phase(VENLAFAXINE_150, 60, 0, last_status="active"),
    Phase(ARIPIPRAZOLE_5, 30, 0, last_status="active"),
    Phase(TRAZODONE_50, 90, 0, last_status="active", for_sleep=True),
)

# Non-psychiatric drugs: (rxcui, display, tablets/day or None for as-needed, renewal days)
CHRONIC: tuple[tuple[str, str, float | None, int], ...] = (
    ("314076", "lisinopril 10 MG Oral Tablet", 1, 90),
    ("861007", "metformin hydrochloride 500 MG Oral Tablet", 2, 90),
    ("617312", "atorvastatin calcium 20 MG Oral Tablet", 1, 90),
    ("198053", "omeprazole 20 MG Delayed Release Oral Capsule", 1, 30),
    ("966247", "levothyroxine sodium 0.05 MG Oral Tablet", 1, 90),
    ("745679", "200 ACTUAT albuterol 0.09 MG/ACTUAT Metered Dose Inhaler", None, 60),
    ("310431", "gabapentin 300 MG Oral Capsule", 3, 30),
    ("1014678", "cetirizine hydrochloride 10 MG Oral Tablet", 1, 90),
    ("197361", "amlodipine besylate 5 MG Oral Tablet", 1, 90),
)
ACUTE: tuple[tuple[str, str, float, int], ...] = (
    ("308182", "amoxicillin 500 MG Oral Capsule", 3, 10),
    ("308460", "azithromycin 250 MG Oral Tablet", 1, 5),
    ("312617", "predniSONE 20 MG Oral Tablet", 2, 5),
    ("197446", "cyclobenzaprine hydrochloride 10 MG Oral Tablet", 3, 10),
    ("312086", "ondansetron 4 MG Disintegrating Oral Tablet", 3, 3),
    ("310965", "ibuprofen 200 MG Oral Tablet", 3, 10),
)


def _dosage(
    text: str, per_day: float | None, dose: dict[str, Any], start: datetime, end: datetime | None
) -> dict[str, Any]:
    dosage: dict[str, Any] = {
        "sequence": 1,
        "text": text,
        "route": {
            "coding": [{"system": SNOMED, "code": "26643006", "display": "Oral route"}],
            "text": "oral",
        },
    }
    repeat: dict[str, Any] = {}
    if per_day is None:
        dosage["asNeededBoolean"] = True
        repeat = {"frequency": 1, "period": 4, "periodUnit": "h", "frequencyMax": 6}
    else:
        repeat = {"frequency": per_day, "period": 1, "periodUnit": "d"}
    bounds: dict[str, Any] = {"start": _local(start)}
    if end is not None:
        bounds["end"] = _local(end)
    repeat["boundsPeriod"] = bounds
    dosage["timing"] = {"repeat": repeat}
    dosage["doseAndRate"] = [
        {
            "type": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/dose-rate-type",
                        "code": "ordered",
                        "display": "Ordered",
                    }
                ]
            },
            "doseQuantity": dose,
        }
    ]
    return dosage


def _medication_resource(
    chart: _Chart, rxcui: str, display: str, ingredient: tuple[str, str, float] | None, mid: str
) -> Resource:
    resource: Resource = {
        "resourceType": "Medication",
        "id": mid,
        "code": {
            "coding": [{"system": RXNORM, "code": rxcui, "display": display}],
            "text": display,
        },
        "form": {"coding": [{"system": SNOMED, "code": "385055001", "display": "Tablet"}]},
    }
    if ingredient is not None:
        name, code, strength = ingredient
        resource["ingredient"] = [
            {
                "itemCodeableConcept": {
                    "coding": [{"system": RXNORM, "code": code, "display": name}],
                    "text": name,
                },
                "isActive": True,
                "strength": {
                    "numerator": {"value": strength, "unit": "mg", "system": UCUM, "code": "mg"},
                    "denominator": {
                        "value": 1,
                        "unit": "TAB",
                        "code": "TAB",
                        "system": "http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm",
                    },
                },
            }
        ]
    return resource


def _med_request(
    chart: _Chart,
    *,
    rxcui: str,
    display: str,
    start: datetime,
    days: float,
    per_day: float | None,
    status: str,
    strength_mg: float | None = None,
    ingredient: tuple[str, str, float] | None = None,
    status_reason: str | None = None,
    reason: tuple[str, str, str] | None = None,
    shape: int = 0,
    included: list[Resource] | None = None,
) -> Resource:
    """One order. ``shape``: 0 coded + tablets, 1 coded + mg, 2 contained Medication,
    3 referenced Medication (returned through ``included``)."""
    mid = chart.next_id("mr")
    resource: Resource = {
        "resourceType": "MedicationRequest",
        "id": mid,
        "meta": chart.meta(start),
        "identifier": [
            {"system": "urn:oid:1.2.840.114350.1.13.0.1.7.2.798268", "value": mid.upper()}
        ],
        "status": status,
        "intent": "order",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
                        "code": "community",
                        "display": "Community",
                    }
                ]
            }
        ],
        "subject": chart.subject(),
        "authoredOn": _local(start),
        "requester": {"reference": "Practitioner/prac-1", "display": "Dr Casey Lee"},
    }
    if shape in (2, 3) and ingredient is not None:
        med_id = f"med-{mid}"
        medication = _medication_resource(chart, rxcui, display, ingredient, med_id)
        if shape == 2:
            resource["contained"] = [medication]
            resource["medicationReference"] = {"reference": f"#{med_id}", "display": display}
        else:
            resource["medicationReference"] = {
                "reference": f"Medication/{med_id}",
                "display": display,
            }
            if included is not None:
                included.append(medication)
    else:
        resource["medicationCodeableConcept"] = {
            "coding": [{"system": RXNORM, "code": rxcui, "display": display}],
            "text": display,
        }
    if shape == 1 and strength_mg is not None and per_day is not None:
        dose = {"value": strength_mg, "unit": "mg", "system": UCUM, "code": "mg"}
        text = f"Take {strength_mg:g} mg by mouth {per_day:g} times daily"
    else:
        dose = {"value": 1, "unit": "tablet", "system": UCUM, "code": "{tbl}"}
        text = "Take 1 tablet by mouth " + (
            "as needed" if per_day is None else f"{per_day:g} times daily"
        )
    end = start + timedelta(days=days) if status != "active" else None
    resource["dosageInstruction"] = [_dosage(text, per_day, dose, start, end)]
    resource["dispenseRequest"] = {
        "validityPeriod": {"start": _local(start), "end": _local(start + timedelta(days=365))},
        "numberOfRepeatsAllowed": 0,
        "quantity": {
            "value": math.ceil(days * (per_day or 1)),
            "unit": "tablet",
            "system": UCUM,
            "code": "{tbl}",
        },
        "expectedSupplyDuration": {
            "value": round(days, 1),
            "unit": "days",
            "system": UCUM,
            "code": "d",
        },
    }
    if status_reason:
        resource["statusReason"] = {"text": status_reason}
    if reason is not None:
        system, code, text = reason
        resource["reasonCode"] = [
            {"coding": [{"system": system, "code": code, "display": text}], "text": text}
        ]
    return resource


def _med_statement(chart: _Chart, display: str, rxcui: str, start: datetime) -> Resource:
    return {
        "resourceType": "MedicationStatement",
        "id": chart.next_id("ms"),
        "meta": chart.meta(start),
        "status": "active",
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": rxcui, "display": display}],
            "text": display,
        },
        "subject": chart.subject(),
        "effectivePeriod": {"start": _local(start)},
        "dateAsserted": _local(start),
        "informationSource": {"reference": f"Patient/{chart.pid}"},
        "dosage": [
            {
                "text": "1 daily (patient reported)",
                "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
            }
        ],
    }


def _psych_orders(chart: _Chart, budget: int, included: list[Resource]) -> list[Resource]:
    """The antidepressant plan as renewals, using about ``budget`` records."""
    total_weeks = sum(p.start_weeks_ago - p.end_weeks_ago for p in PSYCH_PLAN)
    out: list[Resource] = []
    for phase in PSYCH_PLAN:
        weeks = phase.start_weeks_ago - phase.end_weeks_ago
        renewals = max(1, round(budget * weeks / total_weeks))
        if phase.last_status == "active":
            renewals = max(renewals, 2)
        step = weeks / renewals
        for index in range(renewals):
            start = chart.now - timedelta(weeks=phase.start_weeks_ago - index * step)
            last = index == renewals - 1
            status = phase.last_status if last else "completed"
            drug = phase.drug
            reason = (
                (ICD10, "G47.00", "Insomnia")
                if phase.for_sleep
                else (ICD10, "F33.1", "Major depressive disorder, recurrent, moderate")
            )
            out.append(
                _med_request(
                    chart,
                    rxcui=drug.rxcui,
                    display=drug.display,
                    start=start,
                    days=step * 7,
                    per_day=phase.tablets_per_day,
                    status=status,
                    strength_mg=drug.strength_mg,
                    ingredient=(drug.ingredient, drug.ingredient_rxcui, drug.strength_mg),
                    status_reason=phase.last_reason if last else None,
                    reason=reason,
                    shape=(len(out) + chart.rng.randrange(4)) % 4,
                    included=included,
                )
            )
    return out


def _other_orders(chart: _Chart, budget: int) -> list[Resource]:
    span = timedelta(days=365.25 * max(chart.spec.years, 2))
    out: list[Resource] = []
    chronic_budget = budget * 3 // 4
    per_drug = max(1, chronic_budget // len(CHRONIC))
    for rxcui, display, per_day, every in CHRONIC:
        for index in range(per_drug):
            if len(out) >= chronic_budget:
                break
            start = (
                chart.now
                - timedelta(days=every * (per_drug - index))
                - timedelta(days=chart.rng.randint(0, 6))
            )
            if start < chart.now - span:
                start = chart.now - span * chart.rng.random()
            last = index == per_drug - 1
            out.append(
                _med_request(
                    chart,
                    rxcui=rxcui,
                    display=display,
                    start=start,
                    days=every,
                    per_day=per_day,
                    status="active" if last else "completed",
                )
            )
    statements = 0
    while len(out) < budget:
        if statements < max(1, budget // 25):
            statements += 1
            start = chart.now - span * chart.rng.random()
            out.append(
                _med_statement(chart, "cholecalciferol 1000 UNT Oral Tablet", "318528", start)
            )
            continue
        rxcui, display, per_day_acute, days = ACUTE[chart.rng.randrange(len(ACUTE))]
        start = chart.now - span * chart.rng.random()
        out.append(
            _med_request(
                chart,
                rxcui=rxcui,
                display=display,
                start=start,
                days=days,
                per_day=per_day_acute,
                status="completed",
            )
        )
    return out


# --- observations --------------------------------------------------------------------------------


def _category(code: str) -> list[dict[str, Any]]:
    display = {"vital-signs": "Vital Signs", "laboratory": "Laboratory", "survey": "Survey"}
    return [
        {
            "coding": [{"system": OBS_CATEGORY, "code": code, "display": display[code]}],
            "text": display[code],
        }
    ]


def _obs(
    chart: _Chart,
    category: str,
    code: str,
    display: str,
    moment: datetime,
    value: dict[str, Any] | None = None,
    prefix: str = "obs",
) -> Resource:
    resource: Resource = {
        "resourceType": "Observation",
        "id": chart.next_id(prefix),
        "meta": chart.meta(moment),
        "status": "final",
        "category": _category(category),
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
        "subject": chart.subject(),
        "encounter": {"reference": f"Encounter/enc-{moment:%Y%m%d}"},
        "effectiveDateTime": _local(moment),
        "issued": _instant(moment + timedelta(minutes=30)),
    }
    if value is not None:
        resource.update(value)
    return resource


def _quantity(value: float, unit: str, code: str | None = None) -> dict[str, Any]:
    return {"valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": code or unit}}


def _bp(chart: _Chart, moment: datetime) -> Resource:
    systolic = chart.rng.randint(112, 134)
    diastolic = chart.rng.randint(70, 86)
    resource = _obs(chart, "vital-signs", "85354-9", "Blood pressure panel", moment, prefix="bp")
    resource["component"] = [
        {
            "code": {
                "coding": [
                    {"system": LOINC, "code": "8480-6", "display": "Systolic blood pressure"}
                ]
            },
            **_quantity(systolic, "mmHg", "mm[Hg]"),
        },
        {
            "code": {
                "coding": [
                    {"system": LOINC, "code": "8462-4", "display": "Diastolic blood pressure"}
                ]
            },
            **_quantity(diastolic, "mmHg", "mm[Hg]"),
        },
    ]
    return resource


def _vitals(chart: _Chart, moment: datetime) -> list[Resource]:
    rng = chart.rng
    weight = round(rng.uniform(76, 82), 1)
    return [
        _bp(chart, moment),
        _obs(
            chart,
            "vital-signs",
            "8867-4",
            "Heart rate",
            moment,
            _quantity(rng.randint(62, 88), "/min"),
        ),
        _obs(
            chart,
            "vital-signs",
            "9279-1",
            "Respiratory rate",
            moment,
            _quantity(rng.randint(12, 18), "/min"),
        ),
        _obs(
            chart,
            "vital-signs",
            "8310-5",
            "Body temperature",
            moment,
            _quantity(round(rng.uniform(36.4, 37.2), 1), "Cel"),
        ),
        _obs(
            chart,
            "vital-signs",
            "59408-5",
            "Oxygen saturation in Arterial blood by Pulse oximetry",
            moment,
            _quantity(rng.randint(95, 100), "%"),
        ),
        _obs(chart, "vital-signs", "29463-7", "Body weight", moment, _quantity(weight, "kg")),
        _obs(
            chart,
            "vital-signs",
            "39156-5",
            "Body mass index (BMI) [Ratio]",
            moment,
            _quantity(round(weight / 1.68**2, 1), "kg/m2"),
        ),
        _obs(
            chart,
            "survey",
            "72514-3",
            "Pain severity - 0-10 verbal numeric rating [Score] - Reported",
            moment,
            {"valueInteger": rng.randint(0, 4)},
        ),
    ]


def _phq9_score(weeks_ago: float, rng: random.Random) -> int:
    """Scores that tell the plan's story: no response on sertraline or escitalopram, and
    moderate-to-severe scores since."""
    return min(27, max(10, round(17 + rng.uniform(-2, 3) - (1 if weeks_ago > 100 else 0))))


def _survey(chart: _Chart, moment: datetime) -> list[Resource]:
    weeks_ago = (chart.now - moment) / timedelta(weeks=1)
    score = {
        "valueQuantity": {
            "value": _phq9_score(weeks_ago, chart.rng),
            "unit": "{score}",
            "system": UCUM,
            "code": "{score}",
        }
    }
    item9 = {"valueQuantity": {"value": 0, "unit": "{score}", "system": UCUM, "code": "{score}"}}
    gad7 = {
        "valueQuantity": {
            "value": chart.rng.randint(6, 14),
            "unit": "{score}",
            "system": UCUM,
            "code": "{score}",
        }
    }
    return [
        _obs(
            chart,
            "survey",
            "44261-6",
            "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]",
            moment,
            score,
            prefix="phq",
        ),
        _obs(
            chart,
            "survey",
            "44260-8",
            "Thoughts that you would be better off dead, or of hurting yourself in some way",
            moment,
            item9,
            prefix="phq",
        ),
        _obs(
            chart,
            "survey",
            "70274-6",
            "Generalized anxiety disorder 7 item (GAD-7) total score [Reported]",
            moment,
            gad7,
        ),
    ]


LABS_BASIC: tuple[tuple[str, str, str, float, float], ...] = (
    ("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 136, 144),
    ("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 3.6, 5.0),
    ("2075-0", "Chloride [Moles/volume] in Serum or Plasma", "mmol/L", 98, 106),
    ("2028-9", "Carbon dioxide, total [Moles/volume] in Serum or Plasma", "mmol/L", 22, 29),
    ("3094-0", "Urea nitrogen [Mass/volume] in Serum or Plasma", "mg/dL", 8, 20),
    ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.6, 1.1),
    ("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 85, 160),
    ("17861-6", "Calcium [Mass/volume] in Serum or Plasma", "mg/dL", 8.8, 10.2),
    ("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 4.5, 10),
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 12, 15),
    ("4544-3", "Hematocrit [Volume Fraction] of Blood by Automated count", "%", 36, 45),
    ("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", 160, 380),
    ("787-2", "MCV [Entitic volume] by Automated count", "fL", 82, 96),
    ("788-0", "Erythrocyte distribution width [Ratio] by Automated count", "%", 11.5, 14),
)
LABS_YEARLY: tuple[tuple[str, str, str, float, float], ...] = (
    ("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 160, 230),
    ("2571-8", "Triglyceride [Mass/volume] in Serum or Plasma", "mg/dL", 90, 220),
    ("2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma", "mg/dL", 38, 65),
    (
        "13457-7",
        "Cholesterol in LDL [Mass/volume] in Serum or Plasma by calculation",
        "mg/dL",
        80,
        150,
    ),
    ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 6.2, 7.8),
    ("3016-3", "Thyrotropin [Units/volume] in Serum or Plasma", "m[IU]/L", 0.8, 3.5),
)


def _labs(
    chart: _Chart, moment: datetime, panel: tuple[tuple[str, str, str, float, float], ...]
) -> list[Resource]:
    out = []
    for code, display, unit, low, high in panel:
        value = round(chart.rng.uniform(low, high * 1.05), 1)
        resource = _obs(chart, "laboratory", code, display, moment, _quantity(value, unit))
        resource["referenceRange"] = [
            {
                "low": {"value": low, "unit": unit, "system": UCUM, "code": unit},
                "high": {"value": high, "unit": unit, "system": UCUM, "code": unit},
            }
        ]
        if value > high:
            resource["interpretation"] = [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                            "code": "H",
                            "display": "High",
                        }
                    ]
                }
            ]
        out.append(resource)
    return out


def _visit(chart: _Chart, index: int, moment: datetime) -> list[Resource]:
    out = _vitals(chart, moment)
    if index % 3 == 0:
        out += _survey(chart, moment + timedelta(minutes=5))
    if index % 4 == 0:
        out += _labs(chart, moment + timedelta(hours=1), LABS_BASIC)
    if index % 8 == 0:
        out += _labs(chart, moment + timedelta(hours=1), LABS_YEARLY)
    return out


_CYCLE = 24
_PER_CYCLE = 24 * 8 + 8 * 3 + 6 * len(LABS_BASIC) + 3 * len(LABS_YEARLY)


def _observations(chart: _Chart) -> list[Resource]:
    target = chart.spec.observations
    visits = max(1, math.ceil(target * _CYCLE / _PER_CYCLE))
    span = timedelta(days=365.25 * chart.spec.years)
    step = span / visits
    out: list[Resource] = []
    index = 0
    while len(out) < target:
        # Most recent visit first, two days ago; then back in time at a steady pace.
        moment = chart.now - timedelta(days=2) - step * index
        jitter = timedelta(hours=chart.rng.randint(-20, 20))
        out += _visit(chart, index, moment + jitter)
        index += 1
    return out[:target]


def _allergies(chart: _Chart) -> list[Resource]:
    catalogue = (
        ("7980", "Penicillin G", RXNORM),
        ("10180", "Sulfamethoxazole", RXNORM),
        ("111088007", "Latex", SNOMED),
        ("256349002", "Peanut", SNOMED),
        ("2670", "Codeine", RXNORM),
        ("1191", "Aspirin", RXNORM),
        ("227493005", "Cashew nut", SNOMED),
        ("91936005", "Allergy to penicillin", SNOMED),
    )
    out = []
    for index in range(chart.spec.allergies):
        code, display, system = catalogue[index % len(catalogue)]
        out.append(
            {
                "resourceType": "AllergyIntolerance",
                "id": chart.next_id("alg"),
                "meta": chart.meta(chart.now - timedelta(days=900)),
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                            "code": "active",
                        }
                    ]
                },
                "verificationStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/"
                            "allergyintolerance-verification",
                            "code": "confirmed",
                        }
                    ]
                },
                "type": "allergy",
                "category": ["medication" if system == RXNORM else "food"],
                "criticality": "low",
                "code": {
                    "coding": [{"system": system, "code": code, "display": display}],
                    "text": display,
                },
                "patient": {"reference": f"Patient/{chart.pid}"},
                "recordedDate": _local(chart.now - timedelta(days=900)),
                "reaction": [
                    {
                        "manifestation": [
                            {"coding": [{"system": SNOMED, "code": "271807003", "display": "Rash"}]}
                        ]
                    }
                ],
            }
        )
    return out


def generate_chart(
    spec: ChartSpec, seed: int = 1, *, now: datetime = ANCHOR, patient_id: str = PATIENT_ID
) -> list[Resource]:
    """Every resource of one patient's chart (Medications included), deterministic."""
    chart = _Chart(spec, seed, now, patient_id)
    included: list[Resource] = []
    psych_budget = max(12, spec.medication_records // 4)
    meds = _psych_orders(chart, psych_budget, included)
    meds += _other_orders(chart, spec.medication_records - len(meds))
    resources = [
        _patient(chart),
        *_conditions(chart),
        *meds,
        *included,
        *_observations(chart),
        *_allergies(chart),
    ]
    return resources


# --- draft orders -----------------------------------------------------------------------------


def draft_order(
    drug: Drug,
    *,
    mid: str,
    pid: str,
    dose_mg: float | None = None,
    route_iv: bool = False,
    now: datetime = ANCHOR,
) -> Resource:
    resource: Resource = {
        "resourceType": "MedicationRequest",
        "id": mid,
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{pid}"},
        "authoredOn": _local(now),
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": drug.rxcui, "display": drug.display}],
            "text": drug.display,
        },
        "dosageInstruction": [
            {
                "text": drug.display,
                "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [
                    {
                        "doseQuantity": (
                            {"value": dose_mg, "unit": "mg", "system": UCUM, "code": "mg"}
                            if dose_mg is not None
                            else {"value": 1, "unit": "tablet", "system": UCUM, "code": "{tbl}"}
                        )
                    }
                ],
            }
        ],
    }
    if route_iv:
        resource["dosageInstruction"][0]["route"] = {
            "coding": [{"system": SNOMED, "code": "47625008", "display": "Intravenous route"}],
            "text": "IV",
        }
    return resource


KETAMINE_IV = Drug(
    "6130", "ketamine 50 MG in sodium chloride 0.9% 100 ML infusion", 0, "ketamine", "6130"
)
