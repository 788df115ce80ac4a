"""``trd-ketamine-screen`` on ``patient-view``: at most one card per question, none when idle.

- Suicidal ideation or self-harm recorded recently -> a warning card that leads with a same-day
  suicide-risk assessment (C-SSRS), whatever else is true; esketamine is mentioned only as its
  label states it (MDD with acute suicidal ideation or behavior, with an oral antidepressant;
  not shown to prevent suicide; no substitute for hospitalisation), and only in unipolar MDD.
- refer-for-evaluation -> 1 info card with the pathway that applies (treatment-resistant
  depression; severe depression after a failed trial: off-label ketamine; bipolar depression
  after a failed trial: specialist, off-label, third-line ketamine, esketamine not approved) and
  a referral suggestion (pre-selected only on the label pathway);
- not-recommended -> 1 warning card naming each contraindication ("contraindicated") or label
  warning ("label warning");
- insufficient-data -> 1 info card saying what to verify;
- not-a-candidate -> no card (alert fatigue).
"""

from __future__ import annotations

from dataclasses import replace

from hooks.base import HookInput, HookResult
from hooks.cards import Card, shorten
from hooks.override_reasons import REFERRAL_REASONS
from hooks.patient_data import patient_assessment
from hooks.render import (
    ATRQ_LABEL,
    CONSENSUS_LABEL,
    CSSRS_LABEL,
    PI_LABEL,
    REASON_TEXT,
    VA_DOD_LABEL,
    ci_line,
    detail,
    findings_text,
    ketamine_text,
    links,
    reasons_text,
    referral_suggestion,
    refs,
    rems_text,
    source,
    verify_text,
    with_evidence_link,
)
from hooks.rules.candidates import MDSI_INDICATION, TRD_INDICATION
from hooks.rules.findings import Assessment
from hooks.rules.knowledge import Knowledge
from hooks.rules.suppression import feedback_suppression, in_progress_suppression

SERVICE_ID = "trd-ketamine-screen"


def _referral_heading(assessment: Assessment, knowledge: Knowledge) -> tuple[str, bool]:
    """The pathway text of a referral card, and whether the referral is pre-selected."""
    reasons = set(assessment.candidate_reasons)
    if "treatment-resistant-depression" in reasons:
        if assessment.esketamine_indication == TRD_INDICATION:
            return (
                f"{assessment.failed_adequate_trials} failed adequate treatment regimens in the "
                "current episode: evaluation for esketamine (SPRAVATO, approved for "
                "treatment-resistant depression alone or with an oral antidepressant) or "
                f"ketamine. {rems_text(knowledge)} {ketamine_text(knowledge)}",
                True,
            )
        return (
            f"{assessment.failed_adequate_trials} failed adequate treatment regimens in the "
            "current episode, but fewer than two different antidepressants (an augmentation or "
            "combination counts as a regimen): esketamine's label defines treatment-resistant "
            "depression as failure of two different antidepressants. Evaluation for off-label "
            f"ketamine, or a further antidepressant trial, may be considered. "
            f"{ketamine_text(knowledge)}",
            True,
        )
    if "severe-depression" in reasons:
        return (
            "Severe depression after a failed adequate trial in this episode: evaluation for "
            "off-label ketamine may be considered; esketamine's label indication requires "
            "treatment-resistant depression (two failed antidepressants). "
            f"{ketamine_text(knowledge)}",
            True,
        )
    return (
        "Bipolar depression (current depressive episode) after a failed adequate trial: "
        "ketamine is a third-line, off-label option, as an add-on to a mood stabiliser, for a "
        "specialist to consider (CANMAT); esketamine is not approved or studied in bipolar "
        "depression.",
        False,
    )


def _suicide_risk_card(assessment: Assessment, knowledge: Knowledge) -> Card:
    evidence = assessment.reasons_evidence.get("suicidal-ideation", ())
    lines = [
        "**First: a same-day suicide risk assessment** with a standard instrument such as the "
        "Columbia Suicide Severity Rating Scale (C-SSRS), and a safety plan; consider "
        "hospitalization if the risk is high.",
        f"Recorded: {refs(evidence, limit=4)}.",
    ]
    if assessment.esketamine_indication in (MDSI_INDICATION, TRD_INDICATION):
        lines.append(
            "Esketamine (SPRAVATO) is approved, in conjunction with an oral antidepressant, for "
            "depressive symptoms in adults with major depressive disorder with acute suicidal "
            "ideation or behavior. Its effectiveness in preventing suicide or in reducing "
            "suicidal ideation or behavior has not been demonstrated, and its use does not "
            "preclude the need for hospitalization. " + rems_text(knowledge)
        )
    if assessment.contraindications:
        lines.append(
            "Ketamine/esketamine: " + findings_text(assessment.contraindications) + "; where "
            "ketamine is not appropriate, ECT is an established option (VA/DoD 2022)."
        )
    lines.append(f"Rule set {assessment.ruleset_version}.")
    return Card(
        kind="screen-suicide-risk",
        summary=shorten(
            "Suicidal ideation or self-harm recorded: complete a same-day suicide risk "
            "assessment (e.g. C-SSRS)."
        ),
        indicator="warning",
        detail="\n\n".join(lines),
        source=source(knowledge, CSSRS_LABEL),
        links=links(knowledge, CSSRS_LABEL, PI_LABEL),
    )


def cards_for(assessment: Assessment, patient_id: str, hook_input: HookInput) -> list[Card]:
    knowledge: Knowledge = hook_input.knowledge
    cards: list[Card] = []
    deceased = "patient is recorded as deceased" in assessment.data_gaps
    if "suicidal-ideation" in assessment.candidate_reasons and not deceased:
        cards.append(_suicide_risk_card(assessment, knowledge))
    if assessment.recommendation == "refer-for-evaluation":
        heading, recommended = _referral_heading(assessment, knowledge)
        cards.append(
            Card(
                kind="screen-referral",
                summary=shorten(
                    "Consider ketamine/esketamine evaluation: "
                    + _referral_reasons(assessment)
                    + "."
                ),
                indicator="info",
                detail=detail(assessment, heading=heading, knowledge=knowledge),
                source=source(knowledge, PI_LABEL),
                suggestions=[
                    referral_suggestion(
                        patient_id,
                        assessment,
                        hook_input.now,
                        knowledge=knowledge,
                        recommended=recommended,
                    )
                ],
                overrideReasons=list(REFERRAL_REASONS),
                selectionBehavior="at-most-one",
                links=links(knowledge, PI_LABEL, CONSENSUS_LABEL, ATRQ_LABEL),
            )
        )
    elif assessment.recommendation == "not-recommended":
        names = findings_text(assessment.contraindications)
        psychotic = any(c.id == "psychosis-history" for c in assessment.contraindications)
        cards.append(
            Card(
                kind="screen-not-recommended",
                summary=shorten(f"Ketamine/esketamine not recommended: {names}."),
                indicator="warning",
                detail=detail(
                    assessment,
                    heading=(
                        f"Candidate for ketamine/esketamine ({_referral_reasons(assessment)}), "
                        "but the record shows label contraindications or warnings that need a "
                        "specialist's judgement."
                        + (
                            " For depression with psychotic features, ECT is an established "
                            "option (VA/DoD 2022)."
                            if psychotic
                            else ""
                        )
                    ),
                    knowledge=knowledge,
                ),
                source=source(knowledge, PI_LABEL),
                links=links(knowledge, PI_LABEL, CONSENSUS_LABEL, VA_DOD_LABEL),
            )
        )
    elif assessment.recommendation == "insufficient-data":
        summary, heading = verify_text(assessment)
        cards.append(
            Card(
                kind="screen-verify",
                summary=shorten(summary),
                indicator="info",
                detail=detail(assessment, heading=heading, knowledge=knowledge),
                source=source(knowledge, ATRQ_LABEL),
                links=links(knowledge, ATRQ_LABEL, PI_LABEL),
            )
        )
    return cards


def _referral_reasons(assessment: Assessment) -> str:
    return ", ".join(
        REASON_TEXT[r] for r in assessment.candidate_reasons if r != "suicidal-ideation"
    ) or reasons_text(assessment)


REFERRAL_KINDS = frozenset({"screen-referral", "screen-verify"})
"""Cards about a possible referral: withheld while one is under way or a clinician said so."""


def _on_treatment_card(assessment: Assessment, knowledge: Knowledge) -> Card:
    treatment = assessment.progress("treatment-in-progress")
    assert treatment is not None
    names = findings_text(assessment.contraindications)
    return Card(
        kind="screen-on-treatment",
        summary=shorten(f"On ketamine/esketamine treatment, with {names}: review the treatment."),
        indicator="warning",
        detail="\n\n".join(
            [
                f"Treatment is under way: {treatment.detail}. The record now shows findings "
                "that the label asks to weigh before each dose:",
                "\n".join(ci_line(c) for c in assessment.contraindications),
                f"Rule set {assessment.ruleset_version}.",
            ]
        ),
        source=source(knowledge, PI_LABEL),
        links=links(knowledge, PI_LABEL, CONSENSUS_LABEL),
    )


def apply_suppression(
    assessment: Assessment, cards: list[Card], hook_input: HookInput
) -> tuple[Assessment, list[Card]]:
    """Withhold the cards treatment or a referral in progress, or a clinician's feedback, make
    needless (``hooks/rules/suppression.py``); the assessment says what was withheld and why."""
    suppression = in_progress_suppression(assessment)
    lifted = None
    if suppression is None:
        suppression, lifted = feedback_suppression(
            assessment, hook_input.suppression, hook_input.now
        )
    if suppression is None:
        return replace(assessment, suppression_lifted=lifted), cards
    treatment = suppression.reason == "treatment-in-progress"
    withhold: set[str] = set(REFERRAL_KINDS)
    if treatment:
        withhold.add("screen-not-recommended")
    elif suppression.reason != "referral-in-progress":
        withhold = {"screen-referral"}  # the feedback was about the referral card only
    kept = [c for c in cards if c.kind not in withhold]
    withheld = tuple(c.kind for c in cards if c.kind in withhold)
    if treatment and assessment.contraindications:
        kept.append(_on_treatment_card(assessment, hook_input.knowledge))
    if not withheld:
        return assessment, kept
    return replace(assessment, suppression=replace(suppression, withheld=withheld)), kept


def evaluate(hook_input: HookInput) -> HookResult:
    _, assessment = patient_assessment(hook_input)
    patient_id = hook_input.context.patientId
    cards = cards_for(assessment, patient_id, hook_input)
    assessment, cards = apply_suppression(assessment, cards, hook_input)
    return HookResult(with_evidence_link(cards, hook_input, SERVICE_ID), assessment)
