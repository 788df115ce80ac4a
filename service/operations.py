"""Running the service as a health system runs it: the shared store, the card log, feedback,
readiness and metrics, wired into the app.

- ``Operations`` (one per process, started by the app's lifespan): opens the store, brings or
  checks its schema (``service.store.migrate``), runs the card log writer and the periodic purge.
- ``record_call`` (called by the hook and explain routes once the answer is known): the card log
  record (patient-free, built in ``service.store.records``) goes on the writer's queue, and the
  cards are counted in the metrics. Never raises, never waits on the store.
- ``store_feedback`` (the feedback route): commits the items before the route answers 200;
  ``StoreUnavailable`` (503) otherwise, so that the EHR sends them again.
- ``StoreReplayGuard``: JWT ids in the shared store (``service.auth``).
- ``stored_suppression`` / ``referral_card_records`` / ``suppress_from_feedback``: feedback
  that withholds the referral card for one patient, keyed by a keyed hash of the FHIR server and
  patient id (``subject_key``; patient data, kept only for its window; see
  ``service.store.models``). Nothing is kept, and no card withheld, without
  ``KETAMINE_CDS_SUPPRESSION_SECRET``. A store that cannot be read never withholds a card.
- ``router``: ``GET /readyz`` and ``GET /metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from hooks.base import HookResult, HookService
from hooks.contexts import HookContext
from hooks.override_reasons import ACCEPTED
from hooks.rules.suppression import StoredSuppression, fingerprint
from service import metrics
from service.auth import Caller, Rejected
from service.cds_models import FeedbackItem, HookRequest
from service.deps import Clock, state_of
from service.errors import NotAuthenticated, StoreUnavailable, operation_outcome
from service.gather import Gathered
from service.settings import Settings
from service.store import Store
from service.store.cardlog import CardLogWriter
from service.store.records import (
    CardRecord,
    ReferralCardRecord,
    call_record,
    feedback_record,
)

logger = logging.getLogger(__name__)

PURGE_FIRST_DELAY_SECONDS = 60.0
PURGE_INTERVAL_SECONDS = 600.0
"""The purge runs in every worker, a minute after start and then every ten minutes (with some
jitter so that workers and replicas do not all purge at once); each run is bounded."""


class StoreReplayGuard:
    """``service.auth.ReplayGuard`` on the shared store: a JWT id accepted by any worker or
    replica is refused by all of them until the token expires."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def claim(self, iss: str, jti: str, expires_at: float, now: float) -> None:
        first = await self._store.claim_token(
            iss, jti, datetime.fromtimestamp(expires_at, UTC), datetime.fromtimestamp(now, UTC)
        )
        if not first:
            raise Rejected("jti was already used (replay)")


class Operations:
    def __init__(self, settings: Settings, clock: Clock, store: Store | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.store = store if store is not None else Store.open(settings.database_url)
        self.card_log = CardLogWriter(self.store)
        self.replay_guard = StoreReplayGuard(self.store)
        self._purge_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Open the store and check (PostgreSQL) or upgrade (SQLite) its schema; raises
        ``StoreNotMigrated`` or ``StoreUnavailable`` so that start-up stops with the reason."""
        state = await self.store.prepare()
        logger.info("store ready backend=%s schema=%s", self.store.dialect, ",".join(state.current))
        self.card_log.start()
        self._purge_task = asyncio.create_task(self._purge_loop(), name="store-purge")

    async def stop(self) -> None:
        if self._purge_task is not None:
            self._purge_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purge_task
            self._purge_task = None
        await self.card_log.close()
        await self.store.close()

    async def purge_now(self) -> None:
        await self.store.purge(self.clock(), self.settings.card_log_retention_days)

    async def _purge_loop(self) -> None:
        delay = PURGE_FIRST_DELAY_SECONDS
        while True:
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311 (jitter only)
            delay = PURGE_INTERVAL_SECONDS
            with contextlib.suppress(StoreUnavailable):  # counted and logged by the store
                await self.purge_now()


def _operations(request: Request) -> Operations | None:
    operations: Operations | None = state_of(request).operations
    return operations


def record_call(
    request: Request,
    service: HookService,
    endpoint: str,
    hook_request: HookRequest,
    caller: Caller,
    result: HookResult,
    gathered: Gathered,
    context: HookContext,
) -> None:
    """Count the answer's cards and queue its card log record, with its referral cards'
    keyed-hash rows (no waiting, no raising)."""
    state = state_of(request)
    recommendation = result.assessment.recommendation
    shown = [(card.kind, card.indicator) for card in result.cards]
    metrics.cards(service.id, recommendation, shown)
    operations = _operations(request)
    if operations is None:
        return
    started = getattr(request.state, metrics.STARTED_KEY, None)
    latency_ms = (time.perf_counter() - started) * 1000 if started is not None else 0.0
    at = state.clock()
    record = call_record(
        at=at,
        service_id=service.id,
        endpoint=endpoint,
        hook_instance=hook_request.hookInstance,
        client_iss=caller.iss,
        tenant=caller.tenant,
        ruleset_version=state.knowledge.ruleset_version,
        recommendation=recommendation,
        latency_ms=latency_ms,
        template_keys=service.prefetch,
        prefetch_sent=(hook_request.prefetch or {}).keys(),
        fetched=gathered.fetched,
        incomplete_sources=len(gathered.unreadable),
        cards=[CardRecord(card.uuid, card.kind, card.indicator) for card in result.cards],
        suppressed=result.assessment.suppression.reason if result.assessment.suppression else None,
        referral_cards=referral_card_records(
            state.settings, service, hook_request, context, result, at
        ),
    )
    operations.card_log.submit(record)


async def store_feedback(
    request: Request, service_id: str, caller: Caller, items: Sequence[FeedbackItem]
) -> int:
    """Commit the feedback items (a repeated item is stored once); returns how many were new.
    Raises ``StoreUnavailable`` (503) when they could not be committed."""
    state = state_of(request)
    operations = _operations(request)
    if operations is None:
        raise StoreUnavailable("the service's store is not running; try again later")
    received_at = state.clock()
    records = [
        feedback_record(
            service_id=service_id,
            client_iss=caller.iss,
            tenant=caller.tenant,
            item=item,
            received_at=received_at,
            keep_comment=state.settings.store_feedback_comments,
        )
        for item in items
    ]
    stored = await operations.store.add_feedback(records)
    for record in stored:
        metrics.feedback(service_id, record.outcome, record.override_code)
    return len(stored)


# -- feedback that withholds the referral card ----------------------------------------------------

REFERRAL_CARD_KINDS = frozenset({"screen-referral", "select-referral"})
"""The cards whose feedback can withhold the next one for the patient."""
SUPPRESSING_HOOKS = frozenset({"patient-view", "order-select"})
FEEDBACK_WINDOW_DAYS = 30
"""How long after a referral card was shown feedback on it can still withhold the next one (an
EHR sends feedback at once or within its own retry window; 30 days is generous)."""
SUBJECT_KEY_VERSION = "v1"
FEEDBACK_FLUSH_SECONDS = 2.0
"""How long suppressing feedback waits for this process's queued referral cards."""


def subject_key(settings: Settings, fhir_server: str | None, patient_id: str) -> str | None:
    """HMAC-SHA256 (under the suppression secret) of the FHIR server and patient id: the only
    thing the store keeps about a patient. None without a secret (feedback then withholds
    nothing)."""
    if settings.suppression_secret is None:
        return None
    server = (fhir_server or "").rstrip("/").lower()
    message = f"{SUBJECT_KEY_VERSION}|{server}|{patient_id}".encode()
    secret = settings.suppression_secret.get_secret_value().encode()
    return hmac.new(secret, message, "sha256").hexdigest()


async def stored_suppression(
    request: Request, service: HookService, hook_request: HookRequest, context: HookContext
) -> tuple[StoredSuppression | None, str | None]:
    """The feedback suppression in force for this patient, and a data gap when it could not be
    read (then none applies: the card shows)."""
    state = state_of(request)
    operations = _operations(request)
    if service.hook not in SUPPRESSING_HOOKS or operations is None:
        return None, None
    key = subject_key(state.settings, hook_request.fhirServer, context.patientId)
    if key is None:
        return None, None
    try:
        row = await operations.store.suppression_for(key, state.clock())
    except StoreUnavailable:
        return None, "earlier feedback could not be read (the store is unreachable): none applied"
    if row is None:
        return None, None
    return StoredSuppression(row.reason, row.until, row.fingerprint, row.card_uuid), None


def referral_card_records(
    settings: Settings,
    service: HookService,
    hook_request: HookRequest,
    context: HookContext,
    result: HookResult,
    at: datetime,
) -> tuple[ReferralCardRecord, ...]:
    """Each referral card's uuid with the patient's keyed hash and the assessment's material
    state, so that feedback on it can withhold the next one. Written with the call's card log
    record (in the background: a hook call never waits on it); ``suppress_from_feedback`` first
    waits for this process's queue, so feedback on a card just shown finds it."""
    shown = [c for c in result.cards if c.kind in REFERRAL_CARD_KINDS]
    if not shown:
        return ()
    key = subject_key(settings, hook_request.fhirServer, context.patientId)
    if key is None:
        return ()
    expires = (at + timedelta(days=FEEDBACK_WINDOW_DAYS)).astimezone(UTC)
    state_now = fingerprint(result.assessment)
    return tuple(
        ReferralCardRecord(card.uuid, key, service.id, state_now, expires) for card in shown
    )


async def suppress_from_feedback(request: Request, items: Sequence[FeedbackItem]) -> int:
    """Withhold the referral card for the patients whose referral card was overridden with a
    reason that has a window, or whose referral suggestion was accepted. Raises
    ``StoreUnavailable`` (503: the EHR sends the feedback again; it is stored once)."""
    state = state_of(request)
    operations = _operations(request)
    if operations is None or state.settings.suppression_secret is None:
        return 0
    decisions: list[tuple[str, str]] = []
    for item in items:
        if item.outcome == "accepted" and item.acceptedSuggestions:
            decisions.append((item.card[:64], ACCEPTED))
        elif item.outcome == "overridden" and item.overrideReason and item.overrideReason.reason:
            decisions.append((item.card[:64], item.overrideReason.reason.code[:128]))
    if not decisions:
        return 0
    # The referral cards this process showed are written in the background: wait for them, so
    # that feedback on a card just shown finds it (another worker's cards are written within
    # its card log linger, 100 ms).
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(FEEDBACK_FLUSH_SECONDS):
            await operations.card_log.flush()
    return await operations.store.suppress(
        decisions, state.clock().astimezone(UTC), state.settings.suppression_days
    )


# -- readiness and metrics ------------------------------------------------------------------------

router = APIRouter()


@router.get("/readyz")
async def ready(request: Request) -> JSONResponse:
    """Ready for traffic: knowledge loaded and the store reachable at a usable schema. Liveness
    (``/healthz``) never looks at the store."""
    state = state_of(request)
    problems: list[str] = []
    if not state.registry or not state.knowledge.ruleset_version:
        problems.append("the clinical knowledge is not loaded")
    operations = state.operations
    schema: str | None = None
    if operations is None:
        problems.append("the store is not running")
    else:
        try:
            revision = await operations.store.readiness()
        except StoreUnavailable:
            problems.append("the store cannot be reached")
        else:
            schema = ",".join(revision.current) or None
            if not revision.usable:
                problems.append(revision.explain())
    if problems:
        outcome = operation_outcome("; ".join(problems), "transient")
        return JSONResponse(outcome, status_code=503, headers={"Retry-After": "5"})
    body: dict[str, Any] = {
        "status": "ready",
        "ruleset": state.knowledge.ruleset_version,
        "store": operations.store.dialect if operations else None,
        "schema": schema,
    }
    return JSONResponse(body)


@router.get("/metrics")
async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text format; with ``KETAMINE_CDS_METRICS_TOKEN`` set, only for
    ``Authorization: Bearer <token>``."""
    expected = state_of(request).settings.metrics_token
    if expected is not None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        secret = expected.get_secret_value().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), secret):
            raise NotAuthenticated(
                "GET /metrics needs Authorization: Bearer <KETAMINE_CDS_METRICS_TOKEN>"
            )
    body, content_type = await run_in_threadpool(metrics.exposition)
    return Response(body, media_type=content_type)
