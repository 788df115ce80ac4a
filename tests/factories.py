"""Builders of realistic FHIR R4 resources (as EHRs send them) for tests and example patients.

Dates are given relative to ``NOW`` with ``weeks_ago``/``days_ago`` so that scenarios never go
stale. Shapes follow real systems: MedicationRequest-only histories with renewals, contained and
referenced Medication, doses in tablets or mg, BP panels with components, PHQ-9 totals and item 9.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

NOW = datetime(2026, 11, 27, 10, 30, tzinfo=timezone(timedelta(hours=4)))
"""The frozen clock of the test suite: a non-UTC offset, as cumulus-etl does."""

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"

_ids = itertools.count(1)


def _id(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}"


def at(weeks_ago: float = 0, days_ago: float = 0, now: datetime = NOW) -> str:
    moment = now - timedelta(weeks=weeks_ago, days=days_ago)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def day(weeks_ago: float = 0, days_ago: float = 0, now: datetime = NOW) -> str:
    return at(weeks_ago, days_ago, now)[:10]


def rx_concept(display: str, rxcui: str | None = None) -> dict[str, Any]:
    """A medication concept: the text, and the RxNorm coding when a code is given."""
    concept: dict[str, Any] = {"text": display}
    if rxcui:
        concept["coding"] = [{"system": RXNORM, "code": rxcui, "display": display}]
    return concept


def patient(
    pid: str = "p1", *, birth: str = "1980-05-17", gender: str = "female", **extra: Any
) -> dict[str, Any]:
    resource = {
        "resourceType": "Patient",
        "id": pid,
        "name": [{"family": "Testpatient", "given": ["Alex"]}],
        "gender": gender,
        "birthDate": birth,
    }
    resource.update(extra)
    return resource


def condition(
    code: str,
    display: str,
    *,
    system: str = ICD10,
    status: str | None = "active",
    verification: str | None = "confirmed",
    onset_weeks_ago: float | None = 52,
    abated_weeks_ago: float | None = None,
    pid: str = "p1",
    cid: str | None = None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": cid or _id("cond"),
        "code": {"coding": [{"system": system, "code": code, "display": display}], "text": display},
        "subject": {"reference": f"Patient/{pid}"},
    }
    if status:
        resource["clinicalStatus"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": status,
                }
            ]
        }
    if verification:
        resource["verificationStatus"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": verification,
                }
            ]
        }
    if onset_weeks_ago is not None:
        resource["onsetDateTime"] = at(onset_weeks_ago)
        resource["recordedDate"] = at(onset_weeks_ago)
    if abated_weeks_ago is not None:
        resource["abatementDateTime"] = at(abated_weeks_ago)
    return resource


def mdd(pid: str = "p1", **kw: Any) -> dict[str, Any]:
    return condition("F33.1", "Major depressive disorder, recurrent, moderate", pid=pid, **kw)


def med_request(
    display: str,
    *,
    rxcui: str | None = None,
    weeks_ago: float,
    dose: float | None = 1,
    unit: str | None = "TAB",
    per_day: float | None = 1,
    supply_days: float | None = 30,
    repeats: int = 0,
    status: str = "completed",
    status_reason: str | None = None,
    status_reason_code: str | None = None,
    reason: dict[str, Any] | None = None,
    pid: str = "p1",
    mid: str | None = None,
    medication: dict[str, Any] | None = None,
    medication_ref: str | None = None,
    route: dict[str, Any] | None = None,
    intent: str = "order",
    bounds_end_weeks_ago: float | None = None,
) -> dict[str, Any]:
    """A MedicationRequest as EHRs expose history: authoredOn + dispenseRequest + dosage."""
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": mid or _id("mr"),
        "status": status,
        "intent": intent,
        "subject": {"reference": f"Patient/{pid}"},
        "authoredOn": at(weeks_ago),
    }
    if medication is not None:
        resource["contained"] = [medication]
        resource["medicationReference"] = {"reference": f"#{medication['id']}"}
    elif medication_ref is not None:
        resource["medicationReference"] = {"reference": medication_ref}
    else:
        resource["medicationCodeableConcept"] = rx_concept(display, rxcui)
    dosage: dict[str, Any] = {"text": f"{display} daily"}
    if per_day is not None:
        dosage["timing"] = {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}}
    if bounds_end_weeks_ago is not None:
        dosage.setdefault("timing", {}).setdefault("repeat", {})["boundsPeriod"] = {
            "start": at(weeks_ago),
            "end": at(bounds_end_weeks_ago),
        }
    if dose is not None:
        quantity: dict[str, Any] = {"value": dose}
        if unit:
            quantity.update({"unit": unit, "system": "http://unitsofmeasure.org", "code": unit})
        dosage["doseAndRate"] = [{"doseQuantity": quantity}]
    if route is not None:
        dosage["route"] = route
    resource["dosageInstruction"] = [dosage]
    if supply_days is not None:
        resource["dispenseRequest"] = {
            "numberOfRepeatsAllowed": repeats,
            "expectedSupplyDuration": {
                "value": supply_days,
                "unit": "days",
                "system": "http://unitsofmeasure.org",
                "code": "d",
            },
        }
    if status_reason or status_reason_code:
        reason_cc: dict[str, Any] = {"text": status_reason or status_reason_code}
        if status_reason_code:
            reason_cc["coding"] = [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-status-reason",
                    "code": status_reason_code,
                }
            ]
        resource["statusReason"] = reason_cc
    if reason is not None:
        resource["reasonCode"] = [reason]
    return resource


def course(
    display: str,
    *,
    rxcui: str | None = None,
    start_weeks_ago: float,
    weeks: float,
    every_weeks: float = 4,
    last_status: str = "stopped",
    last_reason: str | None = None,
    last_reason_code: str | None = None,
    **kw: Any,
) -> list[dict[str, Any]]:
    """Monthly renewals of the same prescription (the usual EHR history of one trial)."""
    orders = []
    offsets = []
    t = 0.0
    while t < weeks:
        offsets.append(t)
        t += every_weeks
    for index, offset in enumerate(offsets):
        last = index == len(offsets) - 1
        supply = min(every_weeks, weeks - offset) * 7
        orders.append(
            med_request(
                display,
                rxcui=rxcui,
                weeks_ago=start_weeks_ago - offset,
                supply_days=supply,
                status=(last_status if last else "completed"),
                status_reason=last_reason if last else None,
                status_reason_code=last_reason_code if last else None,
                **kw,
            )
        )
    return orders


def med_statement(
    display: str,
    *,
    start_weeks_ago: float,
    end_weeks_ago: float | None,
    dose_mg: float | None = None,
    status: str = "completed",
    status_reason: str | None = None,
    pid: str = "p1",
    rxcui: str | None = None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "id": _id("ms"),
        "status": status,
        "subject": {"reference": f"Patient/{pid}"},
        "medicationCodeableConcept": {"text": display},
        "effectivePeriod": {"start": at(start_weeks_ago)},
    }
    if rxcui:
        resource["medicationCodeableConcept"]["coding"] = [
            {"system": RXNORM, "code": rxcui, "display": display}
        ]
    if end_weeks_ago is not None:
        resource["effectivePeriod"]["end"] = at(end_weeks_ago)
    if dose_mg is not None:
        resource["dosage"] = [
            {
                "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [
                    {
                        "doseQuantity": {
                            "value": dose_mg,
                            "unit": "mg",
                            "system": "http://unitsofmeasure.org",
                            "code": "mg",
                        }
                    }
                ],
            }
        ]
    if status_reason:
        resource["statusReason"] = [{"text": status_reason}]
    return resource


def medication(
    mid: str,
    display: str,
    *,
    rxcui: str | None = None,
    ingredient: str | None = None,
    strength_mg: float | None = None,
) -> dict[str, Any]:
    """A Medication (contained or standalone) with an optional ingredient strength."""
    resource: dict[str, Any] = {"resourceType": "Medication", "id": mid, "code": {"text": display}}
    if rxcui:
        resource["code"]["coding"] = [{"system": RXNORM, "code": rxcui, "display": display}]
    if ingredient:
        item: dict[str, Any] = {"itemCodeableConcept": {"text": ingredient}}
        if strength_mg is not None:
            item["strength"] = {
                "numerator": {
                    "value": strength_mg,
                    "unit": "mg",
                    "system": "http://unitsofmeasure.org",
                    "code": "mg",
                },
                "denominator": {
                    "value": 1,
                    "unit": "TAB",
                    "system": "http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm",
                    "code": "TAB",
                },
            }
        resource["ingredient"] = [item]
    return resource


def observation(
    code: str,
    display: str,
    value: float | None,
    *,
    weeks_ago: float = 0,
    days_ago: float = 0,
    unit: str | None = None,
    pid: str = "p1",
    status: str = "final",
    value_code: tuple[str, str, str] | None = None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": _id("obs"),
        "status": status,
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": at(weeks_ago, days_ago),
    }
    if value is not None:
        if unit:
            resource["valueQuantity"] = {
                "value": value,
                "unit": unit,
                "system": "http://unitsofmeasure.org",
                "code": unit,
            }
        else:
            resource["valueQuantity"] = {
                "value": value,
                "unit": "{score}",
                "system": "http://unitsofmeasure.org",
                "code": "{score}",
            }
    if value_code is not None:
        system, vcode, vdisplay = value_code
        resource["valueCodeableConcept"] = {
            "coding": [{"system": system, "code": vcode, "display": vdisplay}]
        }
    return resource


def phq9(score: float, *, weeks_ago: float, pid: str = "p1") -> dict[str, Any]:
    return observation("44261-6", "PHQ-9 total score", score, weeks_ago=weeks_ago, pid=pid)


def phq9_item9(score: float, *, weeks_ago: float, pid: str = "p1") -> dict[str, Any]:
    return observation(
        "44260-8", "Thoughts that you would be better off dead", score, weeks_ago=weeks_ago, pid=pid
    )


def blood_pressure(
    systolic: float, diastolic: float, *, days_ago: float, pid: str = "p1", panel: str = "85354-9"
) -> dict[str, Any]:
    """A US Core blood-pressure panel with systolic/diastolic components."""
    return {
        "resourceType": "Observation",
        "id": _id("bp"),
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": panel, "display": "Blood pressure panel"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": at(days_ago=days_ago),
        "component": [
            {
                "code": {
                    "coding": [
                        {"system": LOINC, "code": "8480-6", "display": "Systolic blood pressure"}
                    ]
                },
                "valueQuantity": {
                    "value": systolic,
                    "unit": "mmHg",
                    "system": "http://unitsofmeasure.org",
                    "code": "mm[Hg]",
                },
            },
            {
                "code": {
                    "coding": [
                        {"system": LOINC, "code": "8462-4", "display": "Diastolic blood pressure"}
                    ]
                },
                "valueQuantity": {
                    "value": diastolic,
                    "unit": "mmHg",
                    "system": "http://unitsofmeasure.org",
                    "code": "mm[Hg]",
                },
            },
        ],
    }


def body_weight(kg: float, *, days_ago: float, pid: str = "p1") -> dict[str, Any]:
    return observation("29463-7", "Body weight", kg, days_ago=days_ago, unit="kg", pid=pid)


def allergy(
    display: str,
    *,
    rxcui: str | None = None,
    pid: str = "p1",
    verification: str = "confirmed",
    status: str = "active",
) -> dict[str, Any]:
    code: dict[str, Any] = {"text": display}
    if rxcui:
        code["coding"] = [{"system": RXNORM, "code": rxcui, "display": display}]
    return {
        "resourceType": "AllergyIntolerance",
        "id": _id("alg"),
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "code": status,
                }
            ]
        },
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                    "code": verification,
                }
            ]
        },
        "code": code,
        "patient": {"reference": f"Patient/{pid}"},
    }


def draft_order(
    display: str,
    *,
    mid: str = "draft-1",
    rxcui: str | None = None,
    dose: float | None = None,
    unit: str | None = None,
    route: dict[str, Any] | None = None,
    pid: str = "p1",
    per_day: float | None = 1,
    per_week: float | None = None,
    infusion_minutes: float | None = None,
) -> dict[str, Any]:
    """A draft MedicationRequest; ``per_week`` gives a weekly schedule (esketamine sessions),
    ``infusion_minutes`` an infusion duration (``timing.repeat.duration``)."""
    order = med_request(
        display,
        rxcui=rxcui,
        weeks_ago=0,
        dose=dose,
        unit=unit,
        status="draft",
        supply_days=None,
        pid=pid,
        mid=mid,
        route=route,
        per_day=None if per_week is not None else per_day,
    )
    repeat: dict[str, Any] = {}
    if per_week is not None:
        repeat.update({"frequency": per_week, "period": 1, "periodUnit": "wk"})
    if infusion_minutes is not None:
        repeat.update({"duration": infusion_minutes, "durationUnit": "min"})
    if repeat:
        order["dosageInstruction"][0].setdefault("timing", {}).setdefault("repeat", {}).update(
            repeat
        )
    return order


IV_ROUTE = {
    "coding": [{"system": SNOMED, "code": "47625008", "display": "Intravenous route"}],
    "text": "IV",
}


def searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A search answer; Medications (which no template searches) are ``_include``d entries and
    do not count in ``total``, as on a real server."""
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": sum(r["resourceType"] != "Medication" for r in resources),
        "entry": [
            {
                "fullUrl": f"http://ehr.example/fhir/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "include" if r["resourceType"] == "Medication" else "match"},
            }
            for r in resources
        ],
    }


def collection(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources],
    }


def medication_administration(
    display: str,
    *,
    days_ago: float,
    dose: float | None = None,
    unit: str = "mg",
    route: dict[str, Any] | None = None,
    status: str = "completed",
    rxcui: str | None = None,
    pid: str = "p1",
) -> dict[str, Any]:
    """A MedicationAdministration (an infusion or a supervised nasal dose given in clinic)."""
    codeable = rx_concept(display, rxcui)
    resource: dict[str, Any] = {
        "resourceType": "MedicationAdministration",
        "id": _id("ma"),
        "status": status,
        "medicationCodeableConcept": codeable,
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": at(days_ago=days_ago),
    }
    dosage: dict[str, Any] = {}
    if dose is not None:
        dosage["dose"] = {
            "value": dose,
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        }
    if route is not None:
        dosage["route"] = route
    if dosage:
        resource["dosage"] = dosage
    return resource


def medication_dispense(
    display: str,
    *,
    days_ago: float,
    days_supply: float = 28,
    quantity: float | None = None,
    status: str = "completed",
    rxcui: str | None = None,
    pid: str = "p1",
) -> dict[str, Any]:
    """A MedicationDispense: the pharmacy handed the drug over."""
    codeable = rx_concept(display, rxcui)
    resource: dict[str, Any] = {
        "resourceType": "MedicationDispense",
        "id": _id("md"),
        "status": status,
        "medicationCodeableConcept": codeable,
        "subject": {"reference": f"Patient/{pid}"},
        "whenHandedOver": at(days_ago=days_ago),
        "daysSupply": {
            "value": days_supply,
            "unit": "days",
            "system": "http://unitsofmeasure.org",
            "code": "d",
        },
    }
    if quantity is not None:
        resource["quantity"] = {"value": quantity}
    return resource


def service_request(
    text: str,
    *,
    status: str = "active",
    weeks_ago: float = 1,
    done_weeks_ago: float | None = None,
    coding: dict[str, str] | None = None,
    identifier_system: str | None = None,
    intent: str = "order",
    pid: str = "p1",
) -> dict[str, Any]:
    """A ServiceRequest (a referral) as an EHR stores one."""
    code: dict[str, Any] = {"text": text}
    if coding is not None:
        code["coding"] = [coding]
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": _id("sr"),
        "status": status,
        "intent": intent,
        "category": [
            {"coding": [{"system": SNOMED, "code": "3457005", "display": "Patient referral"}]}
        ],
        "code": code,
        "subject": {"reference": f"Patient/{pid}"},
        "authoredOn": at(weeks_ago),
    }
    if done_weeks_ago is not None:
        resource["occurrenceDateTime"] = at(done_weeks_ago)
    if identifier_system is not None:
        resource["identifier"] = [{"system": identifier_system, "value": _id("ref")}]
    return resource


def for_patient(resources: list[dict[str, Any]], pid: str) -> list[dict[str, Any]]:
    """The same chart for another patient id (every ``p1`` id and reference re-pointed)."""
    moved = (
        json.dumps(resources).replace('"p1"', f'"{pid}"').replace("Patient/p1", f"Patient/{pid}")
    )
    result: list[dict[str, Any]] = json.loads(moved)
    return result
