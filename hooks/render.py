"""Card text shared by the hooks: sources, trial lines, contraindication lines, the referral."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from hooks.base import HookInput
from hooks.cards import Action, Card, Link, Source, Suggestion
from hooks.referral_ids import REFERRAL_IDENTIFIER_SYSTEM
from hooks.rules.findings import (
    FINDING_LABELS,
    REASON_LABELS,
    SCREEN_LABELS,
    Assessment,
    Contraindication,
    Trial,
)
from hooks.rules.knowledge import Knowledge

PI_LABEL = "SPRAVATO (esketamine) US Prescribing Information"
CONSENSUS_LABEL = "Sanacora et al. 2017 ketamine consensus (JAMA Psychiatry)"
ATRQ_LABEL = "MGH ATRQ adequate-trial criteria (Chandler 2010)"
CSSRS_LABEL = "Columbia Suicide Severity Rating Scale (C-SSRS)"
VA_DOD_LABEL = "VA/DoD Clinical Practice Guideline for MDD (2022)"

REASON_TEXT: dict[str, str] = {str(k): v for k, v in REASON_LABELS.items()}
CI_TEXT: dict[str, str] = dict(FINDING_LABELS)

OUTCOME_TEXT = {
    "failed": "failed",
    "ongoing": "ongoing",
    "intolerance": "stopped for intolerance",
    "inadequate-dose": "dose below adequate",
    "inadequate-duration": "too short",
    "unknown-dose": "dose unknown",
    "not-for-depression": "not a depression trial",
    "adequate-not-failed": "adequate, not failed",
}

SEVERITY_TEXT = {
    "contraindication": "contraindicated",
    "warning": "label warning, specialist judgement",
    "caution": "to weigh",
}


def source(knowledge: Knowledge, label: str = PI_LABEL) -> Source:
    """Card source: the cited label or guideline, with the rule-set version (checklist 66)."""
    return Source(
        label=f"ketamine-cds rules {knowledge.ruleset_version}: {label}",
        url=knowledge.policy.citations.get(label),
    )


def links(knowledge: Knowledge, *labels: str) -> list[Link] | None:
    found = [
        Link(label=label, url=knowledge.policy.citations[label], type="absolute")
        for label in labels
        if label in knowledge.policy.citations
    ]
    return found or None


EVIDENCE_LABEL = "Open the evidence: trials, PHQ-9, blood pressure, checklist"


def with_evidence_link(cards: list[Card], hook_input: HookInput, service_id: str) -> list[Card]:
    """The cards, each with a ``smart`` link to the evidence app (its launch URL; the
    ``appContext`` names the service and the card template, never the patient)."""
    if hook_input.app_launch_url is None:
        return cards
    out = []
    for card in cards:
        link = Link(
            label=EVIDENCE_LABEL,
            url=hook_input.app_launch_url,
            type="smart",
            appContext=json.dumps({"service": service_id, "card": card.kind}),
        )
        out.append(card.model_copy(update={"links": [*(card.links or []), link]}))
    return out


def refs(evidence: tuple[str, ...] | list[str], limit: int = 2) -> str:
    """A compact evidence list: the first few references and how many more."""
    unique = list(dict.fromkeys(evidence))
    shown = ", ".join(unique[:limit])
    return shown + (f" +{len(unique) - limit} more" if len(unique) > limit else "")


def _doses(trial: Trial) -> str:
    if len(trial.doses_mg) > 1:
        return " + ".join(f"{name} {dose:g}" for name, dose in trial.doses_mg) + " mg/day"
    if trial.max_daily_dose_mg is not None:
        return f"{trial.max_daily_dose_mg:g} mg/day"
    return "dose ?"


def trial_line(trial: Trial) -> str:
    span = (
        trial.start.strftime("%Y-%m")
        + " to "
        + (trial.end.strftime("%Y-%m") if trial.end else "now")
    )
    kind = f" ({trial.kind})" if trial.kind != "monotherapy" else ""
    weeks = (
        f"{trial.adequate_weeks:g} wk at an adequate dose over {trial.weeks:g} wk"
        if trial.adequate_weeks
        else f"{trial.weeks:g} wk"
    )
    previous = " [previous episode, not counted]" if trial.episode == "previous" else ""
    return (
        f"- {trial.ingredient}{kind} {_doses(trial)}, {weeks} ({span}): "
        f"**{OUTCOME_TEXT[trial.outcome]}**, {trial.why} [{refs(trial.evidence)}]{previous}"
    )


def ci_line(ci: Contraindication) -> str:
    return f"- **{ci.label}** ({SEVERITY_TEXT[ci.severity]}): {ci.detail}. Source: {ci.source}."


def reasons_text(assessment: Assessment) -> str:
    return ", ".join(REASON_TEXT[r] for r in assessment.candidate_reasons)


def findings_text(findings: tuple[Contraindication, ...]) -> str:
    """ "aneurysmal vascular disease or AVM (contraindicated), pregnancy (label warning)"."""
    words = {"contraindication": "contraindicated", "warning": "label warning"}
    return ", ".join(f"{c.label} ({words.get(c.severity, 'to weigh')})" for c in findings)


def _reason_line(assessment: Assessment, reason: str) -> str:
    if reason == "treatment-resistant-depression":
        return (
            f"- {REASON_TEXT[reason]}: {assessment.failed_adequate_trials} failed adequate "
            "treatment regimens in the current episode"
        )
    return f"- {REASON_TEXT[reason]} [{refs(assessment.reasons_evidence.get(reason, ()))}]"


def episode_heading(assessment: Assessment) -> str:
    if assessment.episode is None:
        return "**Antidepressant trials**"
    return (
        f"**Antidepressant trials, current episode since "
        f"{assessment.episode.start.date().isoformat()}** ({assessment.episode.basis})"
    )


def rems_text(knowledge: Knowledge) -> str:
    limits = knowledge.thresholds
    return (
        "SPRAVATO is given only in a certified REMS setting: monitoring for at least "
        f"{limits.rems_monitoring_minutes.value / 60:g} hours after each dose (sedation, "
        "dissociation, respiratory depression, with pulse oximetry), blood pressure before and "
        f"about {limits.post_dose_bp_minutes.value:g} minutes after, and no driving until the "
        "next day after a restful sleep."
    )


def ketamine_text(knowledge: Knowledge) -> str:
    limits = knowledge.thresholds
    return (
        f"IV ketamine ({limits.ketamine_iv_mg_per_kg.value:g} mg/kg over "
        f"{limits.ketamine_min_infusion_minutes.value:g} minutes) is off-label."
    )


def detail(assessment: Assessment, *, heading: str, knowledge: Knowledge) -> str:
    """Markdown detail: reasons, trials, findings, cautions, context, gaps, rule-set version."""
    parts = [heading]
    if assessment.candidate_reasons:
        lines = [_reason_line(assessment, r) for r in assessment.candidate_reasons]
        parts.append("**Reasons**\n\n" + "\n".join(lines))
    if assessment.trials:
        parts.append(
            episode_heading(assessment)
            + "\n\n"
            + "\n".join(trial_line(t) for t in assessment.trials)
        )
    if assessment.contraindications:
        parts.append(
            "**Contraindications and label warnings**\n\n"
            + "\n".join(ci_line(c) for c in assessment.contraindications)
        )
    if assessment.cautions:
        parts.append("**To weigh**\n\n" + "\n".join(ci_line(c) for c in assessment.cautions))
    if assessment.context:
        parts.append("**Context**\n\n" + "\n".join(f"- {c}" for c in assessment.context))
    if assessment.data_gaps:
        parts.append(
            "**Not verified**\n\n"
            + "\n".join(f"- {g}" for g in assessment.data_gaps[:8])
            + (
                f"\n- +{len(assessment.data_gaps) - 8} more"
                if len(assessment.data_gaps) > 8
                else ""
            )
        )
    limits = knowledge.thresholds
    parts.append(
        f"Adequate trial = ATRQ minimum daily dose for at least "
        f"{limits.min_adequate_weeks.value:g} weeks of covered time. "
        f"Rule set {assessment.ruleset_version}."
    )
    return "\n\n".join(parts)


def referral_code(knowledge: Knowledge) -> dict[str, Any]:
    """The ServiceRequest.code of the evaluation referral: the service's own code from the
    knowledge's ``ketamine-evaluation-referral`` list, which the service knows again."""
    codes = knowledge.codes.lists["ketamine-evaluation-referral"].codes
    return {
        "coding": [
            {"system": c.system, "code": c.code, **({"display": c.display} if c.display else {})}
            for c in codes
        ],
        "text": "Evaluation for esketamine (SPRAVATO) or IV ketamine treatment",
    }


def referral_suggestion(
    patient_id: str,
    assessment: Assessment,
    now: datetime,
    *,
    knowledge: Knowledge,
    recommended: bool = True,
) -> Suggestion:
    """A draft ServiceRequest for a ketamine/esketamine evaluation (created only if accepted).
    It carries the service's referral code and an identifier in ``REFERRAL_IDENTIFIER_SYSTEM``,
    so that the next assessment knows a referral is in progress."""
    resource_id = str(uuid.uuid4())
    reasons = reasons_text(assessment) or "treatment-resistant depression"
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": resource_id,
        "status": "draft",
        "intent": "proposal",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://snomed.info/sct",
                        "code": "3457005",
                        "display": "Patient referral",
                    }
                ]
            }
        ],
        "identifier": [{"system": REFERRAL_IDENTIFIER_SYSTEM, "value": resource_id}],
        "code": referral_code(knowledge),
        "subject": {"reference": f"Patient/{patient_id}"},
        "authoredOn": now.date().isoformat(),
        "reasonCode": [{"text": reasons}],
        "note": [
            {
                "text": (
                    f"{assessment.failed_adequate_trials} failed adequate treatment regimens "
                    f"in the current episode; reasons: {reasons}."
                )
            }
        ],
    }
    evidence = sorted(
        {ref for t in assessment.trials if t.outcome == "failed" for ref in t.evidence}
    )
    if evidence:
        resource["supportingInfo"] = [{"reference": ref} for ref in evidence]
    return Suggestion(
        label="Refer for ketamine/esketamine evaluation",
        isRecommended=recommended,
        actions=[
            Action(
                type="create",
                description="Create a draft referral for ketamine/esketamine evaluation",
                resource=resource,
            )
        ],
    )


def verify_text(assessment: Assessment) -> tuple[str, str]:
    """Summary and heading of the "verify first" card: what exactly could not be settled."""
    undone = assessment.incomplete
    if assessment.candidate_reasons and undone:
        names = ", ".join(SCREEN_LABELS[s.id] for s in undone)
        return (
            "Possible ketamine/esketamine candidate: the contraindication screen is incomplete.",
            f"The record shows {reasons_text(assessment)}, but these contraindication checks "
            f"could not be done because data could not be read: {names}. Verify them in the "
            "chart before a referral (what failed is listed under Not verified).",
        )
    bipolar = [c for c in assessment.cautions if c.id == "bipolar-disorder"]
    if bipolar and not assessment.candidate_reasons:
        return (
            "Possible treatment-resistant depression, but bipolar disorder is recorded: confirm "
            "the diagnosis and phase.",
            f"{assessment.failed_adequate_trials} failed adequate treatment regimens, but the "
            f"record shows {bipolar[0].detail}. "
            "The unipolar treatment-resistant depression pathway and esketamine's label do not "
            "apply in bipolar disorder (esketamine is not approved or studied in bipolar "
            "depression); a history of mania or hypomania is a switch risk. In bipolar "
            "depression ketamine is a third-line, off-label option for a specialist (CANMAT).",
        )
    trd = assessment.screen("treatment-resistant-depression")
    if trd is not None and trd.why:
        return (
            "Possible treatment-resistant depression: part of the medication history could not "
            "be read; verify.",
            "Antidepressant trials were counted from the data that could be read; what could "
            "not be read may change the count (listed under Not verified).",
        )
    return (
        "Possible ketamine/esketamine candidate: verify antidepressant doses, durations and "
        "diagnosis.",
        "The record may meet criteria for treatment-resistant depression, but the data below "
        "must be verified first.",
    )
