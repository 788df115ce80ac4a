"""hooks/rules/order_safety.py: the checks of one ketamine or esketamine order at signing.

The assessment is built directly (``assessment(...)``) so that each check is tested alone; facts
come from ``tests/hooks/rules/facts.py``. Limits are read from the knowledge; the label's
documented values (56 mg first dose, 84 mg maximum, 28 mg devices, twice weekly for 4 weeks then
weekly) are asserted against the knowledge and the label.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_mappers.facts import (
    Concept,
    DiagnosisFact,
    MedicationFact,
    ObservationFact,
    PatientFact,
)
from fhir_mappers.medication import map_medication
from hooks.rules.candidates import MDSI_INDICATION, TRD_INDICATION
from hooks.rules.contraindications import CAUTION_SOURCES, SOURCES
from hooks.rules.findings import Assessment, Contraindication, Screen
from hooks.rules.order_safety import IssueSeverity, OrderCheck, check_order, route_of
from tests.factories import NOW, draft_order
from tests.hooks.rules.facts import (
    KNOWLEDGE,
    LIMITS,
    bp,
    coded,
    dx,
    loinc,
    mdd,
    obs,
    order,
    person,
    record,
    snomed,
    text,
    weight,
)

SPRAVATO = "esketamine 28 MG Nasal Spray (SPRAVATO)"
KETAMINE = "ketamine 50 MG/ML Injectable Solution"
IV = snomed("47625008", "Intravenous route")
IM = snomed("78421000", "Intramuscular route")
SC = snomed("34206005", "Subcutaneous route")
NASAL = snomed("46713006", "Nasal route")
HL7_IM = coded("IM", "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration")

DEVICE = LIMITS.esketamine_device_mg.value
FIRST = LIMITS.esketamine_first_dose_mg.value
LOW = LIMITS.esketamine_min_session_mg.value
TOP = LIMITS.esketamine_max_session_mg.value
INDUCTION_WEEKS = LIMITS.esketamine_induction_weeks.value
INDUCTION = LIMITS.esketamine_induction_sessions_per_week.value
MAINTENANCE = LIMITS.esketamine_maintenance_sessions_per_week.value
ELDERLY = int(LIMITS.elderly_age_years.value)
STANDARD = LIMITS.ketamine_iv_mg_per_kg.value
TOLERANCE = LIMITS.ketamine_dose_tolerance.value
IV_CEILING = LIMITS.ketamine_iv_max_mg_per_kg.value
INJECTED_CEILING = LIMITS.ketamine_sc_im_max_mg_per_kg.value
INFUSION = LIMITS.ketamine_min_infusion_minutes.value
WEIGHT_DAYS = LIMITS.order_weight_recent_days.value
SYSTOLIC = LIMITS.bp_systolic_limit.value
DIASTOLIC = LIMITS.bp_diastolic_limit.value
CRITICAL_SYSTOLIC = LIMITS.order_bp_critical_systolic.value
CRITICAL_DIASTOLIC = LIMITS.order_bp_critical_diastolic.value
BP_DAYS = LIMITS.order_bp_recent_days.value
COMEDICATION_DAYS = LIMITS.comedication_recent_days.value
KG = 80.0


def esketamine(
    mg: float | None = FIRST, *, per_week: float | None = INDUCTION, unit: str = "mg", **kw: object
) -> MedicationFact:
    """A draft esketamine order: ``mg`` per session (or devices with ``unit="unit"``)."""
    return order(
        SPRAVATO,
        weeks_ago=0,
        mg=mg,
        per_day=per_week / 7 if per_week is not None else None,
        unit=unit,
        status="draft",
        supply_days=None,
        **kw,  # type: ignore[arg-type]
    )


def ketamine(
    mg: float | None,
    *,
    route: Concept = IV,
    per_kg: bool = False,
    minutes: float | None = INFUSION,
    product: str = KETAMINE,
    dosage_text: str | None = None,
) -> MedicationFact:
    return order(
        product,
        weeks_ago=0,
        mg=mg,
        per_day=None,
        status="draft",
        supply_days=None,
        route=route,
        per_kg=per_kg,
        infusion_minutes=minutes,
        dosage_text=dosage_text,
    )


def previous_esketamine(weeks_ago: float, status: str = "completed") -> MedicationFact:
    """An esketamine session (history) ``weeks_ago``."""
    return order(
        SPRAVATO,
        weeks_ago=weeks_ago,
        mg=FIRST,
        per_day=INDUCTION / 7,
        status=status,
        supply_days=1,
    )


def assessment(
    *,
    indication: str | None = TRD_INDICATION,
    findings: Sequence[Contraindication] = (),
    cautions: Sequence[Contraindication] = (),
    screens: Sequence[Screen] = (),
) -> Assessment:
    """An assessment with only what ``check_order`` reads (findings, cautions, screens and the
    label indication): a TRD patient with nothing against by default."""
    return Assessment(
        failed_adequate_trials=2,
        trials=(),
        candidate_reasons=("treatment-resistant-depression",),
        contraindications=tuple(findings),
        data_gaps=(),
        recommendation="refer-for-evaluation",
        ruleset_version=KNOWLEDGE.ruleset_version,
        screens=tuple(screens),
        cautions=tuple(cautions),
        esketamine_indication=indication,
    )


def check(
    fact: MedicationFact,
    *items: DiagnosisFact | MedicationFact | ObservationFact,
    drug: str = "esketamine",
    judged: Assessment | None = None,
    patient: PatientFact | None = None,
    defects: tuple[str, ...] = (),
    normal_bp: bool = True,
    recent_weight: bool = True,
) -> OrderCheck:
    """Check an order for an adult with a normal recent blood pressure and body weight."""
    extra: list[ObservationFact] = []
    if normal_bp:
        extra.append(bp(118, 76, days_ago=2))
    if recent_weight:
        extra.append(weight(KG, days_ago=5))
    facts = record(mdd(), *items, *extra, patient=patient)
    return check_order(
        fact,
        drug,
        defects,
        facts=facts,
        assessment=judged or assessment(),
        now=NOW,
        knowledge=KNOWLEDGE,
    )


def issues(result: OrderCheck) -> set[tuple[str, str]]:
    return {(i.severity, i.short) for i in result.issues}


def has(result: OrderCheck, severity: IssueSeverity, short: str) -> bool:
    return any(i.severity == severity and short in i.short for i in result.issues)


# --- esketamine: the label's numbers -------------------------------------------------------------


def test_check_order_esketamine_label_values_are_the_documented_ones() -> None:
    """Verify that the knowledge holds the SPRAVATO label's dosing: 28 mg devices, 56 or 84 mg
    sessions, 56 mg on day 1 of TRD, at most twice weekly in weeks 1-4 then weekly (clinical
    review M4)."""
    assert (DEVICE, LOW, FIRST, TOP) == (28, 56, 56, 84)
    assert (INDUCTION_WEEKS, INDUCTION, MAINTENANCE) == (4, 2, 1)


@pytest.mark.parametrize(
    ("fact", "expected"),
    [
        (esketamine(LOW), set()),
        (esketamine(TOP), set()),
        (esketamine(LOW / DEVICE, unit="unit"), set()),
        (esketamine(TOP / DEVICE, unit="unit"), set()),
        (esketamine(DEVICE), {("warning", f"dose {DEVICE:g} mg is not a label dose")}),
        (esketamine(TOP + DEVICE), {("critical", f"dose {TOP + DEVICE:g} mg exceeds {TOP:g} mg")}),
        (
            esketamine(TOP / DEVICE + 1, unit="unit"),
            {("critical", f"dose {TOP + DEVICE:g} mg exceeds {TOP:g} mg")},
        ),
        (esketamine(None), {("warning", "dose not stated")}),
        (esketamine(1, per_kg=True), {("warning", "dose not stated")}),
        (esketamine(5, unit="ml"), {("warning", "dose not stated")}),
    ],
    ids=[
        "lowest-label-dose",
        "highest-label-dose",
        "devices-lowest",
        "devices-highest",
        "28-mg-ex-us-start",
        "above-the-maximum",
        "devices-above-the-maximum",
        "no-dose",
        "per-kg-dose",
        "millilitres",
    ],
)
def test_check_order_esketamine_session_dose_in_mg_or_devices(
    fact: MedicationFact, expected: set[tuple[str, str]]
) -> None:
    """Verify that an esketamine session of 56 or 84 mg (in mg or 28 mg devices) passes, another
    dose is a warning, more than 84 mg critical, and a dose not in mg or devices a warning."""
    result = check(fact, previous_esketamine(1))
    assert issues(result) == expected


def test_check_order_esketamine_dose_in_sprays_is_two_sprays_per_device() -> None:
    """Verify that 4 sprays of SPRAVATO (two 28 mg devices, one spray per nostril each) is read
    as 56 mg, not 112 mg: no dose issue (SPRAVATO PI: each device delivers two sprays containing
    a total of 28 mg)."""
    resource = draft_order(SPRAVATO, dose=4, unit="{spray}", per_week=INDUCTION)
    fact, _ = map_medication(resource, {})
    assert not any("dose" in short for _, short in issues(check(fact, previous_esketamine(1))))


@pytest.mark.parametrize(
    ("fact", "critical"),
    [
        (esketamine(TOP, per_week=7), None),
        (esketamine(LOW, per_week=14), f"{2 * LOW:g} mg a day"),
        (esketamine(3, unit="unit", per_week=14), f"{6 * DEVICE:g} mg a day"),
    ],
    ids=["84-once-daily", "56-twice-daily", "3-devices-twice-daily"],
)
def test_check_order_esketamine_daily_maximum(fact: MedicationFact, critical: str | None) -> None:
    """Verify that sessions adding up to more than 84 mg in a day are critical."""
    result = check(fact, previous_esketamine(1))
    daily = {short for severity, short in issues(result) if short.endswith("mg a day")}
    assert daily == ({critical} if critical else set())
    if critical:
        assert has(result, "critical", critical)


@pytest.mark.parametrize(
    ("per_week", "critical"),
    [(MAINTENANCE, False), (INDUCTION, False), (INDUCTION + 1, True), (7, True)],
    ids=["weekly", "twice-weekly", "three-times-weekly", "daily"],
)
def test_check_order_esketamine_sessions_per_week_in_induction(
    per_week: float, critical: bool
) -> None:
    """Verify that more sessions a week than the induction schedule allows are critical."""
    result = check(esketamine(LOW, per_week=per_week), previous_esketamine(1))
    assert has(result, "critical", "sessions a week") is critical


@pytest.mark.parametrize(
    ("started_weeks_ago", "per_week", "indication", "warned"),
    [
        (INDUCTION_WEEKS - 1, INDUCTION, TRD_INDICATION, False),
        (INDUCTION_WEEKS + 2, INDUCTION, TRD_INDICATION, True),
        (INDUCTION_WEEKS + 2, MAINTENANCE, TRD_INDICATION, False),
        (INDUCTION_WEEKS + 2, INDUCTION, MDSI_INDICATION, False),
    ],
    ids=[
        "inside-induction",
        "twice-weekly-after-induction",
        "weekly-after-induction",
        "mdsi-schedule",
    ],
)
def test_check_order_esketamine_induction_schedule_after_week_4(
    started_weeks_ago: float, per_week: float, indication: str, warned: bool
) -> None:
    """Verify that a TRD patient past the induction weeks ordered more often than the maintenance
    schedule gets a warning (not in induction, not for the MDSI schedule)."""
    result = check(
        esketamine(LOW, per_week=per_week),
        previous_esketamine(started_weeks_ago),
        previous_esketamine(1),
        judged=assessment(indication=indication),
    )
    assert has(result, "warning", "induction schedule after week 4") is warned


def test_check_order_esketamine_restart_after_years_is_not_week_100() -> None:
    """Verify that a twice-weekly order two years after an esketamine course ended is not judged
    as "week 104 of esketamine" past the induction weeks."""
    result = check(esketamine(LOW, per_week=INDUCTION), previous_esketamine(104))
    assert not has(result, "warning", "induction schedule after week 4")


@pytest.mark.parametrize(
    ("history", "mg", "first_dose", "warned"),
    [
        ((), FIRST, True, False),
        ((), TOP, True, True),
        ((previous_esketamine(1),), TOP, False, False),
        ((previous_esketamine(1, status="entered-in-error"),), TOP, True, True),
        ((previous_esketamine(1, status="not-taken"),), TOP, True, True),
    ],
    ids=[
        "first-dose-56",
        "first-dose-84",
        "after-a-56-start",
        "erroneous-history",
        "history-not-taken",
    ],
)
def test_check_order_esketamine_first_dose_is_56_mg(
    history: tuple[MedicationFact, ...], mg: float, first_dose: bool, warned: bool
) -> None:
    """Verify that with no earlier esketamine (records that were never given do not count) a
    session above the 56 mg day-1 dose is a warning (SPRAVATO PI: 84 mg only after a 56 mg
    start)."""
    assert FIRST == 56
    result = check(esketamine(mg), *history)
    assert result.first_dose is first_dose
    assert has(result, "warning", "first dose") is warned


@pytest.mark.parametrize(
    "planned",
    [
        pytest.param(
            order(
                SPRAVATO,
                weeks_ago=1,
                mg=FIRST,
                status="intended",
                supply_days=None,
                resource_type="MedicationStatement",
            ),
            id="intended-statement",
        ),
        pytest.param(
            order(SPRAVATO, weeks_ago=1, mg=FIRST, status="active", intent="proposal"),
            id="proposal",
        ),
    ],
)
def test_check_order_esketamine_plan_is_not_an_earlier_dose(planned: MedicationFact) -> None:
    """Verify that a record saying esketamine is only planned (a MedicationStatement "intended",
    a MedicationRequest "proposal": never taken, medications.exposures skips both) does not make
    an 84 mg order a second dose: the first-dose warning stays."""
    result = check(esketamine(TOP), planned)
    assert result.first_dose is True
    assert has(result, "warning", "first dose")


@pytest.mark.parametrize(
    ("judged", "expected"),
    [
        (assessment(indication=TRD_INDICATION), set()),
        (assessment(indication=MDSI_INDICATION), set()),
        (assessment(indication=None), {("warning", "no documented label indication")}),
        (
            assessment(
                indication=None,
                cautions=[
                    Contraindication(
                        "bipolar-disorder",
                        ("Condition/b",),
                        CAUTION_SOURCES["bipolar-disorder"],
                        "F31.72",
                        "caution",
                    )
                ],
            ),
            {
                ("warning", "bipolar disorder"),
                ("info", "bipolar disorder (history of mania or hypomania)"),
            },
        ),
    ],
    ids=["trd", "mdsi", "no-indication", "bipolar"],
)
def test_check_order_esketamine_label_indication(
    judged: Assessment, expected: set[tuple[str, str]]
) -> None:
    """Verify that an esketamine order without a documented TRD or MDSI indication gets a warning,
    and in bipolar disorder a bipolar warning instead (clinical review M4, M2)."""
    result = check(esketamine(), previous_esketamine(1), judged=judged)
    assert issues(result) == expected


def test_check_order_esketamine_indication_names_what_could_not_be_read() -> None:
    """Verify that the missing-indication warning names the TRD screen's unread sources."""
    trd = Screen(
        "treatment-resistant-depression",
        "candidate-reason",
        "incomplete",
        why=("medications: query answered HTTP 503",),
    )
    result = check(esketamine(), judged=assessment(indication=None, screens=[trd]))
    (warning,) = [i for i in result.issues if i.short == "no documented label indication"]
    assert "HTTP 503" in warning.text


@pytest.mark.parametrize(
    ("years", "noted"),
    [(ELDERLY - 1, False), (ELDERLY, True), (ELDERLY + 10, True)],
    ids=["under-elderly-age", "at-elderly-age", "older"],
)
def test_check_order_esketamine_age_65_and_over_is_a_note(years: int, noted: bool) -> None:
    """Verify that a patient aged elderly_age_years or more gets an informational note."""
    birth = NOW.date().replace(year=NOW.year - years)
    result = check(esketamine(), previous_esketamine(1), patient=person(birth))
    assert has(result, "info", f"age {years}") is noted


# --- ketamine: route, dose per kg, infusion ------------------------------------------------------


@pytest.mark.parametrize(
    ("fact", "route"),
    [
        (ketamine(40, route=IV), "intravenous"),
        (ketamine(40, route=IM), "intramuscular"),
        (ketamine(40, route=HL7_IM), "intramuscular"),
        (ketamine(40, route=SC), "subcutaneous"),
        (ketamine(40, route=NASAL), "nasal"),
        (ketamine(40, route=text("IV")), "intravenous"),
        (ketamine(40, route=text("subcut")), "subcutaneous"),
        (ketamine(40, route=Concept(), product="ketamine nasal spray"), "nasal"),
        (ketamine(40, route=Concept(), dosage_text="IV infusion over 40 minutes"), "intravenous"),
        (ketamine(40, route=Concept()), "unknown"),
    ],
    ids=[
        "snomed-iv",
        "snomed-im",
        "hl7-im",
        "snomed-sc",
        "snomed-nasal",
        "route-text-iv",
        "route-text-subcut",
        "nasal-product",
        "infusion-in-dosage-text",
        "not-stated",
    ],
)
def test_route_of_coded_or_written_route(fact: MedicationFact, route: str) -> None:
    """Verify that the route is read from the coded route, its text, and the product and dosage
    texts, and is unknown when nothing states it."""
    assert route_of(fact, KNOWLEDGE) == route


@pytest.mark.parametrize(
    ("dosage_text", "route"),
    [("35 mg IM once", "intramuscular"), ("0.5 mg/kg subcutaneous", "subcutaneous")],
    ids=["im", "subcutaneous"],
)
def test_route_of_injected_route_in_dosage_text(dosage_text: str, route: str) -> None:
    """Verify that an intramuscular or subcutaneous route written only in the dosage text is read,
    as an intravenous one written there is."""
    fact = ketamine(40, route=Concept(), dosage_text=dosage_text)
    assert route_of(fact, KNOWLEDGE) == route


@pytest.mark.parametrize(
    ("fact", "expected"),
    [
        (ketamine(STANDARD * KG), set()),
        (ketamine(STANDARD * (1 + TOLERANCE) * KG * 0.99), set()),
        (
            ketamine(STANDARD * (1 + TOLERANCE) * KG * 1.02),
            {
                (
                    "warning",
                    f"dose {STANDARD * (1 + TOLERANCE) * 1.02:.2f} mg/kg "
                    f"is above {STANDARD:g} mg/kg",
                )
            },
        ),
        (
            ketamine(IV_CEILING * KG),
            {("warning", f"dose {IV_CEILING:.2f} mg/kg is above {STANDARD:g} mg/kg")},
        ),
        (
            ketamine((IV_CEILING + 1) * KG),
            {("critical", f"dose {IV_CEILING + 1:.2f} mg/kg is above {IV_CEILING:g} mg/kg")},
        ),
        (ketamine((STANDARD + INJECTED_CEILING) / 2 * KG, route=IM), set()),
        (
            ketamine((INJECTED_CEILING + 0.1) * KG, route=IM, minutes=5),
            {
                (
                    "warning",
                    f"dose {INJECTED_CEILING + 0.1:.2f} mg/kg is above {INJECTED_CEILING:g} mg/kg",
                )
            },
        ),
        (ketamine(STANDARD * KG, route=SC, minutes=None), set()),
        (ketamine(STANDARD, per_kg=True), set()),
        (
            ketamine(IV_CEILING + 1, per_kg=True),
            {("critical", f"dose {IV_CEILING + 1:.2f} mg/kg is above {IV_CEILING:g} mg/kg")},
        ),
        (ketamine(None), {("warning", "dose not stated")}),
        (
            ketamine(40, route=NASAL),
            {("warning", "intranasal racemic ketamine")},
        ),
    ],
    ids=[
        "standard-dose",
        "inside-rounding-tolerance",
        "beyond-rounding-tolerance",
        "at-iv-ceiling",
        "above-iv-ceiling",
        "im-between-standard-and-ceiling",
        "im-above-its-ceiling-warning-only",
        "sc-standard",
        "per-kg-standard",
        "per-kg-above-ceiling",
        "no-dose",
        "nasal-racemic",
    ],
)
def test_check_order_ketamine_dose_per_kg_against_route_limits(
    fact: MedicationFact, expected: set[tuple[str, str]]
) -> None:
    """Verify that IV ketamine above the standard mg/kg (beyond the rounding tolerance) is a
    warning and above the IV ceiling critical; IM/SC ketamine is judged only against its own
    ceiling, with a warning; a nasal order is flagged as not the labelled product (clinical
    review S9)."""
    result = check(fact, drug="ketamine", judged=assessment())
    assert issues(result) == expected


@pytest.mark.parametrize(
    ("mg_per_kg", "severity"),
    [((STANDARD + INJECTED_CEILING) / 2, "warning"), (IV_CEILING + 0.5, "critical")],
    ids=["above-iv-standard", "above-iv-ceiling"],
)
def test_check_order_ketamine_unknown_route_is_judged_as_iv(
    mg_per_kg: float, severity: str
) -> None:
    """Verify that a ketamine order with no route is judged by the IV limits (a dose an IM order
    may have is flagged; above the IV ceiling it is critical, saying the route was not stated)."""
    result = check(ketamine(mg_per_kg * KG, route=Concept()), drug="ketamine")
    (issue,) = result.issues
    assert issue.severity == severity
    if severity == "critical":
        assert "judged as IV" in issue.text


@pytest.mark.parametrize(
    ("observation", "flagged"),
    [
        (weight(KG / 0.45359237, days_ago=5, unit="[lb_av]"), False),
        (weight(KG / 2, days_ago=5), True),
        (weight(KG / 2, days_ago=WEIGHT_DAYS + 1), None),
        (None, None),
    ],
    ids=["pounds", "lighter-patient", "weight-too-old", "no-weight"],
)
def test_check_order_ketamine_dose_per_kg_from_mg_and_recent_weight(
    observation: ObservationFact | None, flagged: bool | None
) -> None:
    """Verify that an mg dose is divided by the latest weight within order_weight_recent_days (in
    kg, pounds converted), citing it; without one a warning says the dose per kg cannot be
    checked."""
    items = (observation,) if observation is not None else ()
    result = check(ketamine(STANDARD * KG), *items, drug="ketamine", recent_weight=False)
    if flagged is None:
        assert issues(result) == {("warning", "no recent body weight")}
    elif flagged:
        (issue,) = result.issues
        assert observation is not None and issue.evidence == (observation.ref,)
    else:
        assert result.issues == []


@pytest.mark.parametrize(
    ("route", "minutes", "warned"),
    [
        (IV, INFUSION - 1, True),
        (IV, INFUSION, False),
        (IV, None, False),
        (Concept(), INFUSION / 2, True),
        (IM, 1, False),
    ],
    ids=["short-infusion", "standard-infusion", "not-stated", "unknown-route", "im-injection"],
)
def test_check_order_ketamine_infusion_shorter_than_40_minutes(
    route: Concept, minutes: float | None, warned: bool
) -> None:
    """Verify that an IV (or unstated-route) infusion shorter than ketamine_min_infusion_minutes
    is a warning, and an IM injection is not judged as an infusion."""
    result = check(ketamine(STANDARD * KG, route=route, minutes=minutes), drug="ketamine")
    assert has(result, "warning", "-minute infusion") is warned


# --- blood pressure ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("readings", "severity"),
    [
        ([(SYSTOLIC, DIASTOLIC, 0)], None),
        ([(SYSTOLIC + 1, DIASTOLIC, 0)], "warning"),
        ([(SYSTOLIC, DIASTOLIC + 1, 0)], "warning"),
        ([(CRITICAL_SYSTOLIC - 1, CRITICAL_DIASTOLIC - 1, 0)], "warning"),
        ([(CRITICAL_SYSTOLIC, DIASTOLIC, 0)], "critical"),
        ([(SYSTOLIC, CRITICAL_DIASTOLIC, 0)], "critical"),
        ([(186, 114, 0), (118, 76, 20), (116, 74, 25)], "critical"),
        ([(CRITICAL_SYSTOLIC + 20, CRITICAL_DIASTOLIC + 10, 5), (118, 76, 0)], None),
        ([(None, CRITICAL_DIASTOLIC + 5, 0)], "critical"),
    ],
    ids=[
        "at-the-label-guide",
        "systolic-above-guide",
        "diastolic-above-guide",
        "below-critical",
        "systolic-critical",
        "diastolic-critical",
        "high-today-not-averaged-away",
        "latest-normal-after-a-high-one",
        "diastolic-only",
    ],
)
def test_check_order_latest_blood_pressure_decides_not_the_mean(
    readings: list[tuple[float | None, float, float]], severity: str | None
) -> None:
    """Verify that the latest reading within order_bp_recent_days decides: above the label's
    140/90 guide a warning, at or above 180/110 critical, whatever older readings say (clinical
    review M5, C1)."""
    observations = [bp(s, d, days_ago=days) for s, d, days in readings]
    result = check(esketamine(), previous_esketamine(1), *observations, normal_bp=False)
    flagged = [i for i in result.issues if i.short.startswith("blood pressure")]
    assert [i.severity for i in flagged] == ([severity] if severity else [])
    latest = min(zip(readings, observations, strict=True), key=lambda p: p[0][2])[1]
    assert all(i.evidence == (latest.ref,) for i in flagged)


def test_check_order_latest_blood_pressure_from_separate_observations() -> None:
    """Verify that a diastolic of 115 recorded as its own Observation beside a systolic of 130
    (same time, after normal readings) is judged: critical."""
    readings = [
        bp(120, 70, days_ago=20),
        bp(120, 70, days_ago=10),
        obs(loinc("8462-4"), CRITICAL_DIASTOLIC + 5, unit="mm[Hg]"),
        obs(loinc("8480-6"), 130, unit="mm[Hg]"),
    ]
    result = check(esketamine(), previous_esketamine(1), *readings, normal_bp=False)
    assert has(result, "critical", "blood pressure")


@pytest.mark.parametrize(
    "readings",
    [[], [(118, 76, BP_DAYS + 1)]],
    ids=["no-reading", "reading-older-than-window"],
)
def test_check_order_no_recent_blood_pressure_is_a_warning(
    readings: list[tuple[float, float, float]],
) -> None:
    """Verify that no reading within order_bp_recent_days is a warning to measure it."""
    observations = [bp(s, d, days_ago=days) for s, d, days in readings]
    result = check(esketamine(), previous_esketamine(1), *observations, normal_bp=False)
    assert issues(result) == {("warning", "no recent blood pressure")}


def test_check_order_hypertensive_encephalopathy_history_is_a_warning() -> None:
    """Verify that a history of hypertensive encephalopathy (an assessment caution) is a warning
    citing it, not a mere note (clinical review M5, C2)."""
    caution = Contraindication(
        "hypertensive-encephalopathy-history",
        ("Condition/enc",),
        CAUTION_SOURCES["hypertensive-encephalopathy-history"],
        "I67.4",
        "caution",
    )
    result = check(esketamine(), previous_esketamine(1), judged=assessment(cautions=[caution]))
    assert [(i.severity, i.short, i.evidence) for i in result.issues] == [
        ("warning", "history of hypertensive encephalopathy", ("Condition/enc",))
    ]


# --- co-medications ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "warning"),
    [
        (order("lorazepam", weeks_ago=2, mg=1, per_day=3, status="active"), "CNS"),
        (order("oxycodone", weeks_ago=2, mg=10, per_day=4, status="active"), "CNS"),
        (order("gabapentin", weeks_ago=8, mg=300, supply_days=None, status="active"), "CNS"),
        (
            order(
                "lorazepam",
                weeks_ago=20,
                mg=1,
                status="stopped",
                end_weeks_ago=(COMEDICATION_DAYS - 5) / 7,
            ),
            "CNS",
        ),
        (
            order(
                "lorazepam",
                weeks_ago=20,
                mg=1,
                status="stopped",
                end_weeks_ago=(COMEDICATION_DAYS + 5) / 7,
            ),
            None,
        ),
        (order("lorazepam", weeks_ago=1, mg=1, status="completed"), "CNS"),
        (  # its 30-day supply ran out more than the window ago
            order("lorazepam", weeks_ago=(COMEDICATION_DAYS + 35) / 7, mg=1, status="completed"),
            None,
        ),
        (order("lorazepam", weeks_ago=2, mg=1, status="entered-in-error"), None),
        (order("lorazepam", weeks_ago=2, mg=1, status="not-taken"), None),
        (order("amphetamine", weeks_ago=2, mg=20, status="active"), "BP"),
        (order("phenelzine", weeks_ago=2, mg=15, per_day=3, status="active"), "BP"),
        (order("linezolid", weeks_ago=1, mg=600, per_day=2, status="active"), "BP"),
        (order("sertraline", weeks_ago=2, mg=100, status="active"), None),
        (dx("F10.20"), "CNS"),
        (dx("F10.20", status="resolved"), None),
        (dx("F10.21"), None),
    ],
    ids=[
        "benzodiazepine",
        "opioid",
        "gabapentinoid",
        "stopped-within-window",
        "stopped-before-window",
        "completed-recently",
        "completed-long-ago",
        "entered-in-error",
        "not-taken",
        "psychostimulant",
        "maoi-antidepressant",
        "maoi-other",
        "ordinary-antidepressant",
        "active-alcohol-use-disorder",
        "resolved-alcohol-use-disorder",
        "alcohol-use-disorder-in-remission",
    ],
)
def test_check_order_co_medications_call_for_monitoring(
    item: MedicationFact | DiagnosisFact, warning: str | None
) -> None:
    """Verify that a current CNS depressant (or active alcohol use disorder) asks for sedation and
    respiratory monitoring, and a psychostimulant or MAO inhibitor for close blood-pressure
    monitoring, each citing its record (clinical review M7)."""
    result = check(esketamine(), previous_esketamine(1), item)
    cns = [i for i in result.issues if i.short.startswith("with CNS depressants")]
    pressure = [i for i in result.issues if "psychostimulants or MAO" in i.text]
    assert (bool(cns), bool(pressure)) == (warning == "CNS", warning == "BP")
    for issue in cns + pressure:
        assert issue.severity == "warning" and issue.evidence == (item.ref,)
    if cns:
        assert "respiratory depression" in cns[0].text and "pulse oximetry" in cns[0].text


def test_check_order_co_medication_completed_order_still_supplied() -> None:
    """Verify that lorazepam from a completed order authored six weeks ago with a 90-day supply
    (still taken, as medications.exposures reads it) is a current CNS depressant."""
    lorazepam = order("lorazepam", weeks_ago=6, mg=1, per_day=3, supply_days=90)
    result = check(esketamine(), previous_esketamine(1), lorazepam)
    assert has(result, "warning", "with CNS depressants")


# --- findings, defects, severity -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("judged", "expected"),
    [
        (
            assessment(
                findings=[
                    Contraindication(
                        "aneurysmal-vascular-disease-or-avm",
                        ("Condition/a",),
                        SOURCES["aneurysmal-vascular-disease-or-avm"],
                        "I67.1",
                        "contraindication",
                    )
                ]
            ),
            ("critical", "contraindicated (aneurysmal vascular disease or AVM)", ("Condition/a",)),
        ),
        (
            assessment(
                findings=[
                    Contraindication(
                        "psychosis-history",
                        ("Condition/p",),
                        SOURCES["psychosis-history"],
                        "F20.9",
                        "warning",
                    )
                ]
            ),
            ("critical", "label warning (history of psychosis)", ("Condition/p",)),
        ),
        (
            assessment(
                cautions=[
                    Contraindication(
                        "hepatic-impairment",
                        ("Condition/h",),
                        CAUTION_SOURCES["hepatic-impairment"],
                        "K74.60",
                        "caution",
                    )
                ]
            ),
            ("info", "possible hepatic impairment", ()),
        ),
        (
            assessment(
                screens=[
                    Screen(
                        "ketamine-hypersensitivity",
                        "contraindication",
                        "incomplete",
                        why=("allergies: query answered HTTP 503",),
                    )
                ]
            ),
            ("warning", "contraindication screen incomplete (1 not checked)", ()),
        ),
    ],
    ids=["label-contraindication", "label-warning", "caution", "incomplete-screen"],
)
def test_check_order_assessment_findings_keep_their_weight(
    judged: Assessment, expected: tuple[str, str, tuple[str, ...]]
) -> None:
    """Verify that a label contraindication is critical "contraindicated", a label warning
    critical "label warning" (clinical review S8), a caution an informational note, and an
    incomplete screen a warning."""
    result = check(esketamine(), previous_esketamine(1), judged=judged)
    assert [(i.severity, i.short, i.evidence) for i in result.issues] == [expected]


def test_check_order_defects_are_a_warning() -> None:
    """Verify that an order whose elements could not all be read gets a warning naming them."""
    result = check(esketamine(), previous_esketamine(1), defects=("dosage", "route"))
    (issue,) = result.issues
    assert issue.severity == "warning" and "dosage, route" in issue.text


@pytest.mark.parametrize(
    ("severities", "worst"),
    [
        ((), None),
        (("info",), "info"),
        (("info", "warning"), "warning"),
        (("warning", "critical", "info"), "critical"),
    ],
    ids=["none", "info", "warning", "critical"],
)
def test_order_check_worst_is_the_most_severe_issue(
    severities: tuple[IssueSeverity, ...], worst: IssueSeverity | None
) -> None:
    """Verify that an order check's worst severity orders critical > warning > info."""
    result = OrderCheck("esketamine", "nasal")
    for severity in severities:
        result.add(severity, severity, severity)
    assert result.worst == worst


def test_check_order_clean_esketamine_order_has_no_issue() -> None:
    """Verify that a 56 mg twice-weekly first order for a TRD patient with nothing against it has
    no issue at all."""
    result = check(esketamine())
    assert (result.issues, result.worst, result.route, result.first_dose) == (
        [],
        None,
        "nasal",
        True,
    )


# --- properties ----------------------------------------------------------------------------------

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ANY_FLOAT = st.floats(allow_nan=False, allow_infinity=False)
RANK = {"critical": 2, "warning": 1, "info": 0}


@PROPERTY
@given(
    drug=st.sampled_from(("esketamine", "ketamine")),
    dose=st.none() | ANY_FLOAT,
    per_day=st.none() | ANY_FLOAT,
    unit=st.sampled_from(("mg", "unit", "ml", "puff")),
    per_kg=st.booleans(),
    route=st.sampled_from((IV, IM, SC, NASAL, Concept())),
    minutes=st.none() | ANY_FLOAT,
    body=st.none() | ANY_FLOAT,
    body_unit=st.sampled_from(("kg", "[lb_av]", "g", "stone")),
    pressure=st.none() | st.tuples(st.none() | ANY_FLOAT, st.none() | ANY_FLOAT),
    history_weeks=st.none() | st.floats(min_value=-1, max_value=500),
    indication=st.sampled_from((TRD_INDICATION, MDSI_INDICATION, None)),
)
def test_check_order_any_dose_frequency_or_weight_never_raises(
    drug: str,
    dose: float | None,
    per_day: float | None,
    unit: str,
    per_kg: bool,
    route: Concept,
    minutes: float | None,
    body: float | None,
    body_unit: str,
    pressure: tuple[float | None, float | None] | None,
    history_weeks: float | None,
    indication: str | None,
) -> None:
    """Verify that check_order answers for any dose, frequency, infusion time, weight and blood
    pressure (zero, negative, huge), with well-formed issues and a consistent worst severity."""
    fact = order(
        SPRAVATO if drug == "esketamine" else KETAMINE,
        weeks_ago=0,
        mg=dose,
        per_day=per_day,
        unit=unit,
        per_kg=per_kg,
        route=route,
        infusion_minutes=minutes,
        status="draft",
        supply_days=None,
    )
    items: list[MedicationFact | ObservationFact] = []
    if body is not None:
        items.append(weight(body, days_ago=3, unit=body_unit))
    if pressure is not None:
        items.append(bp(*pressure, days_ago=1))
    if history_weeks is not None:
        items.append(previous_esketamine(history_weeks))
    facts = record(*items)
    result = check_order(
        fact,
        drug,
        (),
        facts=facts,
        assessment=assessment(indication=indication),
        now=NOW,
        knowledge=KNOWLEDGE,
    )
    for issue in result.issues:
        assert issue.severity in RANK and issue.short and issue.text
    expected = max((i.severity for i in result.issues), key=RANK.__getitem__, default=None)
    assert result.worst == expected
