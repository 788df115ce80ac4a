"""The store's tables (SQLAlchemy 2 declarative models). The schema itself is created and changed
only by the Alembic migrations in ``migrations/versions``; a test checks that the two agree.

The card log, feedback and token tables link to no patient: no patient id, name, resource, or
hash of any of them. A hook call is known by its service, the EHR's ``hookInstance``, the client
(``iss``, ``tenant``) and what the service answered; a card by the uuid the service gave it and
its template (``kind``); feedback by that card uuid. JWT ids are kept as a digest only, until the
token expires.

**Patient data**: ``referral_card`` and ``suppression`` hold a keyed hash (HMAC-SHA256 under
``KETAMINE_CDS_SUPPRESSION_SECRET``) of the FHIR server and patient id, because a clinician's
feedback must withhold the referral card for that patient only. A keyed hash of a patient id is
still patient data (HIPAA): these two tables keep nothing else about the patient, and each row
only until its window ends (``referral_card``: the days in which feedback on the card can come;
``suppression``: the reason's window). They are empty when no secret is set.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Column sizes: what the service writes is short (ids of its own, codes); what a client sends
# (tenant, override reason code, suggestion ids) is cut to these lengths before it is stored.
ID_CHARS = 64
CODE_CHARS = 128
URI_CHARS = 255


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime in and out; stored as a naive UTC timestamp on every backend (SQLite
    has no time zones), so that comparisons and grouping mean the same everywhere."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the store keeps aware datetimes only")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


# SQLite makes only an INTEGER PRIMARY KEY an auto-increment rowid.
BIG_ID = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class TokenUse(Base):
    """A JWT accepted once: the digest of (iss, jti), kept until the token expires."""

    __tablename__ = "token_use"

    key: Mapped[str] = mapped_column(String(ID_CHARS), primary_key=True)
    """sha256 hex of ``iss`` and ``jti``: unique, so that a second insert fails."""
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class HookCall(Base):
    """One answered hook or explain call (the card log's header row)."""

    __tablename__ = "hook_call"

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    """``at``'s UTC date, for grouping by day and week the same way on every backend."""
    service_id: Mapped[str] = mapped_column(String(ID_CHARS))
    endpoint: Mapped[str] = mapped_column(String(16))
    """``service`` (the hook) or ``explain``."""
    hook_instance: Mapped[str] = mapped_column(String(CODE_CHARS))
    client_iss: Mapped[str | None] = mapped_column(String(URI_CHARS))
    """The JWT issuer (a configured client); none in development mode."""
    tenant: Mapped[str | None] = mapped_column(String(CODE_CHARS))
    ruleset_version: Mapped[str] = mapped_column(String(32))
    recommendation: Mapped[str] = mapped_column(String(32))
    card_count: Mapped[int] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    """From the request's arrival to the answer's evaluation (before it is written out)."""
    data_source: Mapped[str] = mapped_column(String(16))
    """``prefetch`` (all from the request), ``fetched`` (all queried), ``mixed`` or ``none``."""
    prefetch_keys: Mapped[str] = mapped_column(String(URI_CHARS))
    """Comma-separated names of the service's prefetch keys the EHR sent."""
    fetched_keys: Mapped[str] = mapped_column(String(URI_CHARS))
    """Comma-separated names of the keys the service queried itself."""
    incomplete_sources: Mapped[int] = mapped_column(Integer)
    """How many optional sources could not be read in full (data gaps from failures)."""
    suppressed: Mapped[str | None] = mapped_column(String(CODE_CHARS))
    """Why a card the assessment called for was withheld (treatment or referral in progress,
    feedback), if one was; the report counts them."""


class CardShown(Base):
    """A card the service returned, by the uuid it gave it."""

    __tablename__ = "card_shown"

    uuid: Mapped[str] = mapped_column(String(ID_CHARS), primary_key=True)
    call_id: Mapped[int] = mapped_column(
        BIG_ID, ForeignKey("hook_call.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    day: Mapped[date] = mapped_column(Date)
    service_id: Mapped[str] = mapped_column(String(ID_CHARS))
    kind: Mapped[str] = mapped_column(String(32))
    indicator: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(Integer)


class CardFeedback(Base):
    """One CDS Hooks 2.0.1 feedback item, stored once (``key`` is unique)."""

    __tablename__ = "card_feedback"

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(ID_CHARS), unique=True)
    """sha256 hex of the service, the client and the item as sent: a retry is the same key."""
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    service_id: Mapped[str] = mapped_column(String(ID_CHARS))
    client_iss: Mapped[str | None] = mapped_column(String(URI_CHARS))
    tenant: Mapped[str | None] = mapped_column(String(CODE_CHARS))
    card_uuid: Mapped[str] = mapped_column(String(CODE_CHARS), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    accepted_suggestions: Mapped[str] = mapped_column(Text)
    """JSON list of the accepted suggestion uuids."""
    override_system: Mapped[str | None] = mapped_column(String(URI_CHARS))
    override_code: Mapped[str | None] = mapped_column(String(CODE_CHARS))
    has_comment: Mapped[bool] = mapped_column(Boolean)
    comment: Mapped[str | None] = mapped_column(Text)
    """The clinician's free text: kept only with KETAMINE_CDS_STORE_FEEDBACK_COMMENTS=true."""
    outcome_timestamp: Mapped[str] = mapped_column(String(ID_CHARS))
    """As the EHR sent it."""
    outcome_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """``outcome_timestamp`` read as a date-time (none when it cannot be read)."""


class ReferralCard(Base):
    """A referral card shown, by its uuid: whose it was (keyed hash) and the assessment's
    material state, so that feedback on it can withhold the next one. PATIENT DATA (see above)."""

    __tablename__ = "referral_card"

    card_uuid: Mapped[str] = mapped_column(String(ID_CHARS), primary_key=True)
    subject_key: Mapped[str] = mapped_column(String(ID_CHARS))
    """HMAC-SHA256 hex of the FHIR server and patient id."""
    service_id: Mapped[str] = mapped_column(String(ID_CHARS))
    fingerprint: Mapped[str] = mapped_column(String(URI_CHARS))
    """Counts and ids only: failed regimens, candidate reasons, findings."""
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class Suppression(Base):
    """The referral card withheld for one patient until ``until``, because of a clinician's
    feedback. PATIENT DATA (see above)."""

    __tablename__ = "suppression"

    subject_key: Mapped[str] = mapped_column(String(ID_CHARS), primary_key=True)
    reason: Mapped[str] = mapped_column(String(CODE_CHARS))
    """The override reason code, or ``referral-accepted``."""
    fingerprint: Mapped[str] = mapped_column(String(URI_CHARS))
    card_uuid: Mapped[str] = mapped_column(String(ID_CHARS))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    until: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
