"""The FastAPI application: ``create_app()`` wires settings, knowledge, HTTP client and routes."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from fhir_mappers.parse import preload_models
from hooks.registry import build_registry
from hooks.rules.knowledge import Knowledge, default_knowledge
from service import operations as ops
from service.auth import Verifier
from service.deps import AppState, Clock
from service.errors import install_error_handlers
from service.metrics import HookMetricsMiddleware
from service.routes import router
from service.settings import Settings, get_settings
from service.smart_app import install as install_smart_app

logger = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: Settings | None = None,
    *,
    knowledge: Knowledge | None = None,
    clock: Clock | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    freeze_gc: bool = False,
) -> FastAPI:
    """The app. ``freeze_gc`` (set by ``ketamine-cds serve``) imports the FHIR models at start-up
    and moves every start-up object out of the garbage collector's reach (``gc.freeze``), so the
    collections a large request body triggers do not walk ~100k long-lived objects each time
    (heavy-chart p99 254 -> 139 ms in docs/performance.md). Tests leave it off: they create
    hundreds of apps in one process."""
    settings = settings or get_settings()
    # httpx logs full request URLs (patient ids in query strings) at INFO: never let them through,
    # however the app is started.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    knowledge = knowledge or default_knowledge()
    overrides = {
        name: value
        for name, value in (
            ("episode_lookback_weeks", settings.episode_lookback_weeks),
            ("on_treatment_days", settings.on_treatment_days),
            ("referral_recent_days", settings.referral_recent_days),
        )
        if value is not None
    }
    if overrides:
        knowledge = knowledge.with_thresholds(**overrides)
    registry = build_registry(knowledge)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(
            transport=transport,
            follow_redirects=False,
            timeout=httpx.Timeout(settings.fhir_timeout_seconds),
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
        ) as client:
            now = clock or _now
            # The shared store first: start-up stops here when it cannot be reached or its
            # schema is behind (PostgreSQL: `ketamine-cds db upgrade`; SQLite is upgraded).
            operations = ops.Operations(settings, now)
            try:
                await operations.start()
            except BaseException:
                await operations.stop()
                raise
            verifier = None
            if settings.clients:
                verifier = Verifier(
                    settings,
                    client,
                    lambda: now().timestamp(),
                    replay=operations.replay_guard,
                )
            app.state.cds = AppState(
                settings, knowledge, registry, client, now, verifier, operations
            )
            if settings.allow_unauthenticated:
                logger.warning(
                    "DEVELOPMENT MODE: hook calls are accepted without a JWT "
                    "(KETAMINE_CDS_ALLOW_UNAUTHENTICATED=true, bind %s)",
                    settings.bind_host,
                )
            if settings.suppression_secret is None:
                logger.warning(
                    "KETAMINE_CDS_SUPPRESSION_SECRET is not set: feedback never withholds the "
                    "referral card (treatment and referrals in progress still do)"
                )
            if freeze_gc:
                preload_models()
                gc.collect()
                gc.freeze()
            logger.info(
                "service started ruleset=%s services=%d",
                knowledge.ruleset_version,
                len(registry),
            )
            try:
                yield
            finally:
                # After uvicorn has finished the calls in flight: drain the card log, close.
                await operations.stop()

    app = FastAPI(
        title="ketamine-cds",
        description="CDS Hooks 2.0.1 service: TRD screening and ketamine/esketamine safety",
        version="0.1.0",
        lifespan=lifespan,
        # The API documentation describes every endpoint to anyone who asks: off unless the
        # operator turns it on (KETAMINE_CDS_API_DOCS).
        docs_url="/docs" if settings.api_docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.api_docs else None,
    )
    if settings.cors_origin_list:
        # Browser clients such as the public CDS Hooks sandbox. The JWT travels in a header, so
        # credentials are never allowed; preflights need no JWT (checklist section L).
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Accept"],
            allow_credentials=False,
            max_age=600,
        )
    install_error_handlers(app)
    app.include_router(router)
    install_smart_app(app, settings)  # the evidence app under /app/ (service/smart_app.py)
    app.include_router(ops.router)
    app.add_middleware(HookMetricsMiddleware, service_ids=[s.id for s in registry])
    return app
