"""The whole clinical assessment of one patient: trials, reasons, contraindications, verdict. Pure.

``assess(facts, now=..., knowledge=...)`` is the entry point the hooks use (after
``plausibility.plausible``). It reads no clock and does no I/O.

Recommendation (about a referral for ketamine/esketamine evaluation; fixed values):

- ``refer-for-evaluation``: a referral reason (treatment-resistant depression, severe depression
  in a treatment-experienced patient, bipolar depression after a failed trial), no
  contraindication or label warning, and every contraindication screen done;
- ``not-recommended``: a referral reason and a contraindication or label warning (a finding is a
  finding, whatever else could not be read); cautions never make it;
- ``insufficient-data``: a referral reason but a contraindication screen that could not be done,
  or a treatment-resistance count that could not be verified; or no referral reason yet, but the
  data cannot rule one out: failed plus unknown-dose regimens reach the TRD threshold, a
  medication source that could not be read leaves a unipolar patient one failure short of it,
  TRD-level failures with no depressive-disorder diagnosis, TRD-level failures with both a
  unipolar and a bipolar-spectrum diagnosis (which holds decides the pathway), or bipolar
  disorder of unknown phase after a failed trial;
- ``not-a-candidate``: everything else, including deceased patients.

Suicidal ideation is a candidate reason but not a referral reason: it leads to its own card (a
same-day suicide-risk assessment), whatever the recommendation. A check that could not be done
is never reported as a check that passed (see ``screens``).
"""

from __future__ import annotations

from datetime import datetime

from fhir_mappers.facts import Facts
from hooks.rules.candidates import Candidacy, candidacy
from hooks.rules.contraindications import screen
from hooks.rules.episode import current_episode, in_episode
from hooks.rules.findings import (
    SCREEN_LABELS,
    Assessment,
    CandidateReason,
    Contraindication,
    ContraindicationId,
    InProgress,
    Recommendation,
    Screen,
    Trial,
)
from hooks.rules.in_progress import in_progress
from hooks.rules.knowledge import Knowledge
from hooks.rules.medications import exposures
from hooks.rules.questionnaires import phq9_scores
from hooks.rules.screens import (
    CONTRAINDICATION_NEEDS,
    IN_PROGRESS_NEEDS,
    REASON_NEEDS,
    screen_status,
    undone_by,
)
from hooks.rules.trials import build_trials, failed_regimens

REFERRAL_REASONS: frozenset[CandidateReason] = frozenset(
    {"treatment-resistant-depression", "severe-depression", "bipolar-depression"}
)

_REASON_ORDER: tuple[CandidateReason, ...] = (
    "treatment-resistant-depression",
    "suicidal-ideation",
    "severe-depression",
    "bipolar-depression",
)


def assess(facts: Facts, *, now: datetime, knowledge: Knowledge) -> Assessment:
    gaps: list[str] = list(facts.gaps)
    phq = phq9_scores(facts.observations, knowledge)
    deceased_at = facts.patient.deceased_at if facts.patient is not None else None
    exposure_list, exposure_gaps = exposures(
        facts.medications, now=now, knowledge=knowledge, deceased_at=deceased_at
    )
    gaps += exposure_gaps
    treatment = build_trials(exposure_list, phq.totals, now=now, knowledge=knowledge)
    gaps += treatment.gaps
    episode = current_episode(
        facts, now=now, knowledge=knowledge, totals=phq.totals, remissions=treatment.remissions
    )
    trials = in_episode(treatment.trials, episode)
    failed = failed_regimens(trials)
    contraindications, cautions, ci_gaps = screen(facts, now=now, knowledge=knowledge)
    for missing in ci_gaps.values():
        gaps += missing
    cand = candidacy(facts, now=now, knowledge=knowledge, failed=failed, phq=phq)
    threshold = int(knowledge.thresholds.trd_min_failed_trials.value)
    if not cand.unipolar and not cand.bipolar and len(failed) >= threshold:
        gaps.append(
            f"{len(failed)} failed adequate antidepressant trials but no active "
            "depressive-disorder diagnosis; confirm the diagnosis"
        )
    conflict = bool(cand.bipolar and cand.unipolar) and "bipolar-depression" not in cand.reasons
    if conflict and len(failed) >= threshold:
        gaps.append(
            "bipolar disorder is recorded alongside a unipolar depression diagnosis; confirm the "
            "diagnosis (the unipolar treatment-resistant depression pathway and esketamine's "
            "label do not apply in bipolar disorder)"
        )
    if cand.bipolar_unphased:
        gaps.append(
            "bipolar disorder without a recorded current episode; confirm the phase (mania must "
            "be excluded)"
        )
    deceased = facts.patient is not None and facts.patient.deceased
    if deceased:
        gaps.append("patient is recorded as deceased")
    progress = in_progress(facts, now=now, knowledge=knowledge)
    screens = _screens(facts, contraindications, ci_gaps, cand.reasons, progress, knowledge)
    gaps += _undone_gaps(screens)
    trd_undone = bool(_screen(screens, "treatment-resistant-depression").why)
    recommendation = _recommend(
        trials=trials,
        failed=len(failed),
        threshold=threshold,
        candidates=cand,
        has_contraindication=bool(contraindications),
        incomplete=any(s.kind == "contraindication" and s.status == "incomplete" for s in screens),
        trd_undone=trd_undone,
        deceased=deceased,
    )
    ordered = [r for r in _REASON_ORDER if r in cand.reasons]
    return Assessment(
        failed_adequate_trials=len(failed),
        trials=tuple(trials),
        candidate_reasons=tuple(ordered),
        contraindications=tuple(contraindications),
        data_gaps=tuple(dict.fromkeys(gaps)),
        recommendation=recommendation,
        ruleset_version=knowledge.ruleset_version,
        reasons_evidence={r: cand.reasons[r] for r in ordered},
        screens=screens,
        cautions=tuple(cautions),
        episode=episode,
        context=tuple(cand.context),
        esketamine_indication=cand.esketamine_indication,
        in_progress=progress,
    )


def _screens(
    facts: Facts,
    contraindications: list[Contraindication],
    ci_gaps: dict[ContraindicationId, list[str]],
    reasons: dict[CandidateReason, tuple[str, ...]],
    progress: tuple[InProgress, ...],
    knowledge: Knowledge,
) -> tuple[Screen, ...]:
    """Every contraindication, candidate-reason and in-progress screen with its status and
    why."""
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
    running = {p.id: p for p in progress}
    for progress_id, progress_needs in IN_PROGRESS_NEEDS.items():
        undone = undone_by(progress_needs, facts.unreadable, knowledge)
        now_running = running.get(progress_id)
        status = screen_status(now_running is not None, undone, ())
        shown = now_running.evidence if now_running else ()
        out.append(Screen(progress_id, "in-progress", status, shown, undone))
    return tuple(out)


def _screen(screens: tuple[Screen, ...], screen_id: str) -> Screen:
    return next(s for s in screens if s.id == screen_id)


def _undone_gaps(screens: tuple[Screen, ...]) -> list[str]:
    """One gap per unreadable source, naming the screens it left undone."""
    undone: dict[str, list[str]] = {}
    for item in screens:
        if item.status == "incomplete" or (item.kind == "candidate-reason" and item.why):
            for why in item.why:
                undone.setdefault(why, []).append(SCREEN_LABELS[item.id])
    return [f"{why}; not checked: {', '.join(names)}" for why, names in undone.items()]


def _recommend(
    *,
    trials: list[Trial],
    failed: int,
    threshold: int,
    candidates: Candidacy,
    has_contraindication: bool,
    incomplete: bool,
    trd_undone: bool,
    deceased: bool,
) -> Recommendation:
    if deceased:
        return "not-a-candidate"
    referral = set(candidates.reasons) & REFERRAL_REASONS
    unipolar = bool(candidates.unipolar) and not candidates.bipolar
    if referral and has_contraindication:
        return "not-recommended"
    if referral and incomplete:
        return "insufficient-data"
    if referral == {"treatment-resistant-depression"} and trd_undone:
        return "insufficient-data"  # the count rests on sources that could not all be read
    if referral:
        return "refer-for-evaluation"
    current = [t for t in trials if t.episode == "current"]
    failed_sets = {t.ingredients for t in current if t.outcome == "failed"}
    unknown = len({t.ingredients for t in current if t.outcome == "unknown-dose"} - failed_sets)
    if unipolar and failed < threshold <= failed + unknown:
        return "insufficient-data"
    if unipolar and trd_undone and failed >= threshold - 1:
        return "insufficient-data"  # one more failure may sit in what could not be read
    if not candidates.unipolar and not candidates.bipolar and failed >= threshold:
        return "insufficient-data"
    if candidates.bipolar_unphased and failed >= 1:
        return "insufficient-data"
    if candidates.bipolar and candidates.unipolar and failed >= threshold:
        return "insufficient-data"  # which diagnosis holds decides the pathway
    return "not-a-candidate"
