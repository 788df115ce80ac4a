"""Treatment and referrals already under way. Pure.

- **Treatment in progress**: a ketamine or esketamine MedicationRequest, MedicationStatement,
  MedicationAdministration or MedicationDispense that was given, handed over, ordered or reported
  within ``on_treatment_days`` of now (an order or statement still active counts as of now,
  unless it started more than ``stale_active_weeks`` ago with nothing newer). Records that say the
  drug was not taken or not given (``SKIPPED_STATUSES``) and orders that are only a proposal or a
  plan do not count.
- **Referral in progress**: a ServiceRequest for ketamine/esketamine evaluation (the
  ``ketamine-evaluation-referral`` code list, or the identifier the service's own referral
  suggestion carries) that is active or on hold, or was completed within
  ``referral_recent_days``. A draft counts only when it is the service's own suggestion accepted
  by a clinician (its identifier), within that window. Revoked, erroneous and unknown-status
  requests do not count.

Neither ever withholds a card by itself when the data could not be read: the screens say so and
the card is shown (``hooks/rules/screens.py``).
"""

from __future__ import annotations

from datetime import datetime

from fhir_mappers.dates import shift
from fhir_mappers.facts import Facts, MedicationFact, ReferralFact
from hooks.referral_ids import REFERRAL_IDENTIFIER_SYSTEM
from hooks.rules.conditions import concept_matches
from hooks.rules.findings import InProgress
from hooks.rules.knowledge import Knowledge
from hooks.rules.medications import SKIPPED_STATUSES, resolve_ingredients

TARGET_DRUGS = ("esketamine", "ketamine")
NOT_GIVEN_INTENTS = frozenset({"proposal", "plan", "option"})
"""Order intents that are not treatment (a suggestion, a plan of care, an option)."""
RUNNING_STATUSES = frozenset({"active", "in-progress", "on-hold"})
REFERRAL_OPEN = frozenset({"active", "on-hold"})
MAX_EVIDENCE = 5


def _drug(fact: MedicationFact, knowledge: Knowledge) -> str | None:
    names = {i.name for i in resolve_ingredients(fact.product, fact.ingredients, knowledge)}
    return next((d for d in TARGET_DRUGS if d in names), None)


def _last_seen(fact: MedicationFact, now: datetime, knowledge: Knowledge) -> datetime | None:
    """When the record last shows the drug taken (now for one still running)."""
    if fact.start is None or fact.start > now:
        return None
    if fact.status in RUNNING_STATUSES and fact.end is None:
        stale = shift(now, weeks=-knowledge.thresholds.stale_active_weeks.value) or now
        return now if fact.start >= stale else fact.start
    last = fact.end or fact.start
    if fact.supply_days is not None:
        last = max(last, shift(fact.start, days=fact.supply_days) or last)
    return min(last, now)


def treatment_in_progress(
    facts: Facts, *, now: datetime, knowledge: Knowledge
) -> InProgress | None:
    window = knowledge.thresholds.on_treatment_days.value
    since = shift(now, days=-window) or now
    found: list[tuple[datetime, str, MedicationFact]] = []
    for fact in facts.medications:
        if fact.status in SKIPPED_STATUSES or fact.intent in NOT_GIVEN_INTENTS:
            continue
        drug = _drug(fact, knowledge)
        if drug is None:
            continue
        seen = _last_seen(fact, now, knowledge)
        if seen is not None and seen >= since:
            found.append((seen, drug, fact))
    if not found:
        return None
    found.sort(key=lambda item: item[0], reverse=True)
    latest, drug, fact = found[0]
    running = latest >= now
    detail = (
        f"{drug} ({fact.ref}, {fact.resource_type.removeprefix('Medication').lower()} "
        f"{(fact.start or latest).date().isoformat()})"
    )
    return InProgress(
        "treatment-in-progress",
        tuple(dict.fromkeys(f.ref for _, _, f in found))[:MAX_EVIDENCE],
        detail,
        None if running else shift(latest, days=window),
    )


def _is_evaluation_referral(referral: ReferralFact, knowledge: Knowledge) -> bool:
    return REFERRAL_IDENTIFIER_SYSTEM in referral.identifier_systems or concept_matches(
        knowledge.code_list("ketamine-evaluation-referral"), referral.concept
    )


def referral_in_progress(facts: Facts, *, now: datetime, knowledge: Knowledge) -> InProgress | None:
    window = knowledge.thresholds.referral_recent_days.value
    since = shift(now, days=-window) or now
    found: list[tuple[datetime | None, ReferralFact]] = []
    for referral in facts.referrals:
        if not _is_evaluation_referral(referral, knowledge):
            continue
        when = referral.occurrence_end or referral.authored
        if referral.status in REFERRAL_OPEN:
            found.append((None, referral))
        elif referral.status == "completed" and when is not None and since <= when <= now:
            found.append((when, referral))
        elif (
            referral.status == "draft"
            and REFERRAL_IDENTIFIER_SYSTEM in referral.identifier_systems
            and referral.authored is not None
            and since <= referral.authored <= now
        ):
            found.append((referral.authored, referral))
    if not found:
        return None
    open_ones = [r for when, r in found if when is None]
    chosen = open_ones[0] if open_ones else max(found, key=lambda item: item[1].authored or now)[1]
    dated = [when for when, _ in found if when is not None]
    until = None if open_ones else shift(max(dated), days=window)
    when_text = chosen.authored or chosen.occurrence_end
    detail = (
        f"{chosen.concept.label() or 'evaluation referral'} ({chosen.ref}, {chosen.status}"
        + (f", {when_text.date().isoformat()}" if when_text else "")
        + ")"
    )
    return InProgress(
        "referral-in-progress",
        tuple(dict.fromkeys(r.ref for _, r in found))[:MAX_EVIDENCE],
        detail,
        until,
    )


def in_progress(facts: Facts, *, now: datetime, knowledge: Knowledge) -> tuple[InProgress, ...]:
    found = (
        treatment_in_progress(facts, now=now, knowledge=knowledge),
        referral_in_progress(facts, now=now, knowledge=knowledge),
    )
    return tuple(p for p in found if p is not None)
