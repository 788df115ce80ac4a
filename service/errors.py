"""The service's one exception tree, and the only place where errors become HTTP responses.

    CdsServiceError                     base; never raised itself
    ├── InvalidHookRequest      400     body is not JSON, misses a required field, wrong hook...
    ├── NotAuthenticated        401     no acceptable credentials (WWW-Authenticate sent)
    ├── ForbiddenFhirServer     403     fhirServer (or a paging link) is not on the allow-list
    ├── UnknownService          404     no CDS service with that id
    ├── PayloadTooLarge         413     body over KETAMINE_CDS_MAX_BODY_BYTES
    ├── DataUnavailable         412     required data neither prefetched nor retrievable
    ├── StoreUnavailable        503     the shared store cannot be reached (JWT replay check,
    │                                   feedback): refused, never accepted unchecked; retry later
    └── UpstreamFhirError       502     the EHR's FHIR server failed (used inside gathering)
        ├── UpstreamTemporary           timeouts, 429, 5xx (retried once)
        │   └── DeadlineReached         the hook call's FHIR deadline passed (fhir_gateway)
        └── UpstreamFatal               4xx, redirects, non-FHIR answers
            ├── MalformedAnswer         a 200 that is not what the query asks for (fhir_answers)
            └── QueryFailed             an OperationOutcome reporting an error (fhir_answers)

Inside gathering, an upstream error on a required prefetch key becomes ``DataUnavailable`` (412);
on an optional key it becomes a named data gap that changes the answer (never "nothing found").

Every error body is a FHIR OperationOutcome whose text says what went wrong and what to do; it
never echoes tokens, request bodies or patient data.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from hooks.errors import HookContextError

logger = logging.getLogger(__name__)


class CdsServiceError(Exception):
    status_code = 500
    issue_code = "exception"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidHookRequest(CdsServiceError):
    status_code = 400
    issue_code = "invalid"


class NotAuthenticated(CdsServiceError):
    status_code = 401
    issue_code = "login"


class ForbiddenFhirServer(CdsServiceError):
    status_code = 403
    issue_code = "forbidden"


class UnknownService(CdsServiceError):
    status_code = 404
    issue_code = "not-found"


class PayloadTooLarge(CdsServiceError):
    status_code = 413
    issue_code = "too-costly"


class DataUnavailable(CdsServiceError):
    status_code = 412
    issue_code = "not-found"


class StoreUnavailable(CdsServiceError):
    """The shared store (service/store) did not answer in time or failed. A JWT whose replay
    check cannot be made is refused, and feedback that cannot be committed is not acknowledged,
    so that the EHR retries. The message never names the database or its URL."""

    status_code = 503
    issue_code = "transient"


class UpstreamFhirError(CdsServiceError):
    status_code = 502
    issue_code = "transient"

    def __init__(self, message: str, *, upstream_status: int | None = None) -> None:
        super().__init__(message)
        self.upstream_status = upstream_status
        self.retry_after: float | None = None
        """Seconds the server asked us to wait (``Retry-After``), when it said."""


class UpstreamTemporary(UpstreamFhirError):
    """Timeout, connection failure, 429 or 5xx: worth one quick retry."""


class UpstreamFatal(UpstreamFhirError):
    """4xx, a redirect or an answer that is not FHIR JSON: retrying will not help."""

    issue_code = "processing"


EXCERPT_LIMIT = 40
"""Longest piece of any input an error message quotes."""


def excerpt(value: object, limit: int = EXCERPT_LIMIT) -> str:
    """A short, printable excerpt of an input value for an error message (never the whole)."""
    text = "".join(ch if ch.isprintable() else "?" for ch in str(value)[: limit + 1])
    return text if len(text) <= limit else text[: limit - 1] + "…"


def operation_outcome(message: str, code: str, severity: str = "error") -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": message}],
    }


def _response(
    status: int, message: str, code: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="ketamine-cds", error="invalid_token"'
    if status == 503:
        headers.setdefault("Retry-After", "5")
    return JSONResponse(operation_outcome(message, code), status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CdsServiceError)
    async def _cds_error(request: Request, exc: CdsServiceError) -> JSONResponse:
        logger.info(
            "request refused status=%d error=%s path=%s",
            exc.status_code,
            type(exc).__name__,
            request.url.path,
        )
        return _response(exc.status_code, exc.message, exc.issue_code)

    @app.exception_handler(HookContextError)
    async def _context_error(request: Request, exc: HookContextError) -> JSONResponse:
        return _response(400, str(exc), "invalid")

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _response(400, "the request is not valid", "invalid")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        messages = {404: "no such endpoint", 405: "method not allowed on this endpoint"}
        return _response(
            exc.status_code,
            messages.get(exc.status_code, "request failed"),
            "processing",
            dict(exc.headers or {}),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error path=%s error=%s", request.url.path, type(exc).__name__)
        return _response(500, "internal error; the service log has the details", "exception")
