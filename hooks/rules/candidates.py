"""Candidate reasons: which pathway to ketamine/esketamine the record supports. Pure.

The four candidate groups of the clinic stay, each with a defensible pathway (clinical review M1,
M2, S1; decisions in ``docs/clinical-rules.md``):

- **treatment-resistant depression** (the unipolar label pathway): an active unipolar depressive
  disorder, no bipolar-spectrum diagnosis at any time, and ``trd_min_failed_trials`` failed
  regimens in the current episode. Esketamine's label indication needs two *different*
  antidepressants among them.
- **suicidal ideation**: ideation (a code, or PHQ-9 item 9 above 0 as the latest answer) within
  ``si_recent_days``, or a suicide attempt or self-harm within ``self_harm_recent_days``
  (C-SSRS time frames); negated texts and refuted Conditions never count. It leads to a same-day
  suicide-risk assessment card; the esketamine indication for depressive symptoms with acute
  suicidal ideation or behavior (with an oral antidepressant) applies only in unipolar MDD and
  only when the ideation or behaviour is documented as a diagnosis (an item 9 answer alone is a
  screen that needs a structured assessment first: clinical review M1).
- **severe depression**: a reason only in a treatment-experienced patient (at least one failed
  regimen in the current episode) with recent evidence of severity (the latest PHQ-9 within
  ``phq9_recent_days`` at or above ``phq9_severe_score``, or a severe-depression code recorded in
  that window with no later PHQ-9 below it); otherwise shown as context.
- **bipolar depression**: a current depressive episode of bipolar disorder after at least one
  failed regimen (ketamine is third-line, off-label; esketamine is not approved or studied in
  bipolar depression); otherwise context.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from fhir_mappers.dates import shift
from fhir_mappers.facts import DiagnosisFact, Facts
from hooks.rules.conditions import describe, is_active, is_recorded, matching
from hooks.rules.findings import CandidateReason, Trial
from hooks.rules.knowledge import Knowledge
from hooks.rules.questionnaires import Phq9, Score

TRD_INDICATION = "treatment-resistant depression"
MDSI_INDICATION = (
    "depressive symptoms in major depressive disorder with acute suicidal ideation or behavior "
    "(with an oral antidepressant)"
)


@dataclass
class Candidacy:
    reasons: dict[CandidateReason, tuple[str, ...]] = field(default_factory=dict)
    context: list[str] = field(default_factory=list)
    unipolar: list[DiagnosisFact] = field(default_factory=list)
    bipolar: list[DiagnosisFact] = field(default_factory=list)
    bipolar_unphased: list[DiagnosisFact] = field(default_factory=list)
    esketamine_indication: str | None = None


def _recent(diagnosis: DiagnosisFact, since: datetime, now: datetime) -> bool:
    """Recorded within the window; an undated code counts while it is active."""
    if not is_recorded(diagnosis):
        return False
    if diagnosis.noted is None:
        return is_active(diagnosis, now)
    return diagnosis.noted >= since


def _latest(scores: tuple[Score, ...], since: datetime) -> Score | None:
    recent = [s for s in scores if s.effective >= since]
    return recent[-1] if recent else None


def _suicidality(
    facts: Facts, now: datetime, knowledge: Knowledge, item9: tuple[Score, ...]
) -> tuple[tuple[str, ...], bool]:
    """(evidence of recent suicidality, whether acute ideation or behaviour is *documented*:
    a diagnosis, not only a PHQ-9 item 9 answer, which does not tell passive thoughts of death
    from active ideation; Simon 2013)."""
    limits = knowledge.thresholds
    ideation_since = shift(now, days=-limits.si_recent_days.value) or now
    behaviour_since = shift(now, days=-limits.self_harm_recent_days.value) or now
    refs = [
        d.ref
        for d in matching(facts.diagnoses, knowledge.code_list("suicidal-ideation"))
        if _recent(d, ideation_since, now)
    ]
    refs += [
        d.ref
        for d in matching(facts.diagnoses, knowledge.code_list("suicide-attempt-or-self-harm"))
        if _recent(d, behaviour_since, now)
    ]
    documented = bool(refs)
    item9_since = shift(now, days=-limits.phq9_item9_recent_days.value) or now
    latest = _latest(item9, item9_since)
    if latest is not None and latest.value > 0:
        refs.append(latest.ref)
    return tuple(dict.fromkeys(refs)), documented


def _severity(
    facts: Facts, now: datetime, knowledge: Knowledge, totals: tuple[Score, ...]
) -> tuple[str, ...]:
    limits = knowledge.thresholds
    since = shift(now, days=-limits.phq9_recent_days.value) or now
    severe = limits.phq9_severe_score.value
    latest = _latest(totals, since)
    if latest is not None and latest.value >= severe:
        return (latest.ref,)
    refs = []
    for diagnosis in matching(facts.diagnoses, knowledge.code_list("severe-depression")):
        if not is_active(diagnosis, now) or diagnosis.noted is None or diagnosis.noted < since:
            continue
        noted = diagnosis.noted
        if any(s.effective > noted and s.value < severe for s in totals):
            continue  # a later PHQ-9 below the severe range supersedes the code
        refs.append(diagnosis.ref)
    return tuple(refs)


def candidacy(
    facts: Facts,
    *,
    now: datetime,
    knowledge: Knowledge,
    failed: list[Trial],
    phq: Phq9,
) -> Candidacy:
    out = Candidacy()
    out.bipolar = [
        d
        for d in matching(facts.diagnoses, knowledge.code_list("bipolar-spectrum"))
        if is_recorded(d)
    ]
    active = [d for d in facts.diagnoses if is_active(d, now)]
    out.unipolar = matching(active, knowledge.code_list("depressive-disorder"))
    depressed_phase = matching(active, knowledge.code_list("bipolar-depressed"))
    if not depressed_phase:
        out.bipolar_unphased = matching(active, knowledge.code_list("bipolar-unspecified-phase"))
    unipolar = bool(out.unipolar) and not out.bipolar
    threshold = int(knowledge.thresholds.trd_min_failed_trials.value)
    distinct = {
        name
        for t in failed
        for name, dose in t.doses_mg
        if _is_antidepressant(name, knowledge) and _adequate(name, dose, knowledge)
    }
    if unipolar and len(failed) >= threshold:
        out.reasons["treatment-resistant-depression"] = tuple(
            dict.fromkeys(ref for t in failed for ref in t.evidence)
        )
        if len(distinct) >= threshold:
            out.esketamine_indication = TRD_INDICATION
    elif out.bipolar and len(failed) >= threshold:
        out.context.append(
            "bipolar disorder is recorded ("
            + "; ".join(describe(d) for d in out.bipolar[:3])
            + "): the unipolar treatment-resistant depression pathway, and esketamine's label, "
            "do not apply"
        )
    suicidality, documented = _suicidality(facts, now, knowledge, phq.item9)
    if suicidality:
        out.reasons["suicidal-ideation"] = suicidality
        if unipolar and documented and out.esketamine_indication is None:
            out.esketamine_indication = MDSI_INDICATION
    severity = _severity(facts, now, knowledge, phq.totals)
    if severity and unipolar and failed:
        out.reasons["severe-depression"] = severity
    elif severity and unipolar:
        out.context.append(
            f"severe depression ({', '.join(severity)}): a candidate reason only after a failed "
            "adequate trial in this episode"
        )
    if depressed_phase and failed:
        out.reasons["bipolar-depression"] = tuple(d.ref for d in depressed_phase)
    elif depressed_phase:
        out.context.append(
            "bipolar disorder, current depressive episode ("
            + "; ".join(describe(d) for d in depressed_phase[:3])
            + "), with no failed adequate trial in this episode: ketamine is a third-line, "
            "off-label option (CANMAT)"
        )
    return out


def _adequate(name: str, daily_mg: float, knowledge: Knowledge) -> bool:
    """At or above the ingredient's adequate daily dose (ATRQ): the label's "two different
    antidepressants of adequate dose and duration" counts only those."""
    minimum = knowledge.ingredients[name].min_daily_dose_mg
    return minimum is not None and daily_mg >= minimum


def _is_antidepressant(name: str, knowledge: Knowledge) -> bool:
    ingredient = knowledge.ingredients.get(name)
    return ingredient is not None and ingredient.role == "antidepressant"
