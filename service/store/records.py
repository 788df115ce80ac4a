"""What the service hands the store: plain, patient-free records.

They are built here from the service's own objects by picking fields, never by copying a request
or a resource: a hook call keeps its service, ``hookInstance``, client, rule set, recommendation,
timing and which prefetch keys were sent or fetched (names from the service's own templates);
a card keeps its uuid, template kind and indicator; a feedback item keeps the card uuid, the
outcome, suggestion uuids, the override reason's system and code and the outcome timestamp, and
its free-text comment only when the operator allows it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from service.cds_models import FeedbackItem
from service.store.models import CODE_CHARS, ID_CHARS, URI_CHARS

DataSource = Literal["prefetch", "fetched", "mixed", "none"]
MAX_SUGGESTIONS = 20


def clip(value: str | None, limit: int) -> str | None:
    """A client-sent string cut to its column's size (None stays None)."""
    if value is None:
        return None
    return value[:limit]


@dataclass(frozen=True)
class CardRecord:
    uuid: str
    kind: str
    indicator: str


@dataclass(frozen=True)
class CallRecord:
    at: datetime
    service_id: str
    endpoint: str
    hook_instance: str
    client_iss: str | None
    tenant: str | None
    ruleset_version: str
    recommendation: str
    latency_ms: float
    prefetch_keys: tuple[str, ...]
    fetched_keys: tuple[str, ...]
    incomplete_sources: int
    cards: tuple[CardRecord, ...]
    suppressed: str | None = None
    """Why a card was withheld (``Suppression.reason``), if one was."""
    referral_cards: tuple[ReferralCardRecord, ...] = ()
    """The call's referral cards with the patient's keyed hash (patient data; written in the
    same transaction, into ``referral_card`` only). Empty without the suppression secret."""

    @property
    def data_source(self) -> DataSource:
        if self.prefetch_keys and self.fetched_keys:
            return "mixed"
        if self.prefetch_keys:
            return "prefetch"
        if self.fetched_keys:
            return "fetched"
        return "none"


def call_record(
    *,
    at: datetime,
    service_id: str,
    endpoint: str,
    hook_instance: str,
    client_iss: str | None,
    tenant: str | None,
    ruleset_version: str,
    recommendation: str,
    latency_ms: float,
    template_keys: Iterable[str],
    prefetch_sent: Iterable[str],
    fetched: Iterable[str],
    incomplete_sources: int,
    cards: Iterable[CardRecord],
    suppressed: str | None = None,
    referral_cards: Iterable[ReferralCardRecord] = (),
) -> CallRecord:
    """A call record; prefetch and fetched keys are kept only when they name one of the
    service's own templates (a client's extra keys are not stored)."""
    known = tuple(template_keys)
    sent = set(prefetch_sent)
    queried = set(fetched)
    return CallRecord(
        at=at.astimezone(UTC),
        service_id=service_id[:ID_CHARS],
        endpoint=endpoint,
        hook_instance=hook_instance[:CODE_CHARS],
        client_iss=clip(client_iss, URI_CHARS),
        tenant=clip(tenant, CODE_CHARS),
        ruleset_version=ruleset_version[:32],
        recommendation=recommendation[:32],
        latency_ms=latency_ms,
        prefetch_keys=tuple(k for k in known if k in sent),
        fetched_keys=tuple(k for k in known if k in queried),
        incomplete_sources=incomplete_sources,
        cards=tuple(cards),
        suppressed=clip(suppressed, CODE_CHARS),
        referral_cards=tuple(referral_cards),
    )


@dataclass(frozen=True)
class FeedbackRecord:
    key: str
    received_at: datetime
    service_id: str
    client_iss: str | None
    tenant: str | None
    card_uuid: str
    outcome: str
    accepted_suggestions: tuple[str, ...]
    override_system: str | None
    override_code: str | None
    has_comment: bool
    comment: str | None
    outcome_timestamp: str
    outcome_at: datetime | None

    @property
    def accepted_json(self) -> str:
        return json.dumps(list(self.accepted_suggestions))


def parse_instant(text: str) -> datetime | None:
    """A FHIR instant (``2026-11-27T10:30:00Z``, with an offset) in UTC; None when it is not
    one (no zone, a date only, or not a date at all)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if value.tzinfo is None:
        return None
    return value.astimezone(UTC)


def feedback_key(service_id: str, client_iss: str | None, item: FeedbackItem) -> str:
    """The idempotency key: the same item sent again by the same client for the same service
    (an EHR retry) has the same key, whatever the order of its JSON members."""
    canonical = json.dumps(
        {
            "service": service_id,
            "iss": client_iss,
            "item": item.model_dump(mode="json", exclude_none=True),
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def feedback_record(
    *,
    service_id: str,
    client_iss: str | None,
    tenant: str | None,
    item: FeedbackItem,
    received_at: datetime,
    keep_comment: bool,
) -> FeedbackRecord:
    reason = item.overrideReason.reason if item.overrideReason else None
    comment = item.overrideReason.userComment if item.overrideReason else None
    return FeedbackRecord(
        key=feedback_key(service_id, client_iss, item),
        received_at=received_at.astimezone(UTC),
        service_id=service_id[:ID_CHARS],
        client_iss=clip(client_iss, URI_CHARS),
        tenant=clip(tenant, CODE_CHARS),
        card_uuid=item.card[:CODE_CHARS],
        outcome=item.outcome,
        accepted_suggestions=tuple(
            s.id[:ID_CHARS] for s in (item.acceptedSuggestions or [])[:MAX_SUGGESTIONS]
        ),
        override_system=clip(reason.system, URI_CHARS) if reason else None,
        override_code=clip(reason.code, CODE_CHARS) if reason else None,
        has_comment=bool(comment),
        comment=comment if keep_comment and comment else None,
        outcome_timestamp=item.outcomeTimestamp[:ID_CHARS],
        outcome_at=parse_instant(item.outcomeTimestamp),
    )


def token_key(iss: str, jti: str) -> str:
    """The stored stand-in for a JWT id: a digest of the issuer and the id (the token itself,
    and its id, never reach the store)."""
    return hashlib.sha256(f"{iss}\x00{jti}".encode()).hexdigest()


@dataclass(frozen=True)
class ReferralCardRecord:
    """A referral card shown, for feedback on it to withhold the next one (patient data: a keyed
    hash; see ``service.store.models``)."""

    card_uuid: str
    subject_key: str
    service_id: str
    fingerprint: str
    expires_at: datetime


@dataclass(frozen=True)
class SuppressionRow:
    subject_key: str
    reason: str
    fingerprint: str
    card_uuid: str
    created_at: datetime
    until: datetime
