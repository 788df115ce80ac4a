"""Checks of one ketamine or esketamine order at signing. Pure.

Each check returns ``Issue``s with a severity (``critical``, ``warning``, ``info``) and words for
the card; the hook turns them into one card per order. Limits come from ``policy.json``:

- **Contraindications and label warnings** of the assessment (critical: "contraindicated" only
  for the label's contraindications, "label warning" otherwise), screens that could not be done
  (warning), cautions (info).
- **Esketamine** (SPRAVATO PI, dosing): 56 or 84 mg per session (28 mg per device), at most
  84 mg a day; at most twice weekly in weeks 1-4 and once weekly from week 5; day 1 of TRD is
  56 mg; a label indication (TRD, or MDD with acute suicidal ideation with an oral
  antidepressant) documented; not in bipolar disorder (clinical review M4).
- **IV ketamine** (Sanacora 2017; Fava 2018): the dose per kg against 0.5 mg/kg (warning above,
  with the rounding tolerance) and a hard ceiling of 1.0 mg/kg (critical); an infusion shorter
  than 40 minutes (warning). IM or SC ketamine is judged against 0.9 mg/kg (KADS), never by the
  IV rule; a route that cannot be told is judged as IV (clinical review S9).
- **Blood pressure** (M5): the latest reading within ``order_bp_recent_days`` decides, not a
  mean: above 140/90 a warning (the label's guide for weighing a delay), at or above 180/110
  critical (a project threshold); none recent: a warning. A history of hypertensive
  encephalopathy asks for more intensive monitoring.
- **Co-medications** (M7): CNS depressants (and active alcohol use disorder): monitor for
  sedation and respiratory depression (pulse oximetry); psychostimulants and MAO inhibitors:
  monitor blood pressure closely.
- **Age 65 and over** (S10): an informational note (non-US labels start at 28 mg).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from fhir_mappers.dates import shift
from fhir_mappers.facts import Facts, MedicationFact
from hooks.rules.conditions import concept_matches, is_active, matching
from hooks.rules.contraindications import age, blood_pressures
from hooks.rules.findings import SCREEN_LABELS, Assessment
from hooks.rules.knowledge import Knowledge
from hooks.rules.medications import SKIPPED_STATUSES, exposures, resolve_ingredients
from hooks.rules.observations import is_result
from hooks.rules.plausibility import in_unit

IssueSeverity = Literal["critical", "warning", "info"]
Route = Literal["intravenous", "intramuscular", "subcutaneous", "nasal", "unknown"]
DEVICE_UNITS = frozenset({"unit"})
"""Dose units that count devices (a SPRAVATO device is 28 mg)."""


@dataclass(frozen=True)
class Issue:
    severity: IssueSeverity
    short: str
    """Fits in a card summary after "<Drug> order: "."""
    text: str
    evidence: tuple[str, ...] = ()


@dataclass
class OrderCheck:
    drug: str
    route: Route
    issues: list[Issue] = field(default_factory=list)
    first_dose: bool = False
    """No earlier administration of this drug in the record."""

    def add(self, severity: IssueSeverity, short: str, text: str, *evidence: str) -> None:
        self.issues.append(Issue(severity, short, text, tuple(evidence)))

    @property
    def worst(self) -> IssueSeverity | None:
        for severity in ("critical", "warning", "info"):
            if any(i.severity == severity for i in self.issues):
                return severity
        return None


def route_of(fact: MedicationFact, knowledge: Knowledge) -> Route:
    """The route: the coded route (or its text) first, then the product and dosage texts, by
    the route code lists (a nasal spray is nasal). "unknown" when nothing states it."""
    routes: tuple[tuple[str, Route], ...] = (
        ("route-nasal", "nasal"),
        ("route-intramuscular", "intramuscular"),
        ("route-subcutaneous", "subcutaneous"),
        ("route-intravenous", "intravenous"),
    )
    for name, route in routes:
        if concept_matches(knowledge.code_list(name), fact.route):
            return route
    text = " ".join([*fact.product.texts(), fact.dosage_text or ""]).lower()
    for name, route in routes:
        if knowledge.code_list(name).matches_text(text):
            return route
    return "nasal" if "spray" in text else "unknown"


def weight_kg(facts: Facts, now: datetime, knowledge: Knowledge) -> tuple[float | None, str | None]:
    """The latest body weight within ``order_weight_recent_days``, in kg, and its reference."""
    since = shift(now, days=-knowledge.thresholds.order_weight_recent_days.value) or now
    weights = knowledge.code_list("body-weight")
    found = [
        o
        for o in facts.observations
        if o.value is not None
        and o.effective is not None
        and o.effective >= since
        and is_result(o)
        and concept_matches(weights, o.concept)
    ]
    if not found:
        return None, None
    latest = max(found, key=lambda o: o.effective or now)
    assert latest.value is not None
    return in_unit(latest.value, latest.unit, "kg"), latest.ref


def _findings(check: OrderCheck, assessment: Assessment) -> None:
    for finding in assessment.contraindications:
        if finding.severity == "contraindication":
            check.add(
                "critical",
                f"contraindicated ({finding.label})",
                f"contraindicated: {finding.label}: {finding.detail}. Source: {finding.source}",
                *finding.evidence,
            )
        else:
            check.add(
                "critical",
                f"label warning ({finding.label})",
                f"label warning, specialist judgement needed: {finding.label}: "
                f"{finding.detail}. Source: {finding.source}",
                *finding.evidence,
            )
    undone = assessment.incomplete
    if undone:
        names = ", ".join(SCREEN_LABELS[s.id] for s in undone)
        why = "; ".join(dict.fromkeys(w for s in undone for w in s.why))
        check.add(
            "warning",
            f"contraindication screen incomplete ({len(undone)} not checked)",
            f"could not check {names}: {why}",
        )
    for caution in assessment.cautions:
        if caution.id != "hypertensive-encephalopathy-history":  # a warning of its own below
            check.add("info", caution.label, f"to weigh: {caution.label}: {caution.detail}")


def _blood_pressure(check: OrderCheck, facts: Facts, now: datetime, knowledge: Knowledge) -> None:
    limits = knowledge.thresholds
    since = shift(now, days=-limits.order_bp_recent_days.value) or now
    readings = [r for r in blood_pressures(facts.observations, knowledge) if r.at >= since]
    after = limits.post_dose_bp_minutes.value
    if not readings:
        check.add(
            "warning",
            "no recent blood pressure",
            f"no blood pressure recorded in the last {limits.order_bp_recent_days.value:g} "
            f"days: measure it before dosing and about {after:g} minutes after",
        )
        return
    # The latest value of each: a panel gives both at once; separate systolic and diastolic
    # Observations are each judged by their latest reading.
    latest_systolic = next((r for r in reversed(readings) if r.systolic is not None), None)
    latest_diastolic = next((r for r in reversed(readings) if r.diastolic is not None), None)
    systolic = latest_systolic.systolic if latest_systolic else None
    diastolic = latest_diastolic.diastolic if latest_diastolic else None
    shown = f"{_mmhg(systolic)}/{_mmhg(diastolic)} mmHg"
    taken = max(r.at for r in (latest_systolic, latest_diastolic) if r is not None)
    evidence = tuple(
        dict.fromkeys(r.ref for r in (latest_systolic, latest_diastolic) if r is not None)
    )
    high_systolic = systolic or 0.0
    high_diastolic = diastolic or 0.0
    if (
        high_systolic >= limits.order_bp_critical_systolic.value
        or high_diastolic >= limits.order_bp_critical_diastolic.value
    ):
        check.add(
            "critical",
            f"blood pressure {shown}",
            f"latest blood pressure {shown} ({taken.date().isoformat()}) is in the "
            f"hypertensive urgency range (>= {limits.order_bp_critical_systolic.value:g}/"
            f"{limits.order_bp_critical_diastolic.value:g}, a project threshold): do not dose "
            "until it is treated",
            *evidence,
        )
    elif (
        high_systolic > limits.bp_systolic_limit.value
        or high_diastolic > limits.bp_diastolic_limit.value
    ):
        check.add(
            "warning",
            f"blood pressure {shown}",
            f"latest blood pressure {shown} ({taken.date().isoformat()}) is above the "
            f"label's guide of {limits.bp_systolic_limit.value:g}/"
            f"{limits.bp_diastolic_limit.value:g}: weigh delaying the dose; reassess about "
            f"{after:g} minutes after dosing",
            *evidence,
        )


def _mmhg(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"


def _comedications(check: OrderCheck, facts: Facts, now: datetime, knowledge: Knowledge) -> None:
    """Co-medications taken now or within ``comedication_recent_days``, read as the trials read
    exposure (supply, patient reports, stopped orders; ``medications.exposures``)."""
    since = shift(now, days=-knowledge.thresholds.comedication_recent_days.value) or now
    found: dict[str, dict[str, str]] = {"cns-depressant": {}, "blood-pressure": {}}
    taken, _ = exposures(facts.medications, now=now, knowledge=knowledge)
    for exposure in taken:
        if not exposure.ongoing and exposure.end < since:
            continue
        interaction = knowledge.ingredients[exposure.ingredient].interaction
        if interaction == "cns-depressant":
            found["cns-depressant"].setdefault(exposure.ingredient, exposure.ref)
        elif interaction in ("psychostimulant", "maoi"):
            found["blood-pressure"].setdefault(exposure.ingredient, exposure.ref)
    alcohol = [
        d
        for d in matching(facts.diagnoses, knowledge.code_list("alcohol-use-disorder-active"))
        if is_active(d, now)
    ]
    for diagnosis in alcohol:
        found["cns-depressant"].setdefault("alcohol use disorder", diagnosis.ref)
    if found["cns-depressant"]:
        names = ", ".join(found["cns-depressant"])
        check.add(
            "warning",
            f"with CNS depressants ({names})"[:60],
            f"taken with CNS depressants ({names}): closely monitor for sedation and "
            "respiratory depression, with pulse oximetry",
            *found["cns-depressant"].values(),
        )
    if found["blood-pressure"]:
        names = ", ".join(found["blood-pressure"])
        check.add(
            "warning",
            f"with {names}"[:60],
            f"taken with psychostimulants or MAO inhibitors ({names}): closely monitor blood "
            "pressure",
            *found["blood-pressure"].values(),
        )


def _session_mg(fact: MedicationFact, knowledge: Knowledge) -> float | None:
    if fact.dose_value is None or fact.dose_per_kg:
        return None
    if fact.dose_unit == "mg":
        return fact.dose_value
    device = knowledge.thresholds.esketamine_device_mg.value
    if fact.dose_unit in DEVICE_UNITS:
        return fact.dose_value * device
    if fact.dose_unit == "spray":
        return fact.dose_value * device / knowledge.thresholds.esketamine_sprays_per_device.value
    return None


NOT_GIVEN_INTENTS = frozenset({"proposal", "plan", "option"})
"""Intents of orders that are not doses (a suggestion, a plan of care, an option)."""


def _current_course(facts: Facts, drug: str, now: datetime, knowledge: Knowledge) -> list[datetime]:
    """Start times of the records of ``drug`` in its current course, oldest first: records before
    a pause longer than ``on_treatment_days`` belong to an earlier course (a restart is a new
    induction), and none is current when the last one is that old."""
    pause = knowledge.thresholds.on_treatment_days.delta
    times = sorted(
        m.start
        for m in facts.medications
        if m.start is not None
        and m.start < now
        and m.status not in SKIPPED_STATUSES
        and m.intent not in NOT_GIVEN_INTENTS
        and any(i.name == drug for i in resolve_ingredients(m.product, m.ingredients, knowledge))
    )
    if not times or now - times[-1] > pause:
        return []
    first = len(times) - 1
    while first > 0 and times[first] - times[first - 1] <= pause:
        first -= 1
    return times[first:]


def _sessions_per_week(fact: MedicationFact) -> float | None:
    return None if fact.doses_per_day is None else fact.doses_per_day * 7


def _esketamine(
    check: OrderCheck,
    fact: MedicationFact,
    facts: Facts,
    assessment: Assessment,
    now: datetime,
    knowledge: Knowledge,
) -> None:
    limits = knowledge.thresholds
    session = _session_mg(fact, knowledge)
    top = limits.esketamine_max_session_mg.value
    low = limits.esketamine_min_session_mg.value
    first = limits.esketamine_first_dose_mg.value
    if session is None:
        check.add(
            "warning", "dose not stated", "the esketamine dose is not stated in mg or devices"
        )
    elif session > top:
        check.add(
            "critical",
            f"dose {session:g} mg exceeds {top:g} mg",
            f"{session:g} mg per session exceeds the label's maximum of {top:g} mg per day",
        )
    elif session not in (low, top):
        check.add(
            "warning",
            f"dose {session:g} mg is not a label dose",
            f"{session:g} mg is not a US-label adult dose ({low:g} or {top:g} mg per session; "
            f"{limits.esketamine_device_mg.value:g} mg starts are ex-US, for patients aged "
            f"{limits.elderly_age_years.value:g} and over)",
        )
    per_day = fact.doses_per_day
    if session is not None and per_day is not None and session * per_day > top:
        check.add(
            "critical",
            f"{session * per_day:g} mg a day",
            f"{session:g} mg {per_day:g} times a day exceeds the label's maximum of {top:g} mg "
            "per day",
        )
    history = _current_course(facts, "esketamine", now, knowledge)
    check.first_dose = not history
    weekly = _sessions_per_week(fact)
    induction = limits.esketamine_induction_sessions_per_week.value
    maintenance = limits.esketamine_maintenance_sessions_per_week.value
    if weekly is not None and weekly > induction:
        check.add(
            "critical",
            f"{weekly:g} sessions a week",
            f"{weekly:g} sessions a week: the label's schedule is at most {induction:g} a week "
            f"(weeks 1-{limits.esketamine_induction_weeks.value:g})",
        )
    if not history and session is not None and session > first:
        check.add(
            "warning",
            f"first dose {session:g} mg",
            f"no earlier esketamine in the record: day 1 of treatment-resistant depression is "
            f"{first:g} mg; {top:g} mg only after a {first:g} mg start",
        )
    if history:
        weeks_on = (now - history[0]).days / 7
        if (
            weeks_on > limits.esketamine_induction_weeks.value
            and weekly is not None
            and weekly > maintenance
            and assessment.esketamine_indication is not None
            and "suicidal" not in assessment.esketamine_indication
        ):
            check.add(
                "warning",
                "induction schedule after week 4",
                f"week {weeks_on:.0f} of esketamine at {weekly:g} sessions a week: from week "
                f"{limits.esketamine_induction_weeks.value + 1:g} the label's schedule is at "
                f"most {maintenance:g} a week",
            )
    if any(c.id == "bipolar-disorder" for c in assessment.cautions):
        check.add(
            "warning",
            "bipolar disorder",
            "bipolar disorder is recorded: esketamine is not approved or studied in bipolar "
            "depression",
        )
    elif assessment.esketamine_indication is None:
        trd = assessment.screen("treatment-resistant-depression")
        unread = f"; {'; '.join(trd.why)}" if trd is not None and trd.why else ""
        check.add(
            "warning",
            "no documented label indication",
            "no treatment-resistant depression (two different antidepressants failed at "
            "adequate dose and duration) and no depression with acute suicidal ideation is "
            f"documented{unread}",
        )
    years = age(facts, now)
    if years is not None and years >= limits.elderly_age_years.value:
        check.add(
            "info",
            f"age {years}",
            f"age {years}: non-US labels start at {limits.esketamine_device_mg.value:g} mg at "
            f"{limits.elderly_age_years.value:g} and over (the US label starts at "
            f"{limits.esketamine_first_dose_mg.value:g} mg)",
        )


def _ketamine(
    check: OrderCheck, fact: MedicationFact, facts: Facts, now: datetime, knowledge: Knowledge
) -> None:
    limits = knowledge.thresholds
    if check.route == "nasal":
        check.add(
            "warning",
            "intranasal racemic ketamine",
            "racemic ketamine by the nasal route is not the labelled esketamine product: check "
            "the order",
        )
        return
    injected = check.route in ("intramuscular", "subcutaneous")
    ceiling = (
        limits.ketamine_sc_im_max_mg_per_kg.value
        if injected
        else limits.ketamine_iv_max_mg_per_kg.value
    )
    standard = limits.ketamine_iv_mg_per_kg.value
    weight, weight_ref = weight_kg(facts, now, knowledge)
    if fact.dose_value is None or fact.dose_unit != "mg":
        check.add("warning", "dose not stated", "the ketamine dose is not stated in mg or mg/kg")
        return
    mg_per_kg: float | None = fact.dose_value if fact.dose_per_kg else None
    if mg_per_kg is None and weight:
        mg_per_kg = fact.dose_value / weight
    if mg_per_kg is None:
        check.add(
            "warning",
            "no recent body weight",
            f"no body weight in the last {limits.order_weight_recent_days.value:g} days: the "
            f"dose per kg (standard {standard:g} mg/kg) cannot be checked",
        )
        return
    evidence = (weight_ref,) if weight_ref else ()
    route = check.route if check.route != "unknown" else "route not stated, judged as IV"
    if mg_per_kg > ceiling:
        check.add(
            "critical" if not injected else "warning",
            f"dose {mg_per_kg:.2f} mg/kg is above {ceiling:g} mg/kg",
            f"{mg_per_kg:.2f} mg/kg ({route}) is above {ceiling:g} mg/kg, the highest dose "
            "studied for depression by this route (Fava 2018 IV; KADS 2023 SC)",
            *evidence,
        )
    elif not injected and mg_per_kg > standard * (1 + limits.ketamine_dose_tolerance.value):
        check.add(
            "warning",
            f"dose {mg_per_kg:.2f} mg/kg is above {standard:g} mg/kg",
            f"{mg_per_kg:.2f} mg/kg exceeds the standard {standard:g} mg/kg by more than the "
            f"{limits.ketamine_dose_tolerance.value:.0%} rounding tolerance (Sanacora 2017); "
            f"doses up to {limits.ketamine_iv_max_mg_per_kg.value:g} mg/kg were studied",
            *evidence,
        )
    minutes = limits.ketamine_min_infusion_minutes.value
    if not injected and fact.infusion_minutes is not None and fact.infusion_minutes < minutes:
        check.add(
            "warning",
            f"{fact.infusion_minutes:g}-minute infusion",
            f"an infusion over {fact.infusion_minutes:g} minutes is shorter than the {minutes:g} "
            "minutes used in the depression studies (Sanacora 2017)",
        )


def check_order(
    fact: MedicationFact,
    drug: str,
    defects: tuple[str, ...],
    *,
    facts: Facts,
    assessment: Assessment,
    now: datetime,
    knowledge: Knowledge,
) -> OrderCheck:
    """Every issue of one ketamine or esketamine order."""
    check = OrderCheck(drug, route_of(fact, knowledge))
    _findings(check, assessment)
    _blood_pressure(check, facts, now, knowledge)
    encephalopathy = [
        d for d in assessment.cautions if d.id == "hypertensive-encephalopathy-history"
    ]
    if encephalopathy:
        check.add(
            "warning",
            "history of hypertensive encephalopathy",
            "history of hypertensive encephalopathy: more intensive blood pressure and symptom "
            "monitoring is warranted (label warning)",
            *encephalopathy[0].evidence,
        )
    if drug == "esketamine":
        _esketamine(check, fact, facts, assessment, now, knowledge)
    else:
        _ketamine(check, fact, facts, now, knowledge)
    _comedications(check, facts, now, knowledge)
    if defects:
        check.add(
            "warning",
            "order partly unreadable",
            f"the order's {', '.join(defects)} could not be read; check them",
        )
    return check
