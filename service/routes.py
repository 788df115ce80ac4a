"""HTTP routes. Thin: authorise -> parse -> gather -> hook.evaluate -> respond."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from hooks.base import HookInput, HookResult, HookService
from hooks.cards import response_json
from hooks.contexts import HookContext
from hooks.rules.findings import pruned
from service import jsonio
from service.auth import authorise
from service.cds_models import FeedbackRequest, HookRequest
from service.deps import AppState, state_of
from service.errors import InvalidHookRequest, PayloadTooLarge, UnknownService, excerpt
from service.fhir_gateway import FhirGateway, check_allowed
from service.gather import Gathered, gather
from service.operations import (
    record_call,
    store_feedback,
    stored_suppression,
    suppress_from_feedback,
)
from service.settings import Settings

logger = logging.getLogger(__name__)

router = APIRouter()


def _service(state: AppState, service_id: str) -> HookService:
    for service in state.registry:
        if service.id == service_id:
            return service
    raise UnknownService(
        f"no CDS service with id {excerpt(service_id)!r}; GET /cds-services lists them"
    )


async def _body(request: Request, state: AppState) -> Any:
    limit = state.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():  # chunked bodies have no Content-Length: count as we go
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is larger than {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        return jsonio.loads(raw)
    except ValueError as exc:
        raise InvalidHookRequest("request body is not valid JSON") from exc


def _validation_message(exc: ValidationError, root: str = "") -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(excerpt(str(p), 30) for p in (root, *error["loc"][:4]) if p) or "body"
        parts.append(f"{where}: {excerpt(error['msg'], 120)}")
    return "; ".join(parts)


def _check_context(service: HookService, hook_request: HookRequest) -> HookContext:
    """The request's context as the hook's typed model, or 400 naming each field at fault."""
    if hook_request.hook != service.hook:
        raise InvalidHookRequest(
            f"service {service.id!r} answers hook {service.hook!r}, "
            f"not {excerpt(hook_request.hook)!r}"
        )
    raw = hook_request.context
    try:
        context = service.context_model.model_validate(raw)
    except ValidationError as exc:
        raise InvalidHookRequest(
            f"context does not fit the {service.hook} hook: {_validation_message(exc, 'context')}"
        ) from exc
    if isinstance(raw.get("patientId"), str) and raw["patientId"].startswith("Patient/"):
        logger.warning("context.patientId had a 'Patient/' prefix; it was removed")
    return context


async def run_hook(
    request: Request, service_id: str, endpoint: str = "service"
) -> tuple[HookService, HookRequest, HookResult, Gathered]:
    state = state_of(request)
    service = _service(state, service_id)
    caller = await authorise(
        state.settings, state.verifier, request.headers.get("authorization"), service.id, endpoint
    )
    body = await _body(request, state)
    try:
        hook_request = HookRequest.model_validate(body)
    except ValidationError as exc:
        raise InvalidHookRequest(f"not a CDS Hooks request: {_validation_message(exc)}") from exc
    context = _check_context(service, hook_request)
    gateway = None
    if hook_request.fhirServer:
        check_allowed(
            hook_request.fhirServer,
            state.settings.fhir_servers_for(caller.client),
            any_loopback=state.settings.allow_unauthenticated,
        )
        token = (
            hook_request.fhirAuthorization.access_token if hook_request.fhirAuthorization else None
        )
        gateway = FhirGateway(
            state.http_client,
            hook_request.fhirServer,
            token=token,
            page_cap=state.settings.fhir_page_cap,
            timeout_seconds=state.settings.fhir_timeout_seconds,
            deadline_seconds=state.settings.fhir_deadline_seconds,
        )
    started = time.perf_counter()
    gathered = await gather(
        service, context=context, prefetch=hook_request.prefetch, gateway=gateway
    )
    gathered_ms = (time.perf_counter() - started) * 1000
    suppression, suppression_gap = await stored_suppression(request, service, hook_request, context)
    hook_input = HookInput(
        context=context,
        resources=gathered.resources,
        gaps=(),
        unreadable=tuple(gathered.unreadable),
        now=state.clock(),
        knowledge=state.knowledge,
        suppression=suppression,
        app_launch_url=_app_launch_url(request, state.settings),
    )
    result = service.evaluate(hook_input)
    if suppression_gap:  # operational, not clinical: in the explanation, not on the card
        result.extra["earlier_feedback"] = suppression_gap
    logger.info(
        "hook answered service=%s hookInstance=%s tenant=%s ruleset=%s cards=%d "
        "recommendation=%s fetched=%s gather_ms=%.1f total_ms=%.1f",
        service.id,
        hook_request.hookInstance[:64],
        (caller.tenant or "-")[:64],
        state.knowledge.ruleset_version,
        len(result.cards),
        result.assessment.recommendation,
        ",".join(gathered.fetched) or "-",
        gathered_ms,
        (time.perf_counter() - started) * 1000,
    )
    record_call(request, service, endpoint, hook_request, caller, result, gathered, context)
    return service, hook_request, result, gathered


def _app_launch_url(request: Request, settings: Settings) -> str:
    """The evidence app's launch URL: under the public base URL when one is set (behind a proxy),
    else under the URL this request came to."""
    base = settings.public_base_url or str(request.base_url)
    return base.rstrip("/") + "/app/launch.html"


def _json(content: dict[str, Any], status: int = 200) -> Response:
    return Response(jsonio.dumps(content), status_code=status, media_type="application/json")


@router.get("/cds-services")
async def discovery(request: Request) -> Response:
    state = state_of(request)
    return _json({"services": [s.discovery_json() for s in state.registry]})


@router.post("/cds-services/{service_id}")
async def call_service(request: Request, service_id: str) -> Response:
    _, _, result, _ = await run_hook(request, service_id)
    return _json(response_json(result.cards))


@router.post("/cds-services/{service_id}/explain")
async def explain(request: Request, service_id: str) -> Response:
    _, _, result, gathered = await run_hook(request, service_id, "explain")
    body = response_json(result.cards)
    body["assessment"] = result.assessment.as_json()
    explanation: dict[str, Any] = {
        "fetched_by_service": gathered.fetched,
        "resources_by_key": {k: len(v) for k, v in gathered.resources.items()},
        "card_kinds": [card.kind for card in result.cards],
    }
    explanation.update(result.extra)
    body["explanation"] = pruned(explanation)  # no null or empty value in any response
    return _json(body)


@router.post("/cds-services/{service_id}/feedback")
async def feedback(request: Request, service_id: str) -> Response:
    state = state_of(request)
    service = _service(state, service_id)
    caller = await authorise(
        state.settings, state.verifier, request.headers.get("authorization"), service.id, "feedback"
    )
    body = await _body(request, state)
    items = body.get("feedback") if isinstance(body, dict) else None
    limit = state.settings.max_feedback_items
    if isinstance(items, list) and len(items) > limit:
        raise PayloadTooLarge(
            f"a feedback body may hold at most {limit} items; send them in several calls"
        )
    try:
        parsed = FeedbackRequest.model_validate(body)
    except ValidationError as exc:
        raise InvalidHookRequest(
            f"not a CDS Hooks feedback body: {_validation_message(exc)}"
        ) from exc
    for item in parsed.feedback:
        # Card and suggestion uuids are ours; reasons are codes. Free-text comments may hold
        # patient data and are never logged (stored only if KETAMINE_CDS_STORE_FEEDBACK_COMMENTS).
        logger.info(
            "feedback service=%s tenant=%s card=%s outcome=%s accepted=%s reason=%s comment=%s",
            service.id,
            (caller.tenant or "-")[:64],
            item.card[:64],
            item.outcome,
            ",".join(s.id[:64] for s in item.acceptedSuggestions or []) or "-",
            (
                item.overrideReason.reason.code[:64]
                if item.overrideReason and item.overrideReason.reason
                else "-"
            ),
            "yes" if item.overrideReason and item.overrideReason.userComment else "no",
        )
    # 200 only once committed; a store outage is a 503 and the EHR sends the items again.
    await store_feedback(request, service.id, caller, parsed.feedback)
    await suppress_from_feedback(request, parsed.feedback)
    return Response(status_code=200)


@router.get("/healthz")
async def health(request: Request) -> JSONResponse:
    state = state_of(request)
    return JSONResponse({"status": "ok", "ruleset": state.knowledge.ruleset_version})
