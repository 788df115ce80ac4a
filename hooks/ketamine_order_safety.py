"""``ketamine-order-safety`` on ``order-sign``: catch unsafe ketamine/esketamine orders.

One card per draft ketamine or esketamine order, naming every issue that
``hooks.rules.order_safety.check_order`` found, most serious first. The card's indicator is the
worst issue's: ``critical`` (a label contraindication or label warning, a dose above the label's
maximum or the studied ceiling, a blood pressure in the urgency range), ``warning`` (an issue to
check before signing), ``info`` (something to weigh). A critical card offers the CDS Hooks 3.0
override reasons and a suggestion to remove the order.

An esketamine order with no issue gets a card only when it is the first esketamine in the record:
the REMS enrolment, two-hour monitoring and no-driving reminder matter before the first dose, not
before every one (alert fatigue). Orders of other drugs get no card; an order whose drug cannot be
identified gets a warning card (it may be ketamine).
"""

from __future__ import annotations

from typing import Any

from hooks.base import HookInput, HookResult
from hooks.cards import Action, Card, Suggestion, shorten
from hooks.orders import DraftOrder, draft_medication_orders
from hooks.override_reasons import ORDER_SIGN_REASONS
from hooks.patient_data import patient_assessment
from hooks.render import CONSENSUS_LABEL, PI_LABEL, links, refs, rems_text, source
from hooks.rules.contraindications import TARGET_DRUGS
from hooks.rules.findings import Assessment
from hooks.rules.knowledge import Knowledge
from hooks.rules.order_safety import OrderCheck, check_order

SERVICE_ID = "ketamine-order-safety"

SKIP_STATUSES = frozenset({"entered-in-error", "cancelled", "completed", "stopped"})
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}
MAX_LISTED = 12


def _unreadable_card(refs_: list[str], knowledge: Knowledge) -> Card:
    listed = ", ".join(refs_[:5]) + (f" +{len(refs_) - 5} more" if len(refs_) > 5 else "")
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


def _first_esketamine(check: OrderCheck) -> bool:
    return check.drug == "esketamine" and check.first_dose


def _card(
    order: DraftOrder, check: OrderCheck, assessment: Assessment, knowledge: Knowledge
) -> Card:
    label = check.drug.capitalize()
    issues = sorted(check.issues, key=lambda i: SEVERITY_ORDER[i.severity])
    indicator = check.worst or "info"
    if issues:
        more = f" (+{len(issues) - 1} more)" if len(issues) > 1 else ""
        summary = f"{label} order: {issues[0].short}{more}."
    else:
        hours = knowledge.thresholds.rems_monitoring_minutes.value / 60
        summary = f"{label} order: first dose, REMS setting and {hours:g}-hour monitoring."
    lines = [
        f"- **{issue.severity}**: {issue.text}"
        + (f" [{refs(issue.evidence)}]" if issue.evidence else "")
        for issue in issues[:MAX_LISTED]
    ]
    if len(issues) > MAX_LISTED:
        lines.append(f"- +{len(issues) - MAX_LISTED} more")
    route = "" if check.route == "unknown" else f", {check.route}"
    parts = [f"**Safety checks for {check.drug}{route}** ({order.fact.ref})"]
    if lines:
        parts.append("\n".join(lines))
    if check.drug == "esketamine":
        parts.append(rems_text(knowledge))
    parts.append(f"Rule set {assessment.ruleset_version}.")
    critical = indicator == "critical"
    return Card(
        kind="sign-contraindicated" if critical else "sign-safety",
        summary=shorten(summary),
        indicator=indicator,
        detail="\n\n".join(parts),
        source=source(knowledge, CONSENSUS_LABEL if check.drug == "ketamine" else PI_LABEL),
        overrideReasons=list(ORDER_SIGN_REASONS) if critical else None,
        suggestions=(
            [
                Suggestion(
                    label=f"Remove the {check.drug} order",
                    actions=[
                        Action(
                            type="delete",
                            description=f"Remove the draft {check.drug} order",
                            resourceId=order.fact.ref,
                        )
                    ],
                )
            ]
            if critical
            else None
        ),
        selectionBehavior="at-most-one" if critical else None,
        links=links(knowledge, PI_LABEL, CONSENSUS_LABEL),
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
        check = check_order(
            order.fact,
            targets[0],
            order.defects,
            facts=facts,
            assessment=assessment,
            now=hook_input.now,
            knowledge=knowledge,
        )
        checked.append(
            {
                "order": order.fact.ref,
                "drug": check.drug,
                "route": check.route,
                "issues": [f"{i.severity}: {i.text}" for i in check.issues],
            }
        )
        if check.issues or _first_esketamine(check):
            cards.append(_card(order, check, assessment, knowledge))
    return HookResult(cards, assessment, {"orders_checked": checked, "order_gaps": gaps})
