"""The evidence app: a SMART App Launch 2.x app served under ``/app/``, and the one API it calls.

The app (``service/app_static/``: plain HTML, CSS and JavaScript, with fhirclient, d3 and
Observable Plot vendored) launches from an EHR (``/app/launch.html?iss=...&launch=...``) or
standalone, as a public client with PKCE, then asks this service for the patient's summary and
draws it. It computes no clinical rule: everything it shows comes from ``POST /app/api/summary``,
which runs the same gathering and the same patient-view service as the hooks.

- ``GET /app/api/config``: client id, scopes, redirect URI and the FHIR servers the app may be
  launched against (the page loads it; there is no inline script).
- ``POST /app/api/summary`` with ``{"fhirServer", "patientId"}`` and the SMART access token as
  ``Authorization: Bearer``: the FHIR base is checked against the allow-list (403, nothing sent),
  the data are gathered as the no-prefetch hook path gathers them (``service.gather.gather`` with
  a ``FhirGateway`` holding the token), the patient-view service evaluates them and
  ``hooks.evidence.build`` adds what the charts need. Without a token outside development mode:
  401. A token the FHIR server refuses: 401 or 403 saying so. Required data unavailable: 412, as
  for hooks. Nothing is stored, answers carry ``Cache-Control: no-store``, the token is never
  logged.
- Every answer under ``/app/`` carries a strict Content-Security-Policy (no inline script, no
  eval; ``connect-src`` is the service itself, the allow-listed FHIR servers' origins and
  ``KETAMINE_CDS_APP_CONNECT_SRC``), ``X-Content-Type-Options: nosniff`` and
  ``Referrer-Policy: no-referrer``.

Settings: ``KETAMINE_CDS_APP_CLIENT_ID`` and ``KETAMINE_CDS_APP_FRAME_ANCESTORS`` (in
``service.settings``), and two read here (``AppSettings``):

- ``KETAMINE_CDS_APP_SCOPE`` (``launch openid fhirUser patient/*.rs``): the scopes the app asks
  for (a standalone launch asks ``launch/patient`` instead of ``launch``);
- ``KETAMINE_CDS_APP_CONNECT_SRC`` (empty): extra origins the browser must reach during the
  launch, i.e. the EHRs' authorization servers when they are not on the FHIR server's origin
  (space- or comma-separated, e.g. ``https://authorization.ehr.example``).
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hooks import evidence
from hooks.base import HookInput, HookService
from hooks.contexts import HookContext
from service import jsonio
from service.deps import AppState, state_of
from service.errors import (
    CdsServiceError,
    DataUnavailable,
    NotAuthenticated,
    PayloadTooLarge,
    UpstreamFatal,
)
from service.fhir_gateway import FhirGateway, check_allowed
from service.gather import gather
from service.settings import DEV_FHIR_SERVERS, Settings, is_loopback

logger = logging.getLogger(__name__)

PREFIX = "/app"
STATIC_DIR = Path(__file__).resolve().parent / "app_static"
SUMMARY_MAX_BYTES = 16_384
MAX_TOKEN_CHARS = 16_384
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
BEARER = re.compile(r"^Bearer +([A-Za-z0-9\-._~+/]+=*) *$", re.IGNORECASE)
CSP_SOURCE = re.compile(r"^https?://[A-Za-z0-9.*-]+(?::(?:\d{1,5}|\*))?$")
SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")  # RFC 6749 scope-token
DEV_CONNECT_SOURCES = (
    "http://127.0.0.1:*",
    "http://localhost:*",
    "https://127.0.0.1:*",
    "https://localhost:*",
)
"""Development mode lets the service call FHIR servers on this machine on any port; the browser
may reach them (and a local authorization server) too. CSP cannot name IPv6 literals."""


class AppSettings(BaseSettings):
    """The evidence app's own settings (``KETAMINE_CDS_APP_``), beside ``service.settings``."""

    model_config = SettingsConfigDict(env_prefix="KETAMINE_CDS_APP_", extra="ignore")

    scope: str = "launch openid fhirUser patient/*.rs"
    connect_src: str = ""

    @field_validator("scope")
    @classmethod
    def _scope(cls, value: str) -> str:
        tokens = value.split()
        if not tokens or not all(SCOPE_TOKEN.match(t) for t in tokens):
            raise ValueError(f"KETAMINE_CDS_APP_SCOPE: {value!r} is not a list of OAuth scopes")
        return " ".join(tokens)

    @field_validator("connect_src")
    @classmethod
    def _connect(cls, value: str) -> str:
        sources = value.replace(",", " ").split()
        bad = [s for s in sources if not CSP_SOURCE.match(s.rstrip("/"))]
        if bad:
            raise ValueError(
                f"KETAMINE_CDS_APP_CONNECT_SRC: {bad} are not origins such as "
                "https://authorization.ehr.example"
            )
        return " ".join(s.rstrip("/") for s in sources)


class InvalidSummaryRequest(CdsServiceError):
    status_code = 400
    issue_code = "invalid"


class FhirTokenRefused(CdsServiceError):
    """The FHIR server answered 401 to the app's token (expired, revoked, for another server)."""

    status_code = 401
    issue_code = "login"


class FhirAccessForbidden(CdsServiceError):
    """The FHIR server answered 403 to the app's token for required data (scopes too narrow)."""

    status_code = 403
    issue_code = "forbidden"


class _RefusalWatchingGateway(FhirGateway):
    """A FhirGateway that remembers whether the FHIR server refused the token (401/403)."""

    refused_status: int | None = None
    refused_type: str | None = None

    async def get_json(self, url: str, resource_type: str) -> tuple[dict[str, Any], float]:
        try:
            return await super().get_json(url, resource_type)
        except UpstreamFatal as exc:
            if exc.upstream_status in (401, 403) and self.refused_status != 401:
                self.refused_status = exc.upstream_status
                self.refused_type = resource_type
            raise

    def refusal(self) -> CdsServiceError | None:
        where = self.refused_type or "FHIR"
        if self.refused_status == 401:
            return FhirTokenRefused(
                f"the FHIR server refused the access token (HTTP 401 on {where}): it may have "
                "expired or belong to another server. Launch the app again from the EHR."
            )
        if self.refused_status == 403:
            return FhirAccessForbidden(
                f"the FHIR server refused access with this token (HTTP 403 on {where}): the "
                "scopes granted to the app do not cover the data it needs (Patient, Condition, "
                "MedicationRequest). Ask for patient/*.rs, or launch again."
            )
        return None


router = APIRouter(prefix=PREFIX)


def _app_settings(request: Request) -> AppSettings:
    app_settings: AppSettings = request.app.state.smart_app_settings
    return app_settings


def _patient_view(state: AppState) -> HookService:
    for service in state.registry:
        if service.hook == "patient-view":
            return service
    raise RuntimeError("no patient-view service is registered")  # pragma: no cover


def _bearer(header: str | None, *, required: bool) -> str | None:
    if header is None or not header.strip():
        if required:
            raise NotAuthenticated(
                "no access token: launch the app from the EHR (SMART App Launch) so that it "
                "sends the token it was given as Authorization: Bearer"
            )
        return None
    match = BEARER.match(header) if len(header) <= MAX_TOKEN_CHARS else None
    if match is None:
        raise NotAuthenticated("the Authorization header is not a Bearer access token")
    return match.group(1)


async def _json_body(request: Request) -> Any:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise InvalidSummaryRequest("send the request as JSON (Content-Type: application/json)")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > SUMMARY_MAX_BYTES:
        raise PayloadTooLarge(f"request body is larger than {SUMMARY_MAX_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > SUMMARY_MAX_BYTES:
            raise PayloadTooLarge(f"request body is larger than {SUMMARY_MAX_BYTES} bytes")
        chunks.append(chunk)
    try:
        return orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError as exc:
        raise InvalidSummaryRequest("request body is not valid JSON") from exc


def _summary_request(body: Any) -> tuple[str, str]:
    if not isinstance(body, dict):
        raise InvalidSummaryRequest('expected {"fhirServer": <FHIR base URL>, "patientId": <id>}')
    fhir_server = body.get("fhirServer")
    patient_id = body.get("patientId")
    if not isinstance(fhir_server, str) or not fhir_server.strip():
        raise InvalidSummaryRequest("fhirServer must be the FHIR base URL the app launched on")
    if not isinstance(patient_id, str) or not FHIR_ID.match(patient_id.removeprefix("Patient/")):
        raise InvalidSummaryRequest("patientId must be a FHIR id (letters, digits, '-', '.')")
    return fhir_server.strip().rstrip("/"), patient_id.removeprefix("Patient/")


@router.get("/api/config")
async def config(request: Request) -> Response:
    """What the launch and index pages need: no secret (a public client has none)."""
    state = state_of(request)
    settings = state.settings
    base = settings.public_base_url
    body: dict[str, Any] = {
        "clientId": settings.app_client_id,
        "scope": _app_settings(request).scope,
        "redirectUri": f"{base}{PREFIX}/index.html" if base else "index.html",
        "pkceMode": "required",
        "fhirServers": [p for p in settings.fhir_server_prefixes if p not in DEV_FHIR_SERVERS],
        "allowLoopback": settings.allow_unauthenticated,
        "rulesetVersion": state.knowledge.ruleset_version,
    }
    return Response(jsonio.dumps(body), media_type="application/json")


@router.post("/api/summary")
async def summary(request: Request) -> Response:
    """The patient's assessment, cards and drawing data (see the module docstring)."""
    state = state_of(request)
    settings = state.settings
    token = _bearer(
        request.headers.get("authorization"), required=not settings.allow_unauthenticated
    )
    fhir_server, patient_id = _summary_request(await _json_body(request))
    check_allowed(
        fhir_server, settings.fhir_server_prefixes, any_loopback=settings.allow_unauthenticated
    )
    service = _patient_view(state)
    gateway = _RefusalWatchingGateway(
        state.http_client,
        fhir_server,
        token=token,
        page_cap=settings.fhir_page_cap,
        timeout_seconds=settings.fhir_timeout_seconds,
        deadline_seconds=settings.fhir_deadline_seconds,
    )
    context = HookContext(patientId=patient_id)
    started = time.perf_counter()
    try:
        gathered = await gather(service, context=context, prefetch=None, gateway=gateway)
    except DataUnavailable as exc:
        refusal = gateway.refusal()
        if refusal is not None:
            raise refusal from exc
        raise
    hook_input = HookInput(
        context=context,
        resources=gathered.resources,
        gaps=(),
        now=state.clock(),
        knowledge=state.knowledge,
        unreadable=tuple(gathered.unreadable),
    )
    result = service.evaluate(hook_input)
    body = evidence.build(hook_input, result)
    logger.info(
        "app summary answered service=%s ruleset=%s recommendation=%s trials=%d fetched=%s "
        "total_ms=%.1f",
        service.id,
        state.knowledge.ruleset_version,
        result.assessment.recommendation,
        len(result.assessment.trials),
        ",".join(gathered.fetched) or "-",
        (time.perf_counter() - started) * 1000,
    )
    return Response(jsonio.dumps(body), media_type="application/json")


def connect_sources(settings: Settings, app_settings: AppSettings) -> list[str]:
    """``connect-src``: the service, the allow-listed FHIR servers' origins (the SMART client
    reads their ``.well-known/smart-configuration``), and the configured extra origins (their
    authorization servers' token endpoints)."""
    sources = ["'self'"]
    for prefix in settings.fhir_server_prefixes:
        parts = urlsplit(prefix)
        if settings.allow_unauthenticated and is_loopback(parts.hostname or ""):
            continue
        sources.append(f"{parts.scheme}://{parts.netloc}")
    if settings.allow_unauthenticated:
        sources += DEV_CONNECT_SOURCES
    sources += app_settings.connect_src.split()
    return list(dict.fromkeys(sources))


def content_security_policy(settings: Settings, app_settings: AppSettings) -> str:
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            "font-src 'self'",
            "connect-src " + " ".join(connect_sources(settings, app_settings)),
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            f"frame-ancestors {settings.app_frame_ancestors}",
        )
    )


class SecurityHeaders:
    """Adds the app's security headers to every answer under ``/app`` (errors included), and
    ``Cache-Control: no-store`` to its API answers."""

    def __init__(self, app: ASGIApp, *, csp: str, frame_ancestors: str) -> None:
        self.app = app
        self.headers: list[tuple[bytes, bytes]] = [
            (b"content-security-policy", csp.encode("latin-1")),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
        ]
        if frame_ancestors == "'none'":
            self.headers.append((b"x-frame-options", b"DENY"))
        self.api_headers = [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]
        self.static_headers = [(b"cache-control", b"no-cache")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        extra = self.headers + (
            self.api_headers if path.startswith(PREFIX + "/api/") else self.static_headers
        )
        names = {name for name, _ in extra}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(n, v) for n, v in message.get("headers", []) if n.lower() not in names]
                message = {**message, "headers": kept + extra}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI, settings: Settings) -> None:
    """Mount the app and its API on ``app`` (called once by ``service.main.create_app``)."""
    app_settings = AppSettings()
    app.state.smart_app_settings = app_settings
    app.include_router(router)
    app.mount(PREFIX, StaticFiles(directory=STATIC_DIR, html=True), name="smart-app")
    app.add_middleware(
        SecurityHeaders,
        csp=content_security_policy(settings, app_settings),
        frame_ancestors=settings.app_frame_ancestors,
    )
