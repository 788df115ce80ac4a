"""The override reasons the cards offer (checklist item 69: every coding has a display).

Standard codes where one fits: the CDS Hooks 3.0 ballot's override-reason vocabulary
(``http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes``, from AHRQ CDSiC's
"Approaches to Standardizing Override Reasons"), with its displays. CDS Hooks has no snooze
concept; the CDC opioid CDS content's snooze reasons (1 and 3 months, ...) are the precedent for
the two snooze codes, which live in the code system the service owns.

- Order-sign (a critical card): disagreement with the evidence, CDS not applicable, concern about
  outcomes.
- The referral cards (patient-view, order-select): already evaluated, referred elsewhere, patient
  declined, not a priority now, snooze 1 or 3 months. Feedback with one of these withholds the
  referral card for that patient for the reason's window (``KETAMINE_CDS_SUPPRESSION_DAYS``),
  unless the assessment changes materially.
"""

from __future__ import annotations

from hooks.cards import CdsCoding

NON_ADHERENCE = "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"
SERVICE_CODES = "urn:uuid:b07a9c21-21f6-450f-9d5a-a693390bb067"
"""The code system ketamine-cds owns (also in the knowledge's ketamine-evaluation-referral)."""

ORDER_SIGN_REASONS = (
    CdsCoding(
        system=NON_ADHERENCE,
        code="recipient-disagrees-evidence",
        display="Recipient disagrees with recommendation because of issues with the evidence",
    ),
    CdsCoding(
        system=NON_ADHERENCE, code="cds-not-applicable", display="PC CDS does not apply to patient"
    ),
    CdsCoding(
        system=NON_ADHERENCE,
        code="recipient-concerns-outcomes",
        display="Recipient has concerns regarding potential health outcomes",
    ),
)

REFERRAL_REASONS = (
    CdsCoding(
        system=NON_ADHERENCE,
        code="action-completed",
        display="Recommended action was already completed",
    ),
    CdsCoding(
        system=NON_ADHERENCE,
        code="indication-order-exists",
        display="Patient has indication/order for intended action",
    ),
    CdsCoding(
        system=NON_ADHERENCE,
        code="does-not-align-preferences",
        display="Recommendation does not align with patient preferences or values",
    ),
    CdsCoding(
        system=NON_ADHERENCE,
        code="action-not-priority",
        display="Recommended action is not relevant or a priority in current state of health",
    ),
    CdsCoding(
        system=SERVICE_CODES, code="snooze-1-month", display="Snooze for this patient for 1 month"
    ),
    CdsCoding(
        system=SERVICE_CODES, code="snooze-3-months", display="Snooze for this patient for 3 months"
    ),
)
"""Offered on the referral cards; their meanings for a clinician: already evaluated, referred
elsewhere, patient declined, not clinically appropriate now, snooze."""

ACCEPTED = "referral-accepted"
"""The suppression reason of an accepted referral suggestion (not an override code)."""

DEFAULT_SUPPRESSION_DAYS: dict[str, int] = {
    "action-completed": 180,
    "indication-order-exists": 180,
    "does-not-align-preferences": 90,
    "action-not-priority": 30,
    "snooze-1-month": 30,
    "snooze-3-months": 90,
    ACCEPTED: 180,
}
"""How long feedback withholds the referral card for that patient (days), by reason. Already
evaluated or referred elsewhere, and an accepted referral: 180 days, as a completed referral
(``referral_recent_days``). Patient declined: 90 days (the CDC precedent's middle snooze; a
patient's view of a treatment may change, and a material change brings the card back earlier).
Not a priority now: 30 days. Snoozes: as named."""

ALL_CODES = frozenset(c.code for c in (*ORDER_SIGN_REASONS, *REFERRAL_REASONS))
