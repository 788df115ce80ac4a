"""The whole clinical assessment of one patient: trials, reasons, contraindications, verdict. Pure.

``assess(facts, now=..., knowledge=...)`` is the only entry point the hooks use. It reads no clock
and does no I/O: ``now`` and the knowledge come in as arguments.

Recommendation (fixed values):

- ``refer-for-evaluation``: at least one candidate reason and no contraindication;
- ``not-recommended``: a candidate reason and at least one contraindication;
- ``insufficient-data``: no candidate reason yet, but the data cannot rule one out: failed trials
  plus trials of unknown dose reach the TRD threshold, or TRD-level failures exist with no
  depressive-disorder diagnosis, or bipolar disorder has no recorded phase;
- ``not-a-candidate``: everything else, including deceased patients.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fhir_mappers.facts import Facts, ObservationFact
from hooks.rules.conditions import concept_matches, describe, is_active, matching
from hooks.rules.contraindications import screen
from hooks.rules.findings import Assessment, CandidateReason, Recommendation, Trial
from hooks.rules.knowledge import Knowledge
from hooks.rules.medications import exposures
from hooks.rules.trials import build_trials, count_failed


def _observations(facts: Facts, list_name: str, knowledge: Knowledge) -> list[ObservationFact]:
    code_list = knowledge.code_list(list_name)
    found = [
        o
        for o in facts.observations
        if o.value is not None
        and o.effective is not None
        and o.status not in ("entered-in-error", "cancelled")
        and concept_matches(code_list, o.concept)
    ]
    found.sort(key=lambda o: o.effective or datetime.min)
    return found


def _latest_within(
    observations: list[ObservationFact], now: datetime, days: float
) -> ObservationFact | None:
    recent = [o for o in observations if o.effective and o.effective >= now - timedelta(days=days)]
    return recent[-1] if recent else None


def assess(
    facts: Facts,
    *,
    now: datetime,
    knowledge: Knowledge,
    lookback_weeks: float | None = None,
) -> Assessment:
    gaps: list[str] = list(facts.gaps)
    phq9 = _observations(facts, "phq9-total", knowledge)
    item9 = _observations(facts, "phq9-item9", knowledge)
    deceased_at = facts.patient.deceased_at if facts.patient is not None else None
    exposure_list, exposure_gaps = exposures(
        facts.medications, now=now, knowledge=knowledge, deceased_at=deceased_at
    )
    gaps += exposure_gaps
    trials, trial_gaps = build_trials(
        exposure_list, phq9, now=now, knowledge=knowledge, lookback_weeks=lookback_weeks
    )
    gaps += trial_gaps
    failed = count_failed(trials)
    contraindications, ci_gaps = screen(facts, now=now, knowledge=knowledge)
    gaps += ci_gaps

    active = [d for d in facts.diagnoses if is_active(d, now)]
    depression = matching(active, knowledge.code_list("depressive-disorder"))
    bipolar_depressed = matching(active, knowledge.code_list("bipolar-depressed"))
    bipolar_unphased = matching(active, knowledge.code_list("bipolar-unspecified-phase"))
    reasons: dict[CandidateReason, tuple[str, ...]] = {}
    threshold = int(knowledge.threshold("trd_min_failed_trials"))
    if depression or bipolar_depressed:
        if failed >= threshold:
            reasons["treatment-resistant-depression"] = tuple(
                dict.fromkeys(ref for t in trials if t.outcome == "failed" for ref in t.evidence)
            )
        si = matching(active, knowledge.code_list("suicidal-ideation"))
        latest_item9 = _latest_within(item9, now, knowledge.threshold("phq9_item9_recent_days"))
        si_refs = [d.ref for d in si]
        if latest_item9 is not None and (latest_item9.value or 0) > 0:
            si_refs.append(latest_item9.ref)
        if si_refs:
            reasons["suicidal-ideation"] = tuple(si_refs)
        severe = matching(active, knowledge.code_list("severe-depression"))
        latest_phq9 = _latest_within(phq9, now, knowledge.threshold("phq9_recent_days"))
        severe_refs = [d.ref for d in severe]
        if latest_phq9 is not None and (latest_phq9.value or 0) >= knowledge.threshold(
            "phq9_severe_score"
        ):
            severe_refs.append(latest_phq9.ref)
        if severe_refs:
            reasons["severe-depression"] = tuple(severe_refs)
        if bipolar_depressed:
            reasons["bipolar-depression"] = tuple(d.ref for d in bipolar_depressed)
    elif failed >= threshold:
        gaps.append(
            f"{failed} failed adequate antidepressant trials but no active depressive-disorder "
            "diagnosis; confirm the diagnosis"
        )
    if bipolar_unphased and not bipolar_depressed:
        gaps.append(
            "bipolar disorder without a recorded current episode ("
            + "; ".join(describe(d) for d in bipolar_unphased)
            + "); confirm the phase (mania must be excluded)"
        )

    deceased = facts.patient is not None and facts.patient.deceased
    if deceased:
        gaps.append("patient is recorded as deceased")
    recommendation = _recommend(
        trials=trials,
        failed=failed,
        threshold=threshold,
        has_reason=bool(reasons),
        has_contraindication=bool(contraindications),
        depression=bool(depression or bipolar_depressed),
        unphased_bipolar=bool(bipolar_unphased and not bipolar_depressed),
        deceased=deceased,
    )
    ordered = [r for r in _REASON_ORDER if r in reasons]
    return Assessment(
        failed_adequate_trials=failed,
        trials=tuple(trials),
        candidate_reasons=tuple(ordered),
        contraindications=tuple(contraindications),
        data_gaps=tuple(dict.fromkeys(gaps)),
        recommendation=recommendation,
        ruleset_version=knowledge.ruleset_version,
        reasons_evidence={r: reasons[r] for r in ordered},
    )


_REASON_ORDER: tuple[CandidateReason, ...] = (
    "treatment-resistant-depression",
    "suicidal-ideation",
    "severe-depression",
    "bipolar-depression",
)


def _recommend(
    *,
    trials: list[Trial],
    failed: int,
    threshold: int,
    has_reason: bool,
    has_contraindication: bool,
    depression: bool,
    unphased_bipolar: bool,
    deceased: bool,
) -> Recommendation:
    if deceased:
        return "not-a-candidate"
    if has_reason and has_contraindication:
        return "not-recommended"
    if has_reason and unphased_bipolar:
        return "insufficient-data"
    if has_reason:
        return "refer-for-evaluation"
    unknown = len(
        {t.ingredient for t in trials if t.outcome == "unknown-dose"}
        - {t.ingredient for t in trials if t.outcome == "failed"}
    )
    if depression and failed < threshold <= failed + unknown:
        return "insufficient-data"
    if not depression and failed >= threshold:
        return "insufficient-data"
    return "not-a-candidate"
