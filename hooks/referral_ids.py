"""How the service names the referral its cards suggest, so that it knows it again.

The referral suggestion's ServiceRequest carries the code of ``ketamine-evaluation-referral`` (a
knowledge code list) and an identifier in ``REFERRAL_IDENTIFIER_SYSTEM``: a ServiceRequest with
that identifier system is one a clinician accepted from this service's card. The URN is opaque on
purpose (the project has no domain of its own); it never changes.
"""

from __future__ import annotations

REFERRAL_IDENTIFIER_SYSTEM = "urn:uuid:affe5fb4-31ae-4aa1-a491-bfd620cd9b89"
