"""What the evidence app draws, built from the same assessment the cards come from. Pure.

The SMART app (``service/smart_app.py``, ``service/app_static/``) never computes a clinical rule:
it draws what ``build`` returns. ``build`` takes the patient-view service's result (its assessment
and cards, computed by the hook code path) and the gathered resources, and adds only what a chart
needs:

- ``series``: PHQ-9 totals, PHQ-9 item 9 answers, blood pressure readings and body weights over
  the drawing window, each with its date and resource reference. They are read with the rules'
  own code lists and mappers, but without the rules' look-back windows (the rules read blood
  pressure over 90 days, the chart shows the whole episode);
- ``thresholds``: the blood-pressure limits and PHQ-9 severity bands, read from the knowledge
  files (``policy.json``), never written here;
- ``episode``: the current episode window (the assessment's, or the look-back the trial rules use);
- ``checklist``: one entry per contraindication id (the eleven of ``ContraindicationId``), from
  ``assessment["screens"]``: found (with evidence), not found, or not checkable (with why);
- ``treatment_gaps``: the periods between antidepressant courses with none running.

The answer never holds ``null`` or empty values: keys without a value are left out (``prune``).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Literal, get_args

from fhir_mappers.collect import map_resources
from fhir_mappers.dates import age_in_years, latest_possible_birth
from fhir_mappers.facts import Facts, ObservationFact
from hooks.base import HookInput, HookResult
from hooks.cards import response_json
from hooks.relevance import KnowledgeRelevance
from hooks.render import CI_TEXT, OUTCOME_TEXT, REASON_TEXT
from hooks.rules.conditions import concept_matches
from hooks.rules.contraindications import blood_pressures
from hooks.rules.findings import ContraindicationId
from hooks.rules.knowledge import Knowledge
from hooks.rules.observations import is_result
from hooks.rules.plausibility import in_unit

ScreenStatus = Literal["found", "not-found", "incomplete", "no-data"]

CONTRAINDICATION_IDS: tuple[ContraindicationId, ...] = get_args(ContraindicationId)
"""The eleven contraindication ids, in the order the checklist shows them."""

STATUS_TEXT: dict[ScreenStatus, str] = {
    "found": "found",
    "not-found": "not found",
    "incomplete": "not fully checkable",
    "no-data": "not checkable: no data",
}

RECOMMENDATION_TEXT = {
    "refer-for-evaluation": "Refer for ketamine/esketamine evaluation",
    "not-recommended": "Ketamine/esketamine not recommended",
    "insufficient-data": "Possible candidate: verify the data first",
    "not-a-candidate": "Not a candidate (no card)",
}

PHQ9_BANDS: tuple[tuple[str, str], ...] = (
    ("mild", "phq9_mild_score"),
    ("moderate", "phq9_moderate_score"),
    ("moderately severe", "phq9_moderately_severe_score"),
    ("severe", "phq9_severe_score"),
)
"""PHQ-9 severity bands and the knowledge thresholds that start them (Kroenke 2001)."""

PHQ9_MIN_SCORE = 0
PHQ9_MAX_SCORE = 27
"""The PHQ-9 total's range (nine items scored 0-3): a property of the instrument, not a rule."""


def build(hook_input: HookInput, result: HookResult) -> dict[str, Any]:
    """The evidence app's summary for one patient (see the module docstring)."""
    knowledge = hook_input.knowledge
    now = hook_input.now
    assessment = result.assessment.as_json()
    facts = _display_facts(hook_input)
    episode = episode_window(assessment, now=now, lookback_weeks=_lookback(hook_input))
    window = drawing_window(assessment, episode, knowledge)
    patient_id = hook_input.context.patientId
    answer: dict[str, Any] = {
        "patient": patient_summary(facts, patient_id, now),
        "assessment": assessment,
        "cards": response_json(result.cards)["cards"],
        "series": series(facts, knowledge, since=date.fromisoformat(window["start"])),
        "thresholds": thresholds(knowledge),
        "episode": episode,
        "window": window,
        "checklist": checklist(assessment),
        "treatment_gaps": treatment_gaps(assessment, today=now.date()),
        "labels": {
            "outcomes": dict(OUTCOME_TEXT),
            "reasons": dict(REASON_TEXT),
            "recommendations": dict(RECOMMENDATION_TEXT),
            "statuses": dict(STATUS_TEXT),
        },
        "ruleset_version": result.assessment.ruleset_version,
    }
    pruned: dict[str, Any] = prune(answer)
    return pruned


def _lookback(hook_input: HookInput) -> float:
    return hook_input.knowledge.thresholds.episode_lookback_weeks.value


def _display_facts(hook_input: HookInput) -> Facts:
    """The Patient and every Observation a rule's code list names, at any date."""
    resources = [
        r
        for found in hook_input.resources.values()
        for r in found
        if r.get("resourceType") in ("Patient", "Observation")
    ]
    return map_resources(
        resources,
        KnowledgeRelevance(hook_input.knowledge),  # no `now`: no look-back window
        patient_id=hook_input.context.patientId,
        medication_index={},
    )


def patient_summary(facts: Facts, patient_id: str, now: datetime) -> dict[str, Any]:
    """Id, gender and age (a partial birth date is read at its latest day, as the minor check
    reads it)."""
    out: dict[str, Any] = {"id": patient_id}
    patient = facts.patient
    if patient is None:
        return out
    if patient.birth_date is not None and patient.birth_precision is not None:
        birth = latest_possible_birth(patient.birth_date, patient.birth_precision)
        out["age"] = max(age_in_years(birth, now.date()), 0)
    if patient.gender:
        out["gender"] = patient.gender
    return out


def episode_window(
    assessment: dict[str, Any], *, now: datetime, lookback_weeks: float
) -> dict[str, Any]:
    """The current episode: the assessment's own (``assessment["episode"]``) when it has one,
    else the look-back the trial rules count trials in."""
    own = assessment.get("episode")
    if isinstance(own, dict) and isinstance(own.get("start"), str):
        return {"start": own["start"], "end": now.date().isoformat(), "basis": own.get("basis")}
    start = (now - timedelta(weeks=lookback_weeks)).date()
    return {
        "start": start.isoformat(),
        "end": now.date().isoformat(),
        "basis": (
            f"the last {lookback_weeks:g} weeks (episode_lookback_weeks): trials that ended "
            "earlier are not counted"
        ),
    }


def drawing_window(
    assessment: dict[str, Any], episode: dict[str, Any], knowledge: Knowledge
) -> dict[str, str]:
    """The time axis of every chart: from the episode start or the first trial, whichever is
    earlier, less the PHQ-9 baseline window (a trial's baseline PHQ-9 precedes it), to today."""
    starts = [date.fromisoformat(episode["start"])]
    starts += [date.fromisoformat(t["start"]) for t in assessment.get("trials", [])]
    baseline = knowledge.thresholds.phq9_baseline_window_days.delta
    return {"start": (min(starts) - baseline).isoformat(), "end": episode["end"]}


def _kept(obs: ObservationFact, since: date) -> bool:
    return obs.effective is not None and obs.effective.date() >= since and is_result(obs)


def series(facts: Facts, knowledge: Knowledge, *, since: date) -> dict[str, list[dict[str, Any]]]:
    """PHQ-9 totals, item 9 answers, blood pressures and weights from ``since`` on, oldest
    first, each with its date and reference."""

    def scored(list_name: str) -> list[ObservationFact]:
        code_list = knowledge.code_list(list_name)
        found = [
            o
            for o in facts.observations
            if _kept(o, since) and o.value is not None and concept_matches(code_list, o.concept)
        ]
        return sorted(found, key=lambda o: (o.effective, o.ref))

    def day(at: datetime | None) -> str:
        assert at is not None
        return at.date().isoformat()

    phq9 = [
        {"date": day(o.effective), "value": _number(o.value or 0), "ref": o.ref}
        for o in scored("phq9-total")
    ]
    item9 = [
        {
            "date": day(o.effective),
            "value": _number(o.value or 0),
            "ref": o.ref,
            "positive": (o.value or 0) > 0,
        }
        for o in scored("phq9-item9")
    ]
    bp = [
        {
            "date": day(r.at),
            "systolic": None if r.systolic is None else _number(r.systolic),
            "diastolic": None if r.diastolic is None else _number(r.diastolic),
            "ref": r.ref,
        }
        for r in blood_pressures(facts.observations, knowledge)
        if r.at.date() >= since
    ]
    weight = []
    for obs in scored("body-weight"):
        kg = None if obs.value is None else in_unit(obs.value, obs.unit, "kg")
        if kg is not None:
            weight.append({"date": day(obs.effective), "kg": round(kg, 1), "ref": obs.ref})
    return {"phq9": phq9, "phq9_item9": item9, "bp": bp, "weight": weight}


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def phq9_bands(knowledge: Knowledge) -> list[dict[str, Any]]:
    """Severity bands from the PHQ-9 thresholds of the knowledge (see ``PHQ9_BANDS``)."""
    cuts = [(label, getattr(knowledge.thresholds, name)) for label, name in PHQ9_BANDS]
    bands: list[dict[str, Any]] = [
        {"label": "minimal", "from": PHQ9_MIN_SCORE, "to": _number(cuts[0][1].value)}
    ]
    for index, (label, threshold) in enumerate(cuts):
        upper = cuts[index + 1][1].value if index + 1 < len(cuts) else PHQ9_MAX_SCORE
        bands.append(
            {
                "label": label,
                "from": _number(threshold.value),
                "to": _number(upper),
                "source": threshold.source,
            }
        )
    return bands


def thresholds(knowledge: Knowledge) -> dict[str, Any]:
    """The limits the charts draw, as the rules use them (``policy.json``)."""

    def value(name: str) -> float:
        return float(getattr(knowledge.thresholds, name).value)

    return {
        "bp_systolic": _number(value("bp_systolic_limit")),
        "bp_diastolic": _number(value("bp_diastolic_limit")),
        "bp_window_days": _number(value("bp_window_days")),
        "bp_readings_averaged": _number(value("bp_readings_averaged")),
        "phq9_severe": _number(value("phq9_severe_score")),
        "phq9_recent_days": _number(value("phq9_recent_days")),
        "phq9_item9_recent_days": _number(value("phq9_item9_recent_days")),
        "min_adequate_weeks": _number(value("min_adequate_weeks")),
        "phq9_range": [PHQ9_MIN_SCORE, PHQ9_MAX_SCORE],
        "phq9_bands": phq9_bands(knowledge),
    }


def label_of(ci_id: str) -> str:
    text = CI_TEXT.get(ci_id, ci_id)
    return text[:1].upper() + text[1:]


def checklist(assessment: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per contraindication id: found (with evidence), not found, or not checkable
    (with the gap that stopped it)."""
    screens = assessment.get("screens")
    return _from_screens(screens if isinstance(screens, list) else [])


def _from_screens(screens: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_id = {s.get("id"): s for s in screens if isinstance(s, dict)}
    items = []
    for ci_id in CONTRAINDICATION_IDS:
        screen = by_id.get(ci_id)
        if screen is None:
            items.append(
                {
                    "id": ci_id,
                    "label": label_of(ci_id),
                    "status": "no-data",
                    "gaps": ["the assessment did not report this check"],
                }
            )
            continue
        status = screen.get("status")
        why = [str(w) for w in screen.get("why") or []]
        item: dict[str, Any] = {
            "id": ci_id,
            "label": label_of(ci_id),
            "kind": screen.get("kind"),
            "status": status,
            "evidence": list(screen.get("evidence") or []),
            "gaps": why if status in ("incomplete", "no-data") else [],
        }
        items.append(item)
    return items


def treatment_gaps(assessment: dict[str, Any], *, today: date) -> list[dict[str, Any]]:
    """Periods with no antidepressant course running, between the first course and the last
    (an ongoing course runs to today)."""
    spans = sorted(
        (
            date.fromisoformat(t["start"]),
            date.fromisoformat(t["end"]) if t.get("end") else today,
        )
        for t in assessment.get("trials", [])
    )
    out: list[dict[str, Any]] = []
    if not spans:
        return out
    covered_to = spans[0][1]
    for start, end in spans[1:]:
        if start > covered_to + timedelta(days=1):
            days = (start - covered_to).days
            out.append(
                {
                    "start": covered_to.isoformat(),
                    "end": start.isoformat(),
                    "weeks": round(days / 7, 1),
                }
            )
        covered_to = max(covered_to, end)
    return out


def prune(value: Any) -> Any:
    """``value`` without ``None``, empty strings, lists or dicts (recursively)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            kept = prune(item)
            if not _empty(kept):
                out[key] = kept
        return out
    if isinstance(value, list | tuple):
        return [kept for kept in (prune(v) for v in value) if not _empty(kept)]
    return value


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict) and len(value) == 0)
