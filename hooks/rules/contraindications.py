"""Contraindications, label warnings and cautions for ketamine and esketamine. Pure.

The SPRAVATO label (PI, SPL v18) contraindicates only aneurysmal vascular disease or AVM, a
history of intracerebral haemorrhage and hypersensitivity (section 4): those findings have
severity ``contraindication``. Psychosis, mania, uncontrolled hypertension, serious heart disease,
other intracranial haemorrhage, moderate or severe substance use disorder, pregnancy,
breastfeeding and age under 18 are label warnings or "not recommended"/"not approved": severity
``warning``, each naming its source, because each needs a specialist's judgement. Findings the
label asks to weigh without excluding (a history of substance use disorder, hypertensive
encephalopathy, other cardiovascular conditions, hepatic impairment) and bipolar disorder are
``caution`` (clinical review S5, S6, S8, M2, M5, M6).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fhir_mappers.codes import RXNORM
from fhir_mappers.dates import age_in_years, latest_possible_birth, shift
from fhir_mappers.facts import Concept, DiagnosisFact, Facts, ObservationFact
from hooks.rules.conditions import (
    concept_matches,
    describe,
    is_active,
    is_recorded,
    matching,
)
from hooks.rules.findings import (
    CautionId,
    Contraindication,
    ContraindicationId,
    Severity,
)
from hooks.rules.knowledge import Knowledge
from hooks.rules.medications import resolve_ingredients
from hooks.rules.observations import is_result

PI = "SPRAVATO (esketamine) US Prescribing Information"
CONSENSUS = "Sanacora et al. 2017 ketamine consensus (JAMA Psychiatry)"

SOURCES: dict[ContraindicationId, str] = {
    "psychosis-history": f"{PI}, warnings (dissociation: assess patients with psychosis); "
    f"{CONSENSUS}",
    "current-mania-or-hypomania": f"{CONSENSUS} (evidence limited to depressive episodes)",
    "uncontrolled-hypertension": f"{PI}, warnings (increase in blood pressure); {CONSENSUS}",
    "serious-heart-disease": f"{PI}, warnings (increase in blood pressure: cardiovascular and "
    f"cerebrovascular conditions); {CONSENSUS}",
    "aneurysmal-vascular-disease-or-avm": f"{PI}, contraindications",
    "intracerebral-hemorrhage-history": f"{PI}, contraindications (history of intracerebral "
    "hemorrhage) and warnings (increase in intracranial pressure)",
    "ketamine-hypersensitivity": f"{PI}, contraindications",
    "active-substance-use-disorder": f"{PI}, warnings (abuse and misuse); {CONSENSUS}",
    "pregnancy": f"{PI}, use in specific populations (not recommended in pregnancy)",
    "breastfeeding": f"{PI}, use in specific populations (breastfeeding not recommended)",
    "minor": f"{PI}, not approved in pediatric patients",
}

CAUTION_SOURCES: dict[CautionId, str] = {
    "bipolar-disorder": "TRD in the label and in TRANSFORM is unipolar MDD; no esketamine data in "
    "bipolar depression (REAL-ESK); ketamine third-line in bipolar depression (CANMAT)",
    "hallucinogen-use-history": f"{PI}, drug abuse and dependence (esketamine is a Schedule III "
    "drug with abuse potential; a history of hallucinogen, phencyclidine or ketamine use disorder "
    "weighs most)",
    "substance-use-history": f"{PI}, drug abuse and dependence (careful consideration with a "
    "history of substance use disorder, including alcohol)",
    "hypertensive-encephalopathy-history": f"{PI}, warnings (more intensive monitoring with a "
    "history of hypertensive encephalopathy)",
    "cardiovascular-condition": f"{PI}, warnings (carefully assess cardiovascular and "
    "cerebrovascular conditions)",
    "hepatic-impairment": f"{PI}, use in specific populations (not recommended in severe hepatic "
    "impairment, Child-Pugh C; longer monitoring in moderate impairment)",
}

DIAGNOSIS_CHECKS: tuple[tuple[ContraindicationId, str, bool, Severity], ...] = (
    ("psychosis-history", "psychosis", True, "warning"),
    ("current-mania-or-hypomania", "bipolar-manic-or-hypomanic", False, "warning"),
    ("serious-heart-disease", "serious-heart-disease", False, "warning"),
    ("aneurysmal-vascular-disease-or-avm", "aneurysm-or-avm", True, "contraindication"),
    ("intracerebral-hemorrhage-history", "intracerebral-hemorrhage", True, "contraindication"),
    ("intracerebral-hemorrhage-history", "intracranial-hemorrhage-other", True, "warning"),
    ("active-substance-use-disorder", "substance-use-disorder-active", False, "warning"),
)
"""(id, code list, history counts, severity): history checks include resolved and inactive
Conditions. An id found by several lists keeps the strongest severity."""

CAUTION_CHECKS: tuple[tuple[CautionId, str, bool], ...] = (
    ("bipolar-disorder", "bipolar-spectrum", True),
    ("hallucinogen-use-history", "hallucinogen-use-disorder", True),
    ("substance-use-history", "substance-use-disorder-mild", False),
    ("substance-use-history", "substance-use-disorder-remission", True),
    ("hypertensive-encephalopathy-history", "hypertensive-encephalopathy", True),
    ("cardiovascular-condition", "cardiovascular-condition", True),
    ("hepatic-impairment", "hepatic-impairment", False),
)
"""(id, code list, history counts) of the cautions."""

TARGET_DRUGS = frozenset({"ketamine", "esketamine"})
_RANK: dict[Severity, int] = {"contraindication": 2, "warning": 1, "caution": 0}


@dataclass(frozen=True)
class Reading:
    ref: str
    at: datetime
    systolic: float | None
    diastolic: float | None


def blood_pressures(
    observations: tuple[ObservationFact, ...], knowledge: Knowledge
) -> list[Reading]:
    """BP readings from panels (85354-9, 55284-4) with components, or lone systolic/diastolic,
    oldest first."""
    systolic = knowledge.code_list("bp-systolic")
    diastolic = knowledge.code_list("bp-diastolic")
    readings: list[Reading] = []
    for obs in observations:
        if obs.effective is None or not is_result(obs):
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


def _noted_since(diagnosis: DiagnosisFact, since: datetime) -> bool:
    noted = diagnosis.noted
    return noted is not None and noted >= since


def _hypertension(
    facts: Facts, now: datetime, knowledge: Knowledge
) -> tuple[Contraindication | None, list[str]]:
    """Chronically uncontrolled: the mean of the last readings in ``bp_window_days`` above the
    label's guide, or a recent hypertensive crisis code. (At order-sign the latest reading
    decides: see ``order_safety``.)"""
    limits = knowledge.thresholds
    since = shift(now, days=-limits.bp_window_days.value) or now
    recent = [r for r in blood_pressures(facts.observations, knowledge) if r.at >= since]
    crisis_since = shift(now, days=-limits.hypertensive_crisis_recent_days.value) or now
    crisis = [
        d
        for d in matching(facts.diagnoses, knowledge.code_list("hypertensive-crisis"))
        if is_active(d, now) and (d.noted is None or d.noted >= crisis_since)
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
        return None, [
            f"no blood pressure recorded in the last {limits.bp_window_days.value:g} days"
        ]
    count = int(limits.bp_readings_averaged.value)
    sys_values = [r.systolic for r in recent if r.systolic is not None][-count:]
    dia_values = [r.diastolic for r in recent if r.diastolic is not None][-count:]
    mean_sys = sum(sys_values) / len(sys_values) if sys_values else None
    mean_dia = sum(dia_values) / len(dia_values) if dia_values else None
    high_sys = mean_sys is not None and mean_sys > limits.bp_systolic_limit.value
    high_dia = mean_dia is not None and mean_dia > limits.bp_diastolic_limit.value
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
            f"mean of the last {len(used)} blood pressure readings {shown} mmHg, above the "
            f"label's general guide of {limits.bp_systolic_limit.value:g}/"
            f"{limits.bp_diastolic_limit.value:g}",
        ),
        [],
    )


def _pregnancy(
    facts: Facts, now: datetime, knowledge: Knowledge
) -> tuple[Contraindication | None, list[str]]:
    """The latest of pregnancy codes and status readings (inside the gestation window) and of
    the codes that end a pregnancy (delivery, abortive outcome) decides."""
    weeks = knowledge.thresholds.pregnancy_window_weeks.value
    since = shift(now, weeks=-weeks) or now
    events: list[tuple[datetime, bool, str, str]] = []
    gaps: list[str] = []
    for diagnosis in matching(facts.diagnoses, knowledge.code_list("pregnancy")):
        if not is_active(diagnosis, now):
            continue
        noted = diagnosis.noted
        if noted is None or noted < since:
            gaps.append(
                f"{diagnosis.ref}: pregnancy recorded more than {weeks:g} weeks ago is still "
                "active; verify current pregnancy status"
            )
            continue
        events.append((noted, True, diagnosis.ref, describe(diagnosis)))
    for ended in matching(facts.diagnoses, knowledge.code_list("pregnancy-ended")):
        if is_recorded(ended) and ended.noted is not None:
            events.append((ended.noted, False, ended.ref, describe(ended)))
    status_codes = knowledge.code_list("pregnancy-status")
    pregnant = knowledge.code_list("pregnant-value")
    not_pregnant = knowledge.code_list("not-pregnant-value")
    for obs in facts.observations:
        if obs.effective is None or obs.effective < since or not is_result(obs):
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
    since = shift(now, weeks=-knowledge.thresholds.breastfeeding_window_weeks.value) or now
    found = [
        d
        for d in matching(facts.diagnoses, knowledge.code_list("breastfeeding"))
        if is_active(d, now) and (d.noted is None or d.noted >= since)
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
        "contraindication",
    )


def age(facts: Facts, now: datetime) -> int | None:
    """Completed years, reading a partial birth date at its latest day (never miss a minor)."""
    patient = facts.patient
    if patient is None or patient.birth_date is None or patient.birth_precision is None:
        return None
    birth = latest_possible_birth(patient.birth_date, patient.birth_precision)
    return age_in_years(birth, now.date())


def _minor(
    facts: Facts, now: datetime, knowledge: Knowledge
) -> tuple[Contraindication | None, list[str]]:
    patient = facts.patient
    if patient is None:
        return None, ["Patient resource missing; age not verified"]
    years = age(facts, now)
    if years is None:
        return None, ["birth date missing; age not verified"]
    if years >= knowledge.thresholds.adult_age_years.value:
        return None, []
    return (
        Contraindication(
            "minor",
            (patient.ref,),
            SOURCES["minor"],
            f"age {max(years, 0)} years, under "
            f"{knowledge.thresholds.adult_age_years.value:g} ({patient.ref})",
        ),
        [],
    )


def _diagnoses(
    facts: Facts, now: datetime, knowledge: Knowledge
) -> tuple[list[Contraindication], list[Contraindication]]:
    """Findings read from Conditions: (contraindications and warnings, cautions)."""
    found: dict[str, Contraindication] = {}
    for ci_id, list_name, history, severity in DIAGNOSIS_CHECKS:
        hits = [
            d
            for d in matching(facts.diagnoses, knowledge.code_list(list_name))
            if (is_recorded(d) if history else is_active(d, now))
        ]
        if not hits:
            continue
        finding = Contraindication(
            ci_id,
            tuple(d.ref for d in hits),
            SOURCES[ci_id],
            "; ".join(describe(d) for d in hits),
            severity,
        )
        known = found.get(ci_id)
        if known is None or _RANK[severity] > _RANK[known.severity]:
            found[ci_id] = finding
    recent_since = shift(now, days=-knowledge.thresholds.recent_cardiac_event_days.value) or now
    events = [
        d
        for d in matching(facts.diagnoses, knowledge.code_list("recent-cardiovascular-event"))
        if is_recorded(d)
    ]
    recent = [d for d in events if _noted_since(d, recent_since)]
    if recent and "serious-heart-disease" not in found:
        found["serious-heart-disease"] = Contraindication(
            "serious-heart-disease",
            tuple(d.ref for d in recent),
            SOURCES["serious-heart-disease"],
            "recent: " + "; ".join(describe(d) for d in recent),
        )
    cautions: dict[str, Contraindication] = {}
    older = [d for d in events if d not in recent]
    for caution_id, list_name, history in CAUTION_CHECKS:
        hits = [
            d
            for d in matching(facts.diagnoses, knowledge.code_list(list_name))
            if (is_recorded(d) if history else is_active(d, now))
        ]
        if caution_id == "cardiovascular-condition":
            hits += older
        if not hits:
            continue
        known = cautions.get(caution_id)
        refs = (known.evidence if known else ()) + tuple(d.ref for d in hits)
        text = "; ".join(describe(d) for d in hits)
        cautions[caution_id] = Contraindication(
            caution_id,
            tuple(dict.fromkeys(refs)),
            CAUTION_SOURCES[caution_id],
            f"{known.detail}; {text}" if known else text,
            "caution",
        )
    return list(found.values()), list(cautions.values())


def screen(
    facts: Facts, *, now: datetime, knowledge: Knowledge
) -> tuple[list[Contraindication], list[Contraindication], dict[ContraindicationId, list[str]]]:
    """Contraindications and warnings found (one per id, the strongest), cautions found, and per
    check the data it lacked (the record has no recent blood pressure, no birth date...)."""
    found, cautions = _diagnoses(facts, now, knowledge)
    gaps: dict[ContraindicationId, list[str]] = {}
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
    found.sort(key=lambda c: order.index(c.id))  # type: ignore[arg-type]
    return found, cautions, {k: v for k, v in gaps.items() if v}
