"""``ketamine-order-safety`` on ``order-sign``: catch unsafe ketamine/esketamine orders.

For each draft MedicationRequest of ketamine or esketamine:

- any contraindication -> one ``critical`` card naming each one and its evidence, with override
  reasons and a suggestion to remove the order;
- otherwise (and in addition) one ``warning`` card listing the safety checks that failed: no blood
  pressure recorded within ``order_bp_recent_days``; for IV ketamine, no body weight within
  ``order_weight_recent_days``, no computable dose, or a dose above ``ketamine_iv_mg_per_kg``
  (0.5 mg/kg, Sanacora 2017) by more than ``ketamine_dose_tolerance``.

Orders of other drugs get no card.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fhir_mappers.facts import Facts
from hooks.base import HookInput, HookResult
from hooks.cards import Action, Card, CdsCoding, Suggestion, shorten
from hooks.orders import DraftOrder, draft_medication_orders
from hooks.patient_data import patient_assessment
from hooks.render import CI_TEXT, CONSENSUS_LABEL, PI_LABEL, ci_line, links, source
from hooks.rules.conditions import concept_matches
from hooks.rules.contraindications import TARGET_DRUGS, blood_pressures
from hooks.rules.findings import SCREEN_LABELS, Assessment
from hooks.rules.knowledge import Knowledge

SERVICE_ID = "ketamine-order-safety"

OVERRIDE_SYSTEM = "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"
OVERRIDE_REASONS = (
    CdsCoding(
        system=OVERRIDE_SYSTEM,
        code="recipient-disagrees-evidence",
        display="Recipient disagrees with recommendation because of issues with the evidence",
    ),
    CdsCoding(
        system=OVERRIDE_SYSTEM,
        code="cds-not-applicable",
        display="PC CDS does not apply to patient",
    ),
    CdsCoding(
        system=OVERRIDE_SYSTEM,
        code="recipient-concerns-outcomes",
        display="Recipient has concerns regarding potential health outcomes",
    ),
)
"""CDS Hooks 3.0 override-reason vocabulary (checklist item 69), with the required displays."""

SKIP_STATUSES = frozenset({"entered-in-error", "cancelled", "completed", "stopped"})

LB_TO_KG = 0.45359237


def _weight_kg(facts: Facts, hook_input: HookInput) -> tuple[float | None, str | None]:
    knowledge = hook_input.knowledge
    window = timedelta(days=knowledge.thresholds.order_weight_recent_days.value)
    weights = knowledge.code_list("body-weight")
    best = None
    for obs in facts.observations:
        if obs.value is None or obs.effective is None or obs.effective < hook_input.now - window:
            continue
        if obs.status in ("entered-in-error", "cancelled") or not concept_matches(
            weights, obs.concept
        ):
            continue
        if best is None or obs.effective > best.effective:  # type: ignore[operator]
            best = obs
    if best is None or best.value is None:
        return None, None
    unit = (best.unit or "kg").lower()
    factor = {"kg": 1.0, "g": 0.001, "[lb_av]": LB_TO_KG, "lb": LB_TO_KG, "lbs": LB_TO_KG}.get(unit)
    if factor is None:
        return None, best.ref
    return best.value * factor, best.ref


def _is_intravenous(order: DraftOrder, knowledge: Knowledge) -> bool:
    if concept_matches(knowledge.code_list("route-intravenous"), order.fact.route):
        return True
    texts = " ".join(order.fact.product.texts()).lower()
    return any(word in texts for word in ("inject", "intravenous", "infusion"))


def _warnings(
    order: DraftOrder, drug: str, facts: Facts, hook_input: HookInput
) -> tuple[list[tuple[str, str]], list[str]]:
    knowledge = hook_input.knowledge
    issues: list[tuple[str, str]] = []
    evidence: list[str] = []
    bp_days = knowledge.thresholds.order_bp_recent_days.value
    readings = [
        r
        for r in blood_pressures(facts.observations, knowledge)
        if r.at >= hook_input.now - timedelta(days=bp_days)
    ]
    if not readings:
        issues.append(
            (
                "no recent blood pressure",
                f"no blood pressure recorded in the last {bp_days:g} days: measure it before "
                "dosing "
                "and about 40 minutes after (SPRAVATO PI; Sanacora 2017)",
            )
        )
    if drug == "ketamine" and _is_intravenous(order, knowledge):
        weight, weight_ref = _weight_kg(facts, hook_input)
        fact = order.fact
        limit = knowledge.thresholds.ketamine_iv_mg_per_kg.value
        tolerance = knowledge.thresholds.ketamine_dose_tolerance.value
        if weight is None:
            issues.append(
                (
                    "no recent body weight",
                    "no body weight in the last "
                    f"{knowledge.thresholds.order_weight_recent_days.value:g} "
                    f"days: the IV dose ({limit:g} mg/kg) cannot be checked",
                )
            )
        if weight_ref:
            evidence.append(weight_ref)
        if fact.dose_value is None or fact.dose_unit != "mg":
            issues.append(("dose not stated", "the IV ketamine dose is not stated in mg or mg/kg"))
        else:
            mg_per_kg: float | None = fact.dose_value if fact.dose_per_kg else None
            if mg_per_kg is None and weight:
                mg_per_kg = fact.dose_value / weight
            if mg_per_kg is not None and mg_per_kg > limit * (1 + tolerance):
                issues.append(
                    (
                        f"dose {mg_per_kg:.2f} mg/kg is above {limit:g} mg/kg",
                        f"dose {mg_per_kg:.2f} mg/kg exceeds {limit:g} mg/kg over 40 minutes "
                        f"by more than the {tolerance:.0%} tolerance (Sanacora 2017)",
                    )
                )
    return issues, evidence


def _unreadable_card(refs: list[str], knowledge: Knowledge) -> Card:
    listed = ", ".join(refs[:5]) + (f" +{len(refs) - 5} more" if len(refs) > 5 else "")
    return Card(
        kind="sign-unreadable-order",
        summary=shorten(
            "A draft medication order could not be read: check it is not ketamine or "
            "esketamine before signing."
        ),
        indicator="warning",
        detail=(
            f"The drug of {listed} could not be identified (its medication element is "
            "malformed, or names a Medication that was not sent), so the ketamine/esketamine "
            "safety checks could not run on it."
        ),
        source=source(knowledge, PI_LABEL),
    )


def _incomplete_issue(assessment: Assessment) -> tuple[str, str] | None:
    undone = assessment.incomplete
    if not undone:
        return None
    names = ", ".join(SCREEN_LABELS[s.id] for s in undone)
    why = "; ".join(dict.fromkeys(w for s in undone for w in s.why))
    return (
        f"contraindication screen incomplete ({len(undone)} not checked)",
        f"could not check {names}: {why}",
    )


LABEL_INDICATIONS = frozenset({"treatment-resistant-depression", "suicidal-ideation"})


def _indication_issue(drug: str, assessment: Assessment) -> tuple[str, str] | None:
    """Esketamine is approved for TRD and for MDD with acute suicidal ideation: say when the
    record documents neither (or could not be read far enough to tell)."""
    if drug != "esketamine" or LABEL_INDICATIONS & set(assessment.candidate_reasons):
        return None
    trd = assessment.screen("treatment-resistant-depression")
    unread = f"; {'; '.join(trd.why)}" if trd is not None and trd.why else ""
    return (
        "no documented label indication",
        "no treatment-resistant depression (two failed adequate antidepressant trials) and no "
        f"depression with acute suicidal ideation is documented{unread}",
    )


def evaluate(hook_input: HookInput) -> HookResult:
    knowledge = hook_input.knowledge
    facts, assessment = patient_assessment(hook_input)
    drafts = draft_medication_orders(hook_input)
    gaps = [*drafts.notes, *(f"{ref} (draft order) could not be read" for ref in drafts.unreadable)]
    cards: list[Card] = []
    checked: list[dict[str, Any]] = []
    if drafts.unreadable:
        cards.append(_unreadable_card(drafts.unreadable, knowledge))
    for order in drafts.orders:
        targets = [i.name for i in order.ingredients if i.name in TARGET_DRUGS]
        if not targets or order.fact.status in SKIP_STATUSES:
            continue
        drug = targets[0]
        label = drug.capitalize()
        issues, evidence = _warnings(order, drug, facts, hook_input)
        incomplete = _incomplete_issue(assessment)
        if incomplete:
            issues.insert(0, incomplete)
        indication = _indication_issue(drug, assessment)
        if indication:
            issues.append(indication)
        if order.defects:
            issues.append(
                (
                    "order partly unreadable",
                    f"the order's {', '.join(order.defects)} could not be read; check them",
                )
            )
        checked.append({"order": order.fact.ref, "drug": drug, "warnings": [i[1] for i in issues]})
        if assessment.contraindications:
            names = ", ".join(CI_TEXT[c.id] for c in assessment.contraindications)
            cards.append(
                Card(
                    kind="sign-contraindicated",
                    summary=shorten(f"{label} order: contraindicated ({names})."),
                    indicator="critical",
                    detail="\n\n".join(
                        [
                            f"**{label}** ({order.fact.ref}) is ordered for a patient with:",
                            "\n".join(ci_line(c) for c in assessment.contraindications),
                            f"Rule set {assessment.ruleset_version}.",
                        ]
                    ),
                    source=source(knowledge, PI_LABEL),
                    overrideReasons=list(OVERRIDE_REASONS),
                    suggestions=[
                        Suggestion(
                            label=f"Remove the {drug} order",
                            actions=[
                                Action(
                                    type="delete",
                                    description=f"Remove the draft {drug} order",
                                    resourceId=order.fact.ref,
                                )
                            ],
                        )
                    ],
                    selectionBehavior="at-most-one",
                    links=links(knowledge, PI_LABEL, CONSENSUS_LABEL),
                )
            )
        if issues:
            more = f" (+{len(issues) - 1} more)" if len(issues) > 1 else ""
            body = "\n".join(f"- {text}" for _, text in issues)
            if evidence:
                body += "\n\nEvidence: " + ", ".join(evidence)
            cards.append(
                Card(
                    kind="sign-safety",
                    summary=shorten(f"{label} order: {issues[0][0]}{more}."),
                    indicator="warning",
                    detail=f"**Safety checks for {drug}** ({order.fact.ref})\n\n{body}\n\n"
                    f"Rule set {assessment.ruleset_version}.",
                    source=source(knowledge, CONSENSUS_LABEL if drug == "ketamine" else PI_LABEL),
                    links=links(knowledge, PI_LABEL, CONSENSUS_LABEL),
                )
            )
    return HookResult(cards, assessment, {"orders_checked": checked, "order_gaps": gaps})
