"""Whether the referral card is withheld, and why. Pure.

In this order:

1. **Treatment in progress** (``in_progress.treatment_in_progress``): no referral, verify or
   not-recommended card; a contraindication or label warning then gets one warning card of its
   own, because treatment is under way.
2. **Referral in progress**: no referral or verify card (a not-recommended card stays: it is about
   safety); at order-select the existing referral is named instead.
3. **A clinician's feedback** on an earlier referral card for this patient (an override reason
   with a window, or the referral suggestion accepted), until its window ends, unless the
   assessment changed materially since the card was shown: a new failed regimen, a new
   candidate reason, or a contraindication or label warning that appeared or cleared.

The material state of an assessment is kept as a short fingerprint (counts and ids only, nothing
about the patient) with the card it was shown on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hooks.override_reasons import ACCEPTED
from hooks.rules.findings import FINDING_LABELS, REASON_LABELS, Assessment, Suppression


@dataclass(frozen=True)
class StoredSuppression:
    """A clinician's feedback that withholds the referral card for one patient."""

    reason: str
    """An override reason code, or ``referral-accepted``."""
    until: datetime
    fingerprint: str
    """The material state of the assessment the card was shown for."""
    card: str
    """The uuid of the card the feedback was about."""


def fingerprint(assessment: Assessment) -> str:
    """The material state: failed regimens, candidate reasons, findings that change the answer."""
    reasons = ",".join(sorted(assessment.candidate_reasons))
    findings = ",".join(sorted({c.id for c in assessment.contraindications}))
    return f"failed={assessment.failed_adequate_trials};reasons={reasons};findings={findings}"


def _parse(value: str) -> tuple[int, set[str], set[str]]:
    parts = dict(item.partition("=")[::2] for item in value.split(";"))
    try:
        failed = int(parts.get("failed", "0"))
    except ValueError:
        failed = 0

    def names(key: str) -> set[str]:
        return {n for n in parts.get(key, "").split(",") if n}

    return failed, names("reasons"), names("findings")


def material_change(before: str, assessment: Assessment) -> str | None:
    """What changed materially since ``before`` (None: nothing that brings the card back)."""
    failed, reasons, findings = _parse(before)
    _, now_reasons, now_findings = _parse(fingerprint(assessment))
    changes: list[str] = []
    if assessment.failed_adequate_trials > failed:
        changes.append(f"failed adequate regimens {failed} -> {assessment.failed_adequate_trials}")
    added = sorted(now_reasons - reasons)
    if added:
        labels = {str(k): v for k, v in REASON_LABELS.items()}
        changes.append("new candidate reason: " + ", ".join(labels.get(r, r) for r in added))
    appeared = sorted(now_findings - findings)
    cleared = sorted(findings - now_findings)
    if appeared:
        changes.append("now recorded: " + ", ".join(FINDING_LABELS.get(f, f) for f in appeared))
    if cleared:
        changes.append(
            "no longer recorded: " + ", ".join(FINDING_LABELS.get(f, f) for f in cleared)
        )
    return "; ".join(changes) or None


def feedback_suppression(
    assessment: Assessment, stored: StoredSuppression | None, now: datetime
) -> tuple[Suppression | None, str | None]:
    """The suppression a clinician's feedback imposes now (or None), and why an earlier one no
    longer holds (or None)."""
    if stored is None or stored.until <= now:
        return None, None
    change = material_change(stored.fingerprint, assessment)
    if change:
        return (
            None,
            f"the earlier feedback ({_reason_text(stored.reason)}) no longer holds: {change}",
        )
    return (
        Suppression(
            reason=stored.reason if stored.reason == ACCEPTED else f"feedback:{stored.reason}",
            evidence=(f"feedback on card {stored.card}",),
            until=stored.until,
            detail=f"a clinician's feedback on an earlier card: {_reason_text(stored.reason)}",
        ),
        None,
    )


def in_progress_suppression(assessment: Assessment) -> Suppression | None:
    """Treatment or a referral already under way."""
    for progress_id in ("treatment-in-progress", "referral-in-progress"):
        found = assessment.progress(progress_id)
        if found is not None:
            return Suppression(progress_id, found.evidence, found.until, found.detail)
    return None


REASON_TEXT = {
    ACCEPTED: "referral suggestion accepted",
    "action-completed": "already evaluated",
    "indication-order-exists": "referred elsewhere",
    "does-not-align-preferences": "patient declined",
    "action-not-priority": "not clinically appropriate now",
    "snooze-1-month": "snoozed for 1 month",
    "snooze-3-months": "snoozed for 3 months",
}


def _reason_text(reason: str) -> str:
    return REASON_TEXT.get(reason, reason)
