"""The whole clinical assessment of one patient: trials, reasons, contraindications, verdict. Pure.

``assess(facts, now=..., knowledge=...)`` is the only entry point the hooks use. It reads no clock
and does no I/O: ``now`` and the knowledge come in as arguments.

Recommendation (fixed values):

- ``refer-for-evaluation``: at least one candidate reason, no contraindication, and every
  contraindication screen done;
- ``not-recommended``: a candidate reason and at least one contraindication (a contraindication
  found is found, whatever else could not be read);
- ``insufficient-data``: a candidate reason but a contraindication screen that could not be
  done (a source it reads failed or was cut short), or a treatment-resistance count that could not
  be verified; or no candidate reason yet, but the data cannot rule one out: failed trials plus
  trials of unknown dose reach the TRD threshold, a medication source that could not be read
  leaves a patient one failure short of it, TRD-level failures exist with no depressive-disorder
  diagnosis, or bipolar disorder has no recorded phase;
- ``not-a-candidate``: everything else, including deceased patients.

A check that could not be done is never reported as a check that passed (see ``screens``).
"""

from __future__ import annotations

from datetime import datetime

from fhir_mappers.dates import shift
from fhir_mappers.facts import Facts
from hooks.rules.conditions import describe, is_active, matching
from hooks.rules.contraindications import screen
from hooks.rules.findings import (
    SCREEN_LABELS,
    Assessment,
    CandidateReason,
    Contraindication,
    ContraindicationId,
    Recommendation,
    Screen,
    Trial,
)
from hooks.rules.knowledge import Knowledge
from hooks.rules.medications import exposures
from hooks.rules.questionnaires import Score, phq9_scores
from hooks.rules.screens import (
    CONTRAINDICATION_NEEDS,
    REASON_NEEDS,
    screen_status,
    undone_by,
)
from hooks.rules.trials import build_trials, count_failed


def _latest_within(scores: tuple[Score, ...], now: datetime, days: float) -> Score | None:
    since = shift(now, days=-days) or now
    recent = [s for s in scores if s.effective >= since]
    return recent[-1] if recent else None


def assess(
    facts: Facts,
    *,
    now: datetime,
    knowledge: Knowledge,
) -> Assessment:
    gaps: list[str] = list(facts.gaps)
    phq = phq9_scores(facts.observations, knowledge)
    phq9, item9 = phq.totals, phq.item9
    deceased_at = facts.patient.deceased_at if facts.patient is not None else None
    exposure_list, exposure_gaps = exposures(
        facts.medications, now=now, knowledge=knowledge, deceased_at=deceased_at
    )
    gaps += exposure_gaps
    trials, trial_gaps = build_trials(
        exposure_list, phq9, now=now, knowledge=knowledge
    )
    gaps += trial_gaps
    failed = count_failed(trials)
    contraindications, ci_gaps = screen(facts, now=now, knowledge=knowledge)
    for missing in ci_gaps.values():
        gaps += missing

    active = [d for d in facts.diagnoses if is_active(d, now)]
    depression = matching(active, knowledge.code_list("depressive-disorder"))
    bipolar_depressed = matching(active, knowledge.code_list("bipolar-depressed"))
    bipolar_unphased = matching(active, knowledge.code_list("bipolar-unspecified-phase"))
    reasons: dict[CandidateReason, tuple[str, ...]] = {}
    threshold = int(knowledge.thresholds.trd_min_failed_trials.value)
    if depression or bipolar_depressed:
        if failed >= threshold:
            reasons["treatment-resistant-depression"] = tuple(
                dict.fromkeys(ref for t in trials if t.outcome == "failed" for ref in t.evidence)
            )
        si = matching(active, knowledge.code_list("suicidal-ideation"))
        latest_item9 = _latest_within(item9, now, knowledge.thresholds.phq9_item9_recent_days.value)
        si_refs = [d.ref for d in si]
        if latest_item9 is not None and (latest_item9.value or 0) > 0:
            si_refs.append(latest_item9.ref)
        if si_refs:
            reasons["suicidal-ideation"] = tuple(si_refs)
        severe = matching(active, knowledge.code_list("severe-depression"))
        latest_phq9 = _latest_within(phq9, now, knowledge.thresholds.phq9_recent_days.value)
        severe_refs = [d.ref for d in severe]
        if (
            latest_phq9 is not None
            and (latest_phq9.value or 0) >= knowledge.thresholds.phq9_severe_score.value
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
    screens = _screens(facts, contraindications, ci_gaps, reasons, knowledge)
    gaps += _undone_gaps(screens)
    trd_undone = bool(_reason_screen(screens, "treatment-resistant-depression").why)
    recommendation = _recommend(
        trials=trials,
        failed=failed,
        threshold=threshold,
        reasons=set(reasons),
        has_contraindication=bool(contraindications),
        incomplete=any(s.kind == "contraindication" and s.status == "incomplete" for s in screens),
        trd_undone=trd_undone,
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
        screens=screens,
    )


def _screens(
    facts: Facts,
    contraindications: list[Contraindication],
    ci_gaps: dict[ContraindicationId, list[str]],
    reasons: dict[CandidateReason, tuple[str, ...]],
    knowledge: Knowledge,
) -> tuple[Screen, ...]:
    """Every contraindication and candidate-reason screen with its status and why."""
    found = {c.id: c for c in contraindications}
    out: list[Screen] = []
    for ci_id, needs in CONTRAINDICATION_NEEDS.items():
        undone = undone_by(needs, facts.unreadable, knowledge)
        missing = tuple(ci_gaps.get(ci_id, ()))
        hit = found.get(ci_id)
        status = screen_status(hit is not None, undone, missing)
        why = undone if status in ("incomplete", "found") else missing
        out.append(Screen(ci_id, "contraindication", status, hit.evidence if hit else (), why))
    for reason, reason_needs in REASON_NEEDS.items():
        undone = undone_by(reason_needs, facts.unreadable, knowledge)
        evidence = reasons.get(reason)
        status = screen_status(evidence is not None, undone, ())
        out.append(Screen(reason, "candidate-reason", status, evidence or (), undone))
    return tuple(out)


def _reason_screen(screens: tuple[Screen, ...], reason: CandidateReason) -> Screen:
    return next(s for s in screens if s.id == reason)


def _undone_gaps(screens: tuple[Screen, ...]) -> list[str]:
    """One gap per unreadable source, naming the screens it left undone."""
    undone: dict[str, list[str]] = {}
    for item in screens:
        if item.status == "incomplete" or (item.kind == "candidate-reason" and item.why):
            for why in item.why:
                undone.setdefault(why, []).append(SCREEN_LABELS[item.id])
    return [f"{why}; not checked: {', '.join(names)}" for why, names in undone.items()]


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
    reasons: set[CandidateReason],
    has_contraindication: bool,
    incomplete: bool,
    trd_undone: bool,
    depression: bool,
    unphased_bipolar: bool,
    deceased: bool,
) -> Recommendation:
    if deceased:
        return "not-a-candidate"
    if reasons and has_contraindication:
        return "not-recommended"
    if reasons and (incomplete or unphased_bipolar):
        return "insufficient-data"
    if reasons == {"treatment-resistant-depression"} and trd_undone:
        return "insufficient-data"  # the count rests on sources that could not all be read
    if reasons:
        return "refer-for-evaluation"
    unknown = len(
        {t.ingredient for t in trials if t.outcome == "unknown-dose"}
        - {t.ingredient for t in trials if t.outcome == "failed"}
    )
    if depression and failed < threshold <= failed + unknown:
        return "insufficient-data"
    if depression and trd_undone and failed >= threshold - 1:
        return "insufficient-data"  # one more failure may sit in what could not be read
    if not depression and failed >= threshold:
        return "insufficient-data"
    return "not-a-candidate"
