"""Contraindications (and label warnings treated as such) to ketamine and esketamine. Pure.

Which of these are label contraindications and which are warnings (clinical-knowledge §D1): the
SPRAVATO label contraindicates aneurysmal vascular disease or AVM, intracerebral haemorrhage history
and hypersensitivity; psychosis, substance use disorder, uncontrolled hypertension, pregnancy and
breastfeeding are warnings or "not recommended"; it is not approved under 18. This service flags
all of them, because each one means "do not refer without a specialist's judgement", and names the
source of each so the clinician can weigh it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from fhir_mappers.codes import RXNORM
from fhir_mappers.dates import age_in_years, latest_possible_birth
from fhir_mappers.facts import Concept, Facts, ObservationFact
from hooks.rules.conditions import (
    concept_matches,
    describe,
    is_active,
    is_recorded,
    matching,
)
from hooks.rules.findings import Contraindication, ContraindicationId
from hooks.rules.knowledge import Knowledge
from hooks.rules.medications import resolve_ingredients

PI = "SPRAVATO (esketamine) US Prescribing Information"
CONSENSUS = "Sanacora et al. 2017 ketamine consensus (JAMA Psychiatry)"

SOURCES: dict[ContraindicationId, str] = {
    "psychosis-history": f"{PI}, warnings (psychosis excluded from trials); {CONSENSUS}",
    "current-mania-or-hypomania": f"{CONSENSUS} (evidence limited to depressive episodes)",
    "uncontrolled-hypertension": f"{PI}, blood pressure warning (>140/90 mmHg); {CONSENSUS}",
    "serious-heart-disease": f"{PI}, cardiovascular risk warning; {CONSENSUS}",
    "aneurysmal-vascular-disease-or-avm": f"{PI}, contraindications",
    "intracerebral-hemorrhage-history": f"{PI}, contraindications",
    "ketamine-hypersensitivity": f"{PI}, contraindications",
    "active-substance-use-disorder": f"{PI}, abuse and misuse warning; {CONSENSUS}",
    "pregnancy": f"{PI}, use in specific populations (not recommended in pregnancy)",
    "breastfeeding": f"{PI}, use in specific populations (breastfeeding not recommended)",
    "minor": f"{PI}, not approved under 18 years",
}

DIAGNOSIS_CHECKS: tuple[tuple[ContraindicationId, str, bool], ...] = (
    ("psychosis-history", "psychosis", True),
    ("current-mania-or-hypomania", "bipolar-manic-or-hypomanic", False),
    ("serious-heart-disease", "serious-heart-disease", False),
    ("aneurysmal-vascular-disease-or-avm", "aneurysm-or-avm", True),
    ("intracerebral-hemorrhage-history", "intracerebral-hemorrhage", True),
    ("active-substance-use-disorder", "substance-use-disorder-active", False),
)
"""(id, code list, history counts): history checks include resolved and inactive Conditions."""

VALID_OBSERVATION = frozenset({"final", "amended", "corrected", "preliminary", None})

TARGET_DRUGS = frozenset({"ketamine", "esketamine"})


@dataclass(frozen=True)
class Reading:
    ref: str
    at: datetime
    systolic: float | None
    diastolic: float | None


def blood_pressures(
    observations: tuple[ObservationFact, ...], knowledge: Knowledge
) -> list[Reading]:
    """BP readings from panels (85354-9, 55284-4) with components, or lone systolic/diastolic."""
    systolic = knowledge.code_list("bp-systolic")
    diastolic = knowledge.code_list("bp-diastolic")
    readings: list[Reading] = []
    for obs in observations:
        if obs.effective is None or obs.status not in VALID_OBSERVATION:
            continue
        sys_value = dia_value = None
        parts: list[tuple[Concept, float | None]] = [(c.concept, c.value) for c in obs.components]
        parts.append((obs.concept, obs.value))
        for code, value in parts:
            if value is None:
                continue
            if concept_matches(systolic, code):
                sys_value = value
            elif concept_matches(diastolic, code):
                dia_value = value
        if sys_value is not None or dia_value is not None:
            readings.append(Reading(obs.ref, obs.effective, sys_value, dia_value))
    readings.sort(key=lambda r: r.at)
    return readings


def _hypertension(
    facts: Facts, now: datetime, knowledge: Knowledge
) -> tuple[Contraindication | None, list[str]]:
    window = timedelta(days=knowledge.thresholds.bp_window_days.value)
    recent = [r for r in blood_pressures(facts.observations, knowledge) if r.at >= now - window]
    crisis_days = timedelta(days=knowledge.thresholds.hypertensive_crisis_recent_days.value)
    crisis = [
        d
        for d in matching(facts.diagnoses, knowledge.code_list("hypertensive-crisis"))
        if is_recorded(d)
        and (is_active(d, now) and (d.noted is None or d.noted >= now - crisis_days))
    ]
    if crisis:
        return (
            Contraindication(
                "uncontrolled-hypertension",
                tuple(d.ref for d in crisis),
                SOURCES["uncontrolled-hypertension"],
                "; ".join(describe(d) for d in crisis),
            ),
            [],
        )
    if not recent:
        days = int(window.days)
        return None, [f"no blood pressure recorded in the last {days} days"]
    count = int(knowledge.thresholds.bp_readings_averaged.value)
    sys_values = [r.systolic for r in recent if r.systolic is not None][-count:]
    dia_values = [r.diastolic for r in recent if r.diastolic is not None][-count:]
    mean_sys = sum(sys_values) / len(sys_values) if sys_values else None
    mean_dia = sum(dia_values) / len(dia_values) if dia_values else None
    high_sys = mean_sys is not None and mean_sys > knowledge.thresholds.bp_systolic_limit.value
    high_dia = mean_dia is not None and mean_dia > knowledge.thresholds.bp_diastolic_limit.value
    if not (high_sys or high_dia):
        return None, []
    used = [r.ref for r in recent[-count:]]
    shown = f"{mean_sys:.0f}" if mean_sys is not None else "?"
    shown += f"/{mean_dia:.0f}" if mean_dia is not None else "/?"
    return (
        Contraindication(
            "uncontrolled-hypertension",
            tuple(dict.fromkeys(used)),
            SOURCES["uncontrolled-hypertension"],
            f"mean of the last {len(used)} blood pressure readings {shown} mmHg",
        ),
        [],
    )


def _pregnancy(
    facts: Facts, now: datetime, knowledge: Knowledge
) -> tuple[Contraindication | None, list[str]]:
    window = timedelta(weeks=knowledge.thresholds.pregnancy_window_weeks.value)
    events: list[tuple[datetime, bool, str, str]] = []
    gaps: list[str] = []
    for diagnosis in matching(facts.diagnoses, knowledge.code_list("pregnancy")):
        if not is_active(diagnosis, now):
            continue
        noted = diagnosis.noted
        if noted is None or noted < now - window:
            gaps.append(
                f"{diagnosis.ref}: pregnancy recorded more than 42 weeks ago is still active; "
                "verify current pregnancy status"
            )
            continue
        events.append((noted, True, diagnosis.ref, describe(diagnosis)))
    status_codes = knowledge.code_list("pregnancy-status")
    pregnant = knowledge.code_list("pregnant-value")
    not_pregnant = knowledge.code_list("not-pregnant-value")
    for obs in facts.observations:
        if obs.effective is None or obs.effective < now - window:
            continue
        if not concept_matches(status_codes, obs.concept):
            continue
        if concept_matches(pregnant, obs.value_concept):
            events.append((obs.effective, True, obs.ref, f"pregnancy status: pregnant ({obs.ref})"))
        elif concept_matches(not_pregnant, obs.value_concept):
            events.append((obs.effective, False, obs.ref, "not pregnant"))
    if not events:
        return None, gaps
    latest = max(events, key=lambda e: e[0])
    if not latest[1]:
        return None, []
    positive = [e for e in events if e[1]]
    return (
        Contraindication(
            "pregnancy",
            tuple(e[2] for e in positive),
            SOURCES["pregnancy"],
            "; ".join(e[3] for e in positive),
        ),
        [],
    )


def _breastfeeding(facts: Facts, now: datetime, knowledge: Knowledge) -> Contraindication | None:
    window = timedelta(weeks=knowledge.thresholds.breastfeeding_window_weeks.value)
    found = [
        d
        for d in matching(facts.diagnoses, knowledge.code_list("breastfeeding"))
        if is_active(d, now) and (d.noted is None or d.noted >= now - window)
    ]
    if not found:
        return None
    return Contraindication(
        "breastfeeding",
        tuple(d.ref for d in found),
        SOURCES["breastfeeding"],
        "; ".join(describe(d) for d in found),
    )


def _hypersensitivity(facts: Facts, knowledge: Knowledge) -> Contraindication | None:
    found = []
    for allergy in facts.allergies:
        if allergy.verification_status in ("refuted", "entered-in-error"):
            continue
        names = {r.name for r in resolve_ingredients(allergy.concept, (), knowledge)}
        if not names & TARGET_DRUGS:
            for coding in allergy.concept.codings:
                if coding.system == RXNORM and coding.code in knowledge.ingredient_by_rxcui:
                    names.add(knowledge.ingredient_by_rxcui[coding.code])
        if names & TARGET_DRUGS:
            found.append(allergy)
    if not found:
        return None
    return Contraindication(
        "ketamine-hypersensitivity",
        tuple(a.ref for a in found),
        SOURCES["ketamine-hypersensitivity"],
        "; ".join(
            f"{a.concept.label()} ({a.ref}, {a.clinical_status or 'no status'})" for a in found
        ),
    )


def _minor(
    facts: Facts, now: datetime, knowledge: Knowledge
) -> tuple[Contraindication | None, list[str]]:
    patient = facts.patient
    if patient is None:
        return None, ["Patient resource missing; age not verified"]
    if patient.birth_date is None or patient.birth_precision is None:
        return None, ["birth date missing; age not verified"]
    # Partial birth dates are read at their latest possible day, so a possible minor is flagged.
    birth = latest_possible_birth(patient.birth_date, patient.birth_precision)
    age = age_in_years(birth, now.date())
    if age >= knowledge.thresholds.adult_age_years.value:
        return None, []
    return (
        Contraindication(
            "minor", (patient.ref,), SOURCES["minor"], f"age {max(age, 0)} years ({patient.ref})"
        ),
        [],
    )


def screen(
    facts: Facts, *, now: datetime, knowledge: Knowledge
) -> tuple[list[Contraindication], dict[ContraindicationId, list[str]]]:
    """Every contraindication found, and per check the data it lacked (the record has no recent
    blood pressure, no birth date...)."""
    found: list[Contraindication] = []
    gaps: dict[ContraindicationId, list[str]] = {}
    for ci_id, list_name, history in DIAGNOSIS_CHECKS:
        hits = [
            d
            for d in matching(facts.diagnoses, knowledge.code_list(list_name))
            if (is_recorded(d) if history else is_active(d, now))
        ]
        if hits:
            found.append(
                Contraindication(
                    ci_id,
                    tuple(d.ref for d in hits),
                    SOURCES[ci_id],
                    "; ".join(describe(d) for d in hits),
                )
            )
    hypertension, gaps["uncontrolled-hypertension"] = _hypertension(facts, now, knowledge)
    hypersensitivity = _hypersensitivity(facts, knowledge)
    minor, gaps["minor"] = _minor(facts, now, knowledge)
    female_or_unknown = facts.patient is None or facts.patient.gender not in ("male",)
    pregnancy = breastfeeding = None
    if female_or_unknown:
        pregnancy, gaps["pregnancy"] = _pregnancy(facts, now, knowledge)
        breastfeeding = _breastfeeding(facts, now, knowledge)
    for item in (hypertension, hypersensitivity, pregnancy, breastfeeding, minor):
        if item is not None:
            found.append(item)
    order = list(SOURCES)
    found.sort(key=lambda c: order.index(c.id))
    return found, {k: v for k, v in gaps.items() if v}
