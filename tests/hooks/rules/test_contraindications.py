"""hooks/rules/contraindications.py: label contraindications, label warnings and cautions.

Every check is tested present, absent, refuted, entered in error, and (where the check reads
history) resolved; windows and limits come from the knowledge.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from fhir_mappers.facts import (
    AllergyFact,
    Concept,
    DiagnosisFact,
    Facts,
    ObservationFact,
    PatientFact,
)
from hooks.rules.contraindications import SOURCES, age, screen
from hooks.rules.findings import Contraindication
from tests.factories import NOW
from tests.hooks.rules.facts import (
    KNOWLEDGE,
    LIMITS,
    allergy,
    bp,
    dx,
    person,
    pregnancy_status,
    record,
    rxnorm,
    text,
)

NORMAL_BP = (120.0, 80.0)
SYSTOLIC = LIMITS.bp_systolic_limit.value
DIASTOLIC = LIMITS.bp_diastolic_limit.value
BP_WINDOW = LIMITS.bp_window_days.value
AVERAGED = int(LIMITS.bp_readings_averaged.value)
CRISIS_DAYS = LIMITS.hypertensive_crisis_recent_days.value
CARDIAC_DAYS = LIMITS.recent_cardiac_event_days.value
PREGNANCY_WEEKS = LIMITS.pregnancy_window_weeks.value
BREASTFEEDING_WEEKS = LIMITS.breastfeeding_window_weeks.value
ADULT = int(LIMITS.adult_age_years.value)


def run(
    *items: DiagnosisFact | ObservationFact | AllergyFact,
    patient: PatientFact | None = None,
    with_bp: bool = True,
) -> tuple[dict[str, Contraindication], dict[str, Contraindication], dict[str, list[str]]]:
    """Screen a record (with a normal recent blood pressure unless told otherwise)."""
    extra = (bp(*NORMAL_BP, days_ago=3),) if with_bp else ()
    found, cautions, gaps = screen(
        record(*items, *extra, patient=patient), now=NOW, knowledge=KNOWLEDGE
    )
    return (
        {c.id: c for c in found},
        {c.id: c for c in cautions},
        {str(k): v for k, v in gaps.items()},
    )


# --- findings read from Conditions ---------------------------------------------------------------

DIAGNOSES = [
    ("psychosis-history", "F20.9", True, "warning"),
    ("current-mania-or-hypomania", "F31.11", False, "warning"),
    ("serious-heart-disease", "I50.9", False, "warning"),
    ("aneurysmal-vascular-disease-or-avm", "I67.1", True, "contraindication"),
    ("intracerebral-hemorrhage-history", "I61.9", True, "contraindication"),
    ("intracerebral-hemorrhage-history", "S06.360A", True, "contraindication"),
    ("intracerebral-hemorrhage-history", "I62.00", True, "warning"),
    ("intracerebral-hemorrhage-history", "I69.20", True, "warning"),
    ("active-substance-use-disorder", "F10.20", False, "warning"),
]
"""(id, a code of its list, whether resolved history counts, severity)."""

VARIANTS = [
    ("active", "confirmed", "present"),
    ("resolved", "confirmed", "resolved"),
    ("inactive", "confirmed", "resolved"),
    ("active", "refuted", "never"),
    ("active", "entered-in-error", "never"),
    ("active", "unconfirmed", "present"),
    (None, None, "present"),
]
"""(clinical status, verification status, what it means)."""


def _expected(kind: str, history: bool) -> bool:
    return kind == "present" or (kind == "resolved" and history)


@pytest.mark.parametrize(
    ("ci_id", "code", "history", "severity", "status", "verification", "kind"),
    [(*d, *v) for d in DIAGNOSES for v in VARIANTS],
    ids=[f"{d[0]}-{d[1]}-{v[0]}-{v[1]}" for d in DIAGNOSES for v in VARIANTS],
)
def test_screen_diagnosis_status_decides_the_finding(
    ci_id: str,
    code: str,
    history: bool,
    severity: str,
    status: str | None,
    verification: str | None,
    kind: str,
) -> None:
    """Verify that each Condition-based check finds an active code, a resolved one only when
    history counts, never a refuted or erroneous one, with its severity, source and evidence."""
    diagnosis = dx(code, status=status, verification=verification)
    found, _, _ = run(diagnosis)
    if _expected(kind, history):
        finding = found[ci_id]
        assert (finding.severity, finding.evidence) == (severity, (diagnosis.ref,))
        assert finding.source == SOURCES[ci_id]  # type: ignore[index]
        assert diagnosis.ref in finding.detail
    else:
        assert ci_id not in found


@pytest.mark.parametrize(
    "ci_id", sorted({d[0] for d in DIAGNOSES}), ids=sorted({d[0] for d in DIAGNOSES})
)
def test_screen_diagnosis_absent_finds_nothing(ci_id: str) -> None:
    """Verify that a record holding every other check's code, but none of this one's, has no such
    finding (and has each of the others)."""
    others = [dx(code) for other, code, _, _ in DIAGNOSES if other != ci_id]
    found, _, _ = run(*others)
    assert set(found) == {other for other, _, _, _ in DIAGNOSES if other != ci_id}


def test_screen_one_finding_per_id_keeps_the_strongest_severity() -> None:
    """Verify that an id found by several lists (a subdural haemorrhage, a label warning, and an
    intracerebral one, a label contraindication) is one finding with the contraindication
    severity."""
    subdural = dx("I62.00", status="resolved")
    cerebral = dx("I61.9", status="resolved")
    found, _, _ = run(subdural, cerebral)
    assert [f.severity for f in found.values()] == ["contraindication"]
    assert found["intracerebral-hemorrhage-history"].evidence == (cerebral.ref,)


def test_screen_findings_come_in_checklist_order() -> None:
    """Verify that findings are ordered as the checklist (SOURCES) is."""
    items = [
        dx("F10.20"),
        dx("I67.1"),
        dx("F20.9"),
        dx("Z33.1", weeks_ago=4),
    ]
    found, _, _ = run(*items, patient=person(date(NOW.year - 16, 1, 1)))
    order: list[str] = list(SOURCES)
    assert list(found) == sorted(found, key=order.index)
    assert set(found) == {
        "psychosis-history",
        "aneurysmal-vascular-disease-or-avm",
        "active-substance-use-disorder",
        "pregnancy",
        "minor",
    }


CAUTIONS = [
    ("bipolar-disorder", "F31.72", True),
    ("bipolar-disorder", "F30.10", True),
    ("hallucinogen-use-history", "F16.11", True),
    ("substance-use-history", "F12.10", False),
    ("substance-use-history", "F10.21", True),
    ("hypertensive-encephalopathy-history", "I67.4", True),
    ("cardiovascular-condition", "I25.10", True),
    ("hepatic-impairment", "K74.60", False),
]
"""(caution id, a code of its list, whether resolved history counts)."""

ALSO = {"substance-use-history": ("hallucinogen-use-history",)}
"""Cautions whose codes also show another one (hallucinogen use disorder in remission is a
substance use disorder history too)."""


@pytest.mark.parametrize(
    ("caution_id", "code", "history", "status", "verification", "kind"),
    [(*c, *v) for c in CAUTIONS for v in VARIANTS],
    ids=[f"{c[0]}-{c[1]}-{v[0]}-{v[1]}" for c in CAUTIONS for v in VARIANTS],
)
def test_screen_caution_status_decides_the_caution(
    caution_id: str,
    code: str,
    history: bool,
    status: str | None,
    verification: str | None,
    kind: str,
) -> None:
    """Verify that each caution finds an active code, a resolved one only when history counts
    (hypertensive encephalopathy with no time limit: clinical review M5), never a refuted or
    erroneous one; and that a caution is never a contraindication or warning."""
    diagnosis = dx(code, status=status, verification=verification, weeks_ago=150)
    found, cautions, _ = run(diagnosis)
    if _expected(kind, history):
        assert cautions[caution_id].severity == "caution"
        assert diagnosis.ref in cautions[caution_id].evidence
    else:
        assert caution_id not in cautions
    assert caution_id not in found


@pytest.mark.parametrize(
    "caution_id", sorted({c[0] for c in CAUTIONS}), ids=sorted({c[0] for c in CAUTIONS})
)
def test_screen_caution_absent_gives_no_caution(caution_id: str) -> None:
    """Verify that a record holding every other caution's code, but none of this one's, has no
    such caution (a hallucinogen use disorder is also a substance use disorder, so it is left out
    of the substance-use-history case)."""
    left_out = {caution_id, *ALSO.get(caution_id, ())}
    others = [dx(code) for other, code, _ in CAUTIONS if other not in left_out]
    _, cautions, _ = run(*others)
    assert caution_id not in cautions
    assert set(cautions) == {other for other, _, _ in CAUTIONS if other not in left_out}


@pytest.mark.parametrize(
    ("code", "weeks_ago", "finding", "caution"),
    [
        ("I63.9", (CARDIAC_DAYS - 7) / 7, "serious-heart-disease", None),
        ("I63.9", (CARDIAC_DAYS + 7) / 7, None, "cardiovascular-condition"),
        ("I25.2", (CARDIAC_DAYS - 7) / 7, "serious-heart-disease", None),
        ("I25.2", (CARDIAC_DAYS + 7) / 7, None, "cardiovascular-condition"),
        ("I63.9", None, None, "cardiovascular-condition"),
    ],
    ids=[
        "recent-stroke",
        "old-stroke",
        "old-mi-code-recently-recorded",
        "old-mi-code",
        "undated-stroke",
    ],
)
def test_screen_cardiovascular_event_recent_is_a_warning_older_a_caution(
    code: str, weeks_ago: float | None, finding: str | None, caution: str | None
) -> None:
    """Verify that a stroke or old-MI code noted within recent_cardiac_event_days is serious heart
    disease, and older (or undated) a cardiovascular caution (clinical review S6)."""
    diagnosis = dx(code, status="resolved", weeks_ago=weeks_ago)
    found, cautions, _ = run(diagnosis)
    assert set(found) == ({finding} if finding else set())
    assert set(cautions) == ({caution} if caution else set())


# --- uncontrolled hypertension -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("readings", "found"),
    [
        ([(SYSTOLIC, DIASTOLIC, 2)], False),
        ([(SYSTOLIC + 1, DIASTOLIC, 2)], True),
        ([(SYSTOLIC, DIASTOLIC + 1, 2)], True),
        ([(SYSTOLIC + 30, DIASTOLIC + 20, BP_WINDOW + 1), (120, 80, 2)], False),
        (
            [(SYSTOLIC + 60, DIASTOLIC + 30, 40)] + [(120, 70, d) for d in range(1, AVERAGED + 1)],
            False,
        ),
        ([(186, 114, 0), (118, 76, 60), (116, 74, 80)], False),
        ([(SYSTOLIC + 10, DIASTOLIC + 5, d) for d in range(1, AVERAGED + 1)], True),
        ([(None, DIASTOLIC + 10, 2)], True),
    ],
    ids=[
        "at-the-limit",
        "systolic-above",
        "diastolic-above",
        "high-reading-outside-window",
        "only-the-last-readings-are-averaged",
        "high-today-averaged-away-at-patient-view",
        "all-high",
        "diastolic-only",
    ],
)
def test_screen_uncontrolled_hypertension_from_the_mean_of_recent_readings(
    readings: list[tuple[float | None, float | None, float]], found: bool
) -> None:
    """Verify that the patient-view check is the mean of the last bp_readings_averaged readings
    within bp_window_days, strictly above the label's guide (the order-sign check reads the
    latest reading instead: clinical review M5)."""
    observations = [bp(s, d, days_ago=days) for s, d, days in readings]
    result, _, gaps = run(*observations, with_bp=False)
    assert ("uncontrolled-hypertension" in result) is found
    assert "uncontrolled-hypertension" not in gaps
    if found:
        used = {o.ref for o in observations}
        assert set(result["uncontrolled-hypertension"].evidence) <= used


@pytest.mark.parametrize(
    ("status", "counted"),
    [
        ("final", True),
        ("amended", True),
        ("corrected", True),
        ("preliminary", True),
        (None, True),
        ("registered", False),
        ("cancelled", False),
        ("entered-in-error", False),
        ("unknown", False),
    ],
    ids=lambda v: str(v),
)
def test_screen_blood_pressure_reading_status_decides_whether_it_counts(
    status: str | None, counted: bool
) -> None:
    """Verify that only Observations that are results (final, amended, corrected, preliminary,
    or without a status) are blood-pressure readings."""
    high = bp(SYSTOLIC + 30, DIASTOLIC + 20, days_ago=2)
    reading = replace(high, status=status)
    result, _, gaps = run(reading, with_bp=False)
    assert ("uncontrolled-hypertension" in result) is counted
    assert ("uncontrolled-hypertension" in gaps) is not counted


@pytest.mark.parametrize(
    ("diagnosis", "found"),
    [
        (dx("I16.0", weeks_ago=(CRISIS_DAYS - 7) / 7), True),
        (dx("I16.0", weeks_ago=(CRISIS_DAYS + 7) / 7), False),
        (dx("I16.1", weeks_ago=None), True),
        (dx("I16.0", weeks_ago=1, status="resolved"), False),
        (dx("I16.0", weeks_ago=1, verification="refuted"), False),
        (dx("I10", weeks_ago=1), False),
    ],
    ids=[
        "recent-crisis",
        "old-crisis",
        "undated-active-crisis",
        "resolved-crisis",
        "refuted-crisis",
        "essential-hypertension-alone",
    ],
)
def test_screen_hypertensive_crisis_code_recent_and_active(
    diagnosis: DiagnosisFact, found: bool
) -> None:
    """Verify that an active hypertensive-crisis code within hypertensive_crisis_recent_days is
    uncontrolled hypertension whatever the readings, and a hypertension diagnosis alone never."""
    result, _, _ = run(diagnosis)
    assert ("uncontrolled-hypertension" in result) is found


@pytest.mark.parametrize(
    "readings",
    [[], [(150, 95, BP_WINDOW + 1)]],
    ids=["no-reading", "only-old-readings"],
)
def test_screen_no_recent_blood_pressure_is_a_gap(
    readings: list[tuple[float, float, float]],
) -> None:
    """Verify that no reading within bp_window_days is a data gap of the hypertension check, never
    a finding or a silent pass."""
    found, _, gaps = run(*(bp(s, d, days_ago=days) for s, d, days in readings), with_bp=False)
    assert "uncontrolled-hypertension" not in found
    assert gaps["uncontrolled-hypertension"]


# --- pregnancy and breastfeeding -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "found", "gap"),
    [
        ([dx("Z33.1", weeks_ago=10)], True, False),
        ([dx("Z33.1", weeks_ago=PREGNANCY_WEEKS + 2)], False, True),
        ([dx("Z33.1", weeks_ago=10, status="resolved")], False, False),
        ([dx("Z33.1", weeks_ago=10, verification="refuted")], False, False),
        ([dx("Z33.1", weeks_ago=38), dx("O80", weeks_ago=2)], False, False),
        ([dx("Z33.1", weeks_ago=PREGNANCY_WEEKS + 2), dx("O80", weeks_ago=2)], False, False),
        ([dx("O80", weeks_ago=60), dx("Z33.1", weeks_ago=10)], True, False),
        ([dx("Z33.1", weeks_ago=38), dx("O80", weeks_ago=2, verification="refuted")], True, False),
        ([dx(text("Miscarriage"), weeks_ago=1), dx("Z33.1", weeks_ago=8)], False, False),
        ([pregnancy_status(True, weeks_ago=2)], True, False),
        ([pregnancy_status(True, weeks_ago=4), pregnancy_status(False, weeks_ago=1)], False, False),
        ([pregnancy_status(False, weeks_ago=4), pregnancy_status(True, weeks_ago=1)], True, False),
        ([pregnancy_status(True, weeks_ago=PREGNANCY_WEEKS + 2)], False, False),
        ([], False, False),
    ],
    ids=[
        "recent-pregnancy-code",
        "old-code-still-active",
        "resolved-code",
        "refuted-code",
        "closed-by-a-later-delivery",
        "old-code-closed-by-a-delivery",
        "delivery-before-a-new-pregnancy",
        "refuted-delivery-does-not-close",
        "closed-by-a-miscarriage-text",
        "status-pregnant",
        "later-status-not-pregnant",
        "later-status-pregnant",
        "old-status",
        "nothing",
    ],
)
def test_screen_pregnancy_latest_event_decides(
    items: list[DiagnosisFact | ObservationFact], found: bool, gap: bool
) -> None:
    """Verify that the latest of pregnancy codes and status readings inside
    pregnancy_window_weeks, and of the codes that end a pregnancy, decides; an older code still
    active is a data gap to verify (clinical review S11)."""
    result, _, gaps = run(*items)
    assert ("pregnancy" in result) is found
    assert ("pregnancy" in gaps) is gap


@pytest.mark.parametrize(
    ("gender", "screened"),
    [("female", True), ("male", False), ("other", True), (None, True)],
    ids=["female", "male", "other", "unknown"],
)
def test_screen_pregnancy_and_breastfeeding_skipped_only_for_males(
    gender: str | None, screened: bool
) -> None:
    """Verify that pregnancy and breastfeeding are screened unless the patient is male."""
    result, _, _ = run(
        dx("Z33.1", weeks_ago=10), dx("Z39.1", weeks_ago=10), patient=person(gender=gender)
    )
    expected = {"pregnancy", "breastfeeding"} if screened else set()
    assert set(result) == expected


@pytest.mark.parametrize(
    ("diagnosis", "found"),
    [
        (dx("Z39.1", weeks_ago=BREASTFEEDING_WEEKS - 2), True),
        (dx("Z39.1", weeks_ago=BREASTFEEDING_WEEKS + 2), False),
        (dx("Z39.1", weeks_ago=None), True),
        (dx("Z39.1", weeks_ago=4, status="resolved"), False),
        (dx("Z39.1", weeks_ago=4, verification="entered-in-error"), False),
    ],
    ids=["recent", "old", "undated-active", "resolved", "entered-in-error"],
)
def test_screen_breastfeeding_active_within_window(diagnosis: DiagnosisFact, found: bool) -> None:
    """Verify that an active breastfeeding code within breastfeeding_window_weeks is found."""
    result, _, _ = run(diagnosis)
    assert ("breastfeeding" in result) is found


# --- hypersensitivity ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("concept", "verification", "status", "found"),
    [
        (text("ketamine"), "confirmed", "active", True),
        (text("Ketalar"), "confirmed", "active", True),
        (rxnorm("2119365"), "confirmed", "active", True),
        (rxnorm("6130", "Ketamine"), "unconfirmed", "active", True),
        (text("esketamine"), "confirmed", "resolved", True),
        (text("esketamine"), "refuted", "active", False),
        (text("ketamine"), "entered-in-error", "active", False),
        (text("penicillin"), "confirmed", "active", False),
        (rxnorm("7980"), "confirmed", "active", False),
    ],
    ids=[
        "ketamine-text",
        "brand",
        "esketamine-rxnorm",
        "unconfirmed",
        "resolved",
        "refuted",
        "entered-in-error",
        "other-drug-text",
        "other-drug-code",
    ],
)
def test_screen_ketamine_hypersensitivity_any_status_not_refuted(
    concept: Concept, verification: str, status: str, found: bool
) -> None:
    """Verify that an allergy to ketamine or esketamine (code, name or brand), of any clinical
    status, is a label contraindication unless refuted or entered in error."""
    record_allergy = allergy(concept, verification=verification, status=status)
    result, _, _ = run(record_allergy)
    if found:
        finding = result["ketamine-hypersensitivity"]
        assert (finding.severity, finding.evidence) == ("contraindication", (record_allergy.ref,))
    else:
        assert "ketamine-hypersensitivity" not in result


# --- age -----------------------------------------------------------------------------------------


def _born(years_ago: int, month: int, day: int) -> date:
    return date(NOW.year - years_ago, month, day)


@pytest.mark.parametrize(
    ("birth", "precision", "years"),
    [
        (_born(ADULT, NOW.month, NOW.day), "day", ADULT),
        (_born(ADULT, NOW.month, NOW.day + 1), "day", ADULT - 1),
        (_born(ADULT, 1, 1), "year", ADULT - 1),
        (_born(ADULT + 1, 1, 1), "year", ADULT),
        (_born(ADULT, NOW.month, 1), "month", ADULT - 1),
        (_born(ADULT, NOW.month - 1, 1), "month", ADULT),
        (_born(40, 5, 17), "day", 40),
    ],
    ids=[
        "birthday-today",
        "birthday-tomorrow",
        "year-only-read-at-its-last-day",
        "year-only-a-year-earlier",
        "month-only-this-month",
        "month-only-last-month",
        "adult",
    ],
)
def test_age_partial_birth_date_read_at_its_latest_day(
    birth: date, precision: str, years: int
) -> None:
    """Verify that age is in completed years and a partial birth date is read at the last day it
    can stand for (never miss a minor)."""
    patient = person(birth, precision=precision)  # type: ignore[arg-type]
    assert age(record(patient=patient), NOW) == years


def test_age_unknown_without_birth_date_or_patient() -> None:
    """Verify that age is unknown without a birth date or without a Patient."""
    assert age(record(patient=person(None)), NOW) is None
    assert age(Facts(), NOW) is None


@pytest.mark.parametrize(
    ("patient", "minor", "gap"),
    [
        (person(_born(ADULT - 1, 1, 1)), True, None),
        (person(_born(ADULT, NOW.month, NOW.day + 1)), True, None),
        (person(_born(ADULT, 1, 1), precision="year"), True, None),
        (person(_born(ADULT, NOW.month, NOW.day)), False, None),
        (person(None), False, "birth date missing"),
        (None, False, "Patient resource missing"),
    ],
    ids=[
        "minor",
        "adult-tomorrow",
        "possible-minor-year-only",
        "adult-today",
        "no-birth-date",
        "no-patient",
    ],
)
def test_screen_minor_under_adult_age(
    patient: PatientFact | None, minor: bool, gap: str | None
) -> None:
    """Verify that a patient under adult_age_years (or possibly under, by a partial birth date)
    gets the minor warning, and an unknown age is a data gap."""
    facts = Facts(patient=patient, observations=(bp(*NORMAL_BP, days_ago=3),))
    found, _, gaps = screen(facts, now=NOW, knowledge=KNOWLEDGE)
    assert any(f.id == "minor" for f in found) is minor
    if gap is None:
        assert "minor" not in gaps
    else:
        assert any(gap in g for g in gaps["minor"])


def test_screen_nothing_recorded_finds_nothing() -> None:
    """Verify that an adult with a normal recent blood pressure and nothing else has no finding,
    no caution and no gap."""
    assert run() == ({}, {}, {})
