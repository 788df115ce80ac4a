"""``Store``: the one class that reads and writes the shared store. No SQL anywhere else.

Operations (each within a deadline; any failure of the database, the driver or the network
becomes ``StoreUnavailable``, counted in ``ketamine_cds_store_errors_total``):

- ``claim_token``: a JWT id is accepted once, everywhere: one atomic insert on a unique key
  (``INSERT ... ON CONFLICT DO UPDATE ... WHERE the old entry has expired RETURNING``). No row
  back means another worker or replica already took it.
- ``record_calls``: card log rows (a hook call and its cards), in batches.
- ``add_feedback``: feedback items, committed before the caller answers; an item already stored
  (same idempotency key) is skipped (``ON CONFLICT DO NOTHING``).
- ``purge``: expired token uses, and card log and feedback rows past the retention, in bounded
  batches.
- ``report_rows``: the grouped counts the committee report is built from.
- ``prepare``, ``upgrade``, ``readiness``: the schema (``service.store.migrate``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, and_, case, cast, delete, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service import metrics
from service.errors import StoreUnavailable
from service.store import migrate
from service.store.engine import describe, make_engine
from service.store.models import (
    CardFeedback,
    CardShown,
    HookCall,
    ReferralCard,
    Suppression,
    TokenUse,
)
from service.store.records import (
    CallRecord,
    FeedbackRecord,
    SuppressionRow,
    token_key,
)

logger = logging.getLogger(__name__)

STORE_TIMEOUT_SECONDS = 5.0
"""Deadline of one store operation on a call's path (a JWT check, a feedback commit)."""
CARD_LOG_TIMEOUT_SECONDS = 30.0
"""Deadline of one card log batch. It is background work: on an event loop kept busy by hook
calls its transaction advances only between them, so it may take longer than an operation a
call waits on, without anything being wrong (measured: over 5 s with the loop saturated)."""
PURGE_BATCH = 5000
PURGE_MAX_BATCHES = 20
"""At most PURGE_BATCH * PURGE_MAX_BATCHES rows per table and purge run: bounded work."""

UNAVAILABLE = "the service's store cannot be reached; try again later"

# Errors that mean "the store failed", not "the code is wrong": the database or its driver
# (SQLAlchemy wraps both drivers' errors), the network, a deadline.
STORE_FAILURES: tuple[type[BaseException], ...] = (SQLAlchemyError, OSError, TimeoutError)


@dataclass(frozen=True)
class PurgeCounts:
    token_uses: int
    cards: int
    calls: int
    feedback: int
    referral_cards: int = 0
    suppressions: int = 0


@dataclass
class ReportRows:
    """Grouped counts for the committee report (``service.report`` turns them into tables)."""

    cards: list[tuple[str, str, str, str | None, date, int]] = field(default_factory=list)
    """(service, kind, outcome or "none", override code, day, cards)."""
    kind_latency: list[tuple[str, str, int, int]] = field(default_factory=list)
    """(service, kind, latency in whole ms, cards)."""
    calls: list[tuple[str, int, int, int]] = field(default_factory=list)
    """(service, latency in whole ms, calls, of which without a card)."""
    unmatched_feedback: int = 0
    """Feedback received in the period for cards the log does not hold (purged, or never
    shown by this deployment)."""
    suppressed: list[tuple[str, str, int]] = field(default_factory=list)
    """(service, why a card was withheld, hook calls)."""


class Store:
    def __init__(self, engine: AsyncEngine, *, timeout: float = STORE_TIMEOUT_SECONDS) -> None:
        self.engine = engine
        self.timeout = timeout

    @classmethod
    def open(cls, url: str, *, timeout: float = STORE_TIMEOUT_SECONDS) -> Store:
        return cls(make_engine(url), timeout=timeout)

    @property
    def description(self) -> str:
        """The database URL without its password."""
        return describe(self.engine.url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def close(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def _guard(self, operation: str, timeout: float | None = None) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(timeout or self.timeout):
                yield
        except STORE_FAILURES as exc:
            metrics.store_error(operation)
            # The type only: driver messages may repeat statements or the server's address.
            logger.warning(
                "store operation failed operation=%s error=%s", operation, type(exc).__name__
            )
            raise StoreUnavailable(UNAVAILABLE) from exc

    # -- schema -----------------------------------------------------------------------------

    async def prepare(self) -> migrate.RevisionState:
        """Start-up: SQLite upgraded in place, PostgreSQL checked (``StoreNotMigrated``)."""
        async with self._guard("prepare", timeout=max(self.timeout, 60.0)):
            return await migrate.prepare(self.engine)

    async def upgrade(self) -> tuple[migrate.RevisionState, migrate.RevisionState]:
        async with self._guard("upgrade", timeout=600.0):
            return await migrate.upgrade(self.engine)

    async def readiness(self) -> migrate.RevisionState:
        """The schema state, read now (raises ``StoreUnavailable`` when unreachable)."""
        async with self._guard("readiness"):
            return await migrate.revision_state(self.engine)

    # -- JWT replay ---------------------------------------------------------------------------

    def _insert(self, table: Any) -> Any:
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    async def claim_token(self, iss: str, jti: str, expires_at: datetime, now: datetime) -> bool:
        """True the first time (iss, jti) is seen while a previous use is still live; False for
        a replay. One statement, atomic on every backend."""
        statement = self._insert(TokenUse).values(key=token_key(iss, jti), expires_at=expires_at)
        statement = statement.on_conflict_do_update(
            index_elements=[TokenUse.key],
            set_={"expires_at": statement.excluded.expires_at},
            where=TokenUse.expires_at < now,
        ).returning(TokenUse.key)
        async with self._guard("token"), self.engine.begin() as connection:
            row = (await connection.execute(statement)).first()
        return row is not None

    # -- card log -----------------------------------------------------------------------------

    async def record_calls(self, calls: Sequence[CallRecord]) -> None:
        if not calls:
            return
        async with (
            self._guard("card_log", timeout=CARD_LOG_TIMEOUT_SECONDS),
            self.engine.begin() as connection,
        ):
            ids = await self._insert_calls(connection, calls)
            cards = [
                {
                    "uuid": card.uuid,
                    "call_id": call_id,
                    "at": call.at,
                    "day": call.at.date(),
                    "service_id": call.service_id,
                    "kind": card.kind,
                    "indicator": card.indicator,
                    "position": position,
                }
                for call, call_id in zip(calls, ids, strict=True)
                for position, card in enumerate(call.cards)
            ]
            if cards:
                await connection.execute(self._insert(CardShown).on_conflict_do_nothing(), cards)
            referrals = [
                {
                    "card_uuid": c.card_uuid,
                    "subject_key": c.subject_key,
                    "service_id": c.service_id,
                    "fingerprint": c.fingerprint,
                    "expires_at": c.expires_at,
                }
                for call in calls
                for c in call.referral_cards
            ]
            if referrals:
                await connection.execute(
                    self._insert(ReferralCard).on_conflict_do_nothing(), referrals
                )

    async def _insert_calls(
        self, connection: AsyncConnection, calls: Sequence[CallRecord]
    ) -> list[int]:
        rows = [
            {
                "at": call.at,
                "day": call.at.date(),
                "service_id": call.service_id,
                "endpoint": call.endpoint,
                "hook_instance": call.hook_instance,
                "client_iss": call.client_iss,
                "tenant": call.tenant,
                "ruleset_version": call.ruleset_version,
                "recommendation": call.recommendation,
                "card_count": len(call.cards),
                "latency_ms": round(call.latency_ms, 3),
                "data_source": call.data_source,
                "prefetch_keys": ",".join(call.prefetch_keys),
                "fetched_keys": ",".join(call.fetched_keys),
                "incomplete_sources": call.incomplete_sources,
                "suppressed": call.suppressed,
            }
            for call in calls
        ]
        statement = self._insert(HookCall).returning(HookCall.id, sort_by_parameter_order=True)
        result = await connection.execute(statement, rows)
        return [int(row[0]) for row in result.all()]

    # -- feedback -----------------------------------------------------------------------------

    async def add_feedback(self, records: Sequence[FeedbackRecord]) -> list[FeedbackRecord]:
        """Commit the items; returns those that were new (not stored before)."""
        unique = list({record.key: record for record in records}.values())
        if not unique:
            return []
        rows = [
            {
                "key": r.key,
                "received_at": r.received_at,
                "service_id": r.service_id,
                "client_iss": r.client_iss,
                "tenant": r.tenant,
                "card_uuid": r.card_uuid,
                "outcome": r.outcome,
                "accepted_suggestions": r.accepted_json,
                "override_system": r.override_system,
                "override_code": r.override_code,
                "has_comment": r.has_comment,
                "comment": r.comment,
                "outcome_timestamp": r.outcome_timestamp,
                "outcome_at": r.outcome_at,
            }
            for r in unique
        ]
        statement = (
            self._insert(CardFeedback)
            .values(rows)
            .on_conflict_do_nothing(index_elements=[CardFeedback.key])
            .returning(CardFeedback.key)
        )
        async with self._guard("feedback"), self.engine.begin() as connection:
            stored = {row[0] for row in (await connection.execute(statement)).all()}
        return [r for r in unique if r.key in stored]

    # -- suppression (patient data: keyed hashes only) ------------------------------------------

    async def suppression_for(self, subject_key: str, now: datetime) -> SuppressionRow | None:
        """The suppression in force for this patient, if any."""
        statement = select(Suppression).where(
            Suppression.subject_key == subject_key, Suppression.until > now
        )
        async with self._guard("suppression"), self.engine.connect() as connection:
            row = (await connection.execute(statement)).mappings().first()
        if row is None:
            return None
        return SuppressionRow(
            subject_key=row["subject_key"],
            reason=row["reason"],
            fingerprint=row["fingerprint"],
            card_uuid=row["card_uuid"],
            created_at=row["created_at"],
            until=row["until"],
        )

    async def suppress(
        self, decisions: Sequence[tuple[str, str]], now: datetime, days: dict[str, int]
    ) -> int:
        """For each (card uuid, reason) whose card is a remembered referral card and whose
        reason has a window: withhold that patient's referral card until now + the window (a
        later decision replaces an earlier one). Returns how many suppressions were set."""
        wanted = {uuid: reason for uuid, reason in decisions if reason in days}
        if not wanted:
            return 0
        async with self._guard("suppression"), self.engine.begin() as connection:
            cards = (
                (
                    await connection.execute(
                        select(ReferralCard).where(ReferralCard.card_uuid.in_(list(wanted)))
                    )
                )
                .mappings()
                .all()
            )
            for card in cards:
                reason = wanted[card["card_uuid"]]
                values = {
                    "subject_key": card["subject_key"],
                    "reason": reason,
                    "fingerprint": card["fingerprint"],
                    "card_uuid": card["card_uuid"],
                    "created_at": now,
                    "until": now + timedelta(days=days[reason]),
                }
                statement = self._insert(Suppression).values(values)
                statement = statement.on_conflict_do_update(
                    index_elements=[Suppression.subject_key],
                    set_={k: v for k, v in values.items() if k != "subject_key"},
                )
                await connection.execute(statement)
        return len(cards)

    # -- retention ----------------------------------------------------------------------------

    async def purge(
        self,
        now: datetime,
        retention_days: int,
        *,
        batch: int = PURGE_BATCH,
        max_batches: int = PURGE_MAX_BATCHES,
    ) -> PurgeCounts:
        """Delete token uses that have expired, and card log rows and feedback older than the
        retention; at most ``batch * max_batches`` rows per table, each batch its own short
        transaction (the next run takes the rest)."""
        cutoff = now - timedelta(days=retention_days)
        targets: list[tuple[Any, Any, Any, datetime]] = [
            (TokenUse, TokenUse.key, TokenUse.expires_at, now),
            (CardShown, CardShown.uuid, CardShown.at, cutoff),
            (HookCall, HookCall.id, HookCall.at, cutoff),
            (CardFeedback, CardFeedback.id, CardFeedback.received_at, cutoff),
            (ReferralCard, ReferralCard.card_uuid, ReferralCard.expires_at, now),
            (Suppression, Suppression.subject_key, Suppression.until, now),
        ]
        counts: list[int] = []
        for table, key, column, before in targets:
            total = 0
            for _ in range(max_batches):
                oldest = select(key).where(column < before).limit(batch).scalar_subquery()
                async with self._guard("purge"), self.engine.begin() as connection:
                    result = await connection.execute(delete(table).where(key.in_(oldest)))
                deleted = max(int(result.rowcount or 0), 0)
                total += deleted
                if deleted < batch:
                    break
            counts.append(total)
        purged = PurgeCounts(*counts)
        if any(counts):
            logger.info(
                "store purged token_uses=%d cards=%d calls=%d feedback=%d referral_cards=%d "
                "suppressions=%d",
                purged.token_uses,
                purged.cards,
                purged.calls,
                purged.feedback,
                purged.referral_cards,
                purged.suppressions,
            )
        return purged

    # -- report -------------------------------------------------------------------------------

    async def report_rows(self, since: datetime, until: datetime) -> ReportRows:
        """Grouped counts over the cards shown by hook calls (not explain calls) in
        [since, until). A card's outcome is that of its latest feedback item (by outcome
        timestamp, then arrival)."""
        shown = and_(CardShown.at >= since, CardShown.at < until)
        hook_calls = HookCall.endpoint == "service"
        latest = (
            select(
                CardFeedback.card_uuid,
                CardFeedback.outcome,
                CardFeedback.override_code,
                func.row_number()
                .over(
                    partition_by=CardFeedback.card_uuid,
                    order_by=(
                        CardFeedback.outcome_at.desc().nulls_last(),
                        CardFeedback.id.desc(),
                    ),
                )
                .label("rank"),
            )
            .where(CardFeedback.card_uuid.in_(select(CardShown.uuid).where(shown)))
            .subquery()
        )
        outcome = latest.c.outcome
        cards_query = (
            select(
                CardShown.service_id,
                CardShown.kind,
                outcome,
                latest.c.override_code,
                CardShown.day,
                func.count(),
            )
            .join(HookCall, HookCall.id == CardShown.call_id)
            .outerjoin(latest, and_(latest.c.card_uuid == CardShown.uuid, latest.c.rank == 1))
            .where(shown, hook_calls)
            .group_by(
                CardShown.service_id,
                CardShown.kind,
                outcome,
                latest.c.override_code,
                CardShown.day,
            )
        )
        whole_ms = cast(HookCall.latency_ms, Integer)
        kind_latency_query = (
            select(CardShown.service_id, CardShown.kind, whole_ms, func.count())
            .join(HookCall, HookCall.id == CardShown.call_id)
            .where(shown, hook_calls)
            .group_by(CardShown.service_id, CardShown.kind, whole_ms)
        )
        no_card = func.sum(case((HookCall.card_count == 0, 1), else_=0))
        calls_query = (
            select(HookCall.service_id, whole_ms, func.count(), no_card)
            .where(HookCall.at >= since, HookCall.at < until, hook_calls)
            .group_by(HookCall.service_id, whole_ms)
        )
        suppressed_query = (
            select(HookCall.service_id, HookCall.suppressed, func.count())
            .where(
                HookCall.at >= since,
                HookCall.at < until,
                hook_calls,
                HookCall.suppressed.is_not(None),
            )
            .group_by(HookCall.service_id, HookCall.suppressed)
        )
        unmatched_query = (
            select(func.count())
            .select_from(CardFeedback)
            .where(
                CardFeedback.received_at >= since,
                CardFeedback.received_at < until,
                ~CardFeedback.card_uuid.in_(select(CardShown.uuid)),
            )
        )
        rows = ReportRows()
        async with self._guard("report", timeout=120.0), self.engine.connect() as connection:
            for row in await connection.execute(cards_query):
                service, kind, result, code, day, count = row
                rows.cards.append(
                    (service, kind, result or "none", code, _as_date(day), int(count))
                )
            for row in await connection.execute(kind_latency_query):
                rows.kind_latency.append((row[0], row[1], int(row[2]), int(row[3])))
            for row in await connection.execute(calls_query):
                rows.calls.append((row[0], int(row[1]), int(row[2]), int(row[3] or 0)))
            rows.unmatched_feedback = int((await connection.execute(unmatched_query)).scalar_one())
            for row in await connection.execute(suppressed_query):
                rows.suppressed.append((row[0], str(row[1]), int(row[2])))
        return rows

    # -- tests and operations -------------------------------------------------------------------

    async def ping(self) -> None:
        async with self._guard("readiness"), self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))
