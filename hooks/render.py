"""Card text shared by the hooks: sources, trial lines, contraindication lines, the referral."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from hooks.cards import Action, Link, Source, Suggestion
from hooks.rules.findings import Assessment, Contraindication, Trial
from hooks.rules.knowledge import Knowledge

PI_LABEL = "SPRAVATO (esketamine) US Prescribing Information"
CONSENSUS_LABEL = "Sanacora et al. 2017 ketamine consensus (JAMA Psychiatry)"
ATRQ_LABEL = "MGH ATRQ adequate-trial criteria (Chandler 2010)"

REASON_TEXT = {
    "treatment-resistant-depression": "treatment-resistant depression",
    "suicidal-ideation": "suicidal ideation",
    "severe-depression": "severe depression",
    "bipolar-depression": "bipolar depression",
}

CI_TEXT = {
    "psychosis-history": "history of psychosis",
    "current-mania-or-hypomania": "current mania or hypomania",
    "uncontrolled-hypertension": "uncontrolled hypertension",
    "serious-heart-disease": "serious heart disease",
    "aneurysmal-vascular-disease-or-avm": "aneurysmal vascular disease or AVM",
    "intracerebral-hemorrhage-history": "history of intracerebral hemorrhage",
    "ketamine-hypersensitivity": "ketamine/esketamine hypersensitivity",
    "active-substance-use-disorder": "active substance use disorder",
    "pregnancy": "pregnancy",
    "breastfeeding": "breastfeeding",
    "minor": "age under 18",
}

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


def refs(evidence: tuple[str, ...] | list[str], limit: int = 2) -> str:
    """A compact evidence list: the first few references and how many more."""
    unique = list(dict.fromkeys(evidence))
    shown = ", ".join(unique[:limit])
    return shown + (f" +{len(unique) - limit} more" if len(unique) > limit else "")


def trial_line(trial: Trial) -> str:
    dose = (
        f"{trial.max_daily_dose_mg:g} mg/day" if trial.max_daily_dose_mg is not None else "dose ?"
    )
    span = (
        trial.start.strftime("%Y-%m")
        + " to "
        + (trial.end.strftime("%Y-%m") if trial.end else "now")
    )
    return (
        f"- {trial.ingredient} {dose}, {trial.weeks:g} wk ({span}): "
        f"**{OUTCOME_TEXT[trial.outcome]}**, {trial.why} [{refs(trial.evidence)}]"
    )


def ci_line(ci: Contraindication) -> str:
    return f"- **{CI_TEXT[ci.id]}**: {ci.detail}. Source: {ci.source}."


def reasons_text(assessment: Assessment) -> str:
    return ", ".join(REASON_TEXT[r] for r in assessment.candidate_reasons)


def _reason_line(assessment: Assessment, reason: str) -> str:
    if reason == "treatment-resistant-depression":
        return (
            f"- {REASON_TEXT[reason]}: {assessment.failed_adequate_trials} failed adequate "
            "antidepressant trials"
        )
    return f"- {REASON_TEXT[reason]} [{refs(assessment.reasons_evidence.get(reason, ()))}]"


def detail(assessment: Assessment, *, heading: str, include_trials: bool = True) -> str:
    """Markdown detail: reasons, counted trials, contraindications, gaps, rule-set version."""
    parts = [heading]
    if assessment.candidate_reasons:
        lines = [_reason_line(assessment, r) for r in assessment.candidate_reasons]
        parts.append("**Reasons**\n\n" + "\n".join(lines))
    if include_trials and assessment.trials:
        parts.append(
            "**Antidepressant trials, current episode**\n\n"
            + "\n".join(trial_line(t) for t in assessment.trials)
        )
    if assessment.contraindications:
        parts.append(
            "**Contraindications and warnings**\n\n"
            + "\n".join(ci_line(c) for c in assessment.contraindications)
        )
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
    parts.append(
        "Adequate trial = ATRQ minimum daily dose for at least 6 weeks. "
        f"Rule set {assessment.ruleset_version}."
    )
    return "\n\n".join(parts)


def referral_suggestion(patient_id: str, assessment: Assessment, now: datetime) -> Suggestion:
    """A draft ServiceRequest for a ketamine/esketamine evaluation (created only if accepted)."""
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
        "code": {
            "text": "Evaluation for esketamine (SPRAVATO) or IV ketamine treatment",
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "authoredOn": now.date().isoformat(),
        "reasonCode": [{"text": reasons}],
        "note": [
            {
                "text": (
                    f"{assessment.failed_adequate_trials} failed adequate antidepressant trials "
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
        isRecommended=True,
        actions=[
            Action(
                type="create",
                description="Create a draft referral for ketamine/esketamine evaluation",
                resource=resource,
            )
        ],
    )
