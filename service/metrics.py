"""Prometheus metrics (``GET /metrics``), with bounded, patient-free labels.

- ``ketamine_cds_hook_calls_total`` and ``ketamine_cds_hook_duration_seconds`` (histogram): by
  service, endpoint (``service``, ``explain``) and HTTP status;
- ``ketamine_cds_cards_total``: by service, kind, indicator and recommendation;
- ``ketamine_cds_fhir_requests_total`` and ``ketamine_cds_fhir_request_duration_seconds``: by
  resource type and status (HTTP code, ``timeout`` or ``error``);
- ``ketamine_cds_jwt_rejections_total``: by the check that failed (``JWT_CHECKS``);
- ``ketamine_cds_feedback_total``: by service, outcome and override reason (a code the cards
  offer, ``none`` or ``other``);
- ``ketamine_cds_store_errors_total``: by operation (``STORE_OPERATIONS``);
- ``ketamine_cds_card_log_records_total``: by result (``written``, ``failed``, ``dropped``).

Every label value comes from a fixed set or from the service's own registry; anything a client
sends that is not in the set becomes ``unknown`` or ``other``. No label ever carries a patient
id, a name, a token or a resource.

Under ``ketamine-cds serve --workers N`` every worker writes its values to the private directory
the supervisor creates (``PROMETHEUS_MULTIPROC_DIR``, prometheus-client's multiprocess mode) and
``/metrics`` answers with the sum over all workers, whichever worker serves the scrape.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from hooks.override_reasons import ALL_CODES

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

HOOK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
FHIR_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)

HOOK_CALLS = Counter(
    "ketamine_cds_hook_calls",
    "Hook and explain calls answered, by service, endpoint and HTTP status",
    ["service", "endpoint", "status"],
)
HOOK_DURATION = Histogram(
    "ketamine_cds_hook_duration_seconds",
    "Time from a hook or explain request's arrival to the end of its answer",
    ["service", "endpoint", "status"],
    buckets=HOOK_BUCKETS,
)
CARDS = Counter(
    "ketamine_cds_cards",
    "Cards returned, by service, card template (kind), indicator and recommendation",
    ["service", "kind", "indicator", "recommendation"],
)
FHIR_REQUESTS = Counter(
    "ketamine_cds_fhir_requests",
    "Requests to EHR FHIR servers, by resource type and status",
    ["resource_type", "status"],
)
FHIR_DURATION = Histogram(
    "ketamine_cds_fhir_request_duration_seconds",
    "Time of one request to an EHR FHIR server",
    ["resource_type", "status"],
    buckets=FHIR_BUCKETS,
)
JWT_REJECTIONS = Counter(
    "ketamine_cds_jwt_rejections",
    "CDS client JWTs refused, by the check that failed",
    ["check"],
)
FEEDBACK = Counter(
    "ketamine_cds_feedback",
    "Card feedback items stored (a repeated item counts once), by outcome and override reason",
    ["service", "outcome", "reason"],
)
STORE_ERRORS = Counter(
    "ketamine_cds_store_errors",
    "Operations on the shared store that failed or timed out",
    ["operation"],
)
CARD_LOG = Counter(
    "ketamine_cds_card_log_records",
    "Card log records (one per hook call): written, failed to write, or dropped (queue full)",
    ["result"],
)

STORE_OPERATIONS = frozenset(
    {
        "prepare",
        "readiness",
        "token",
        "card_log",
        "feedback",
        "suppression",
        "purge",
        "report",
        "upgrade",
    }
)
CARD_LOG_RESULTS = frozenset({"written", "failed", "dropped"})

FHIR_TYPES = frozenset(
    {
        "Patient",
        "Condition",
        "MedicationRequest",
        "MedicationStatement",
        "Medication",
        "Observation",
        "AllergyIntolerance",
    }
)

# Rejected.reason (service/auth.py) -> check. Matched by prefix; anything else is "other" (a
# test reads every reason auth.py can raise and checks that each maps to a named check).
JWT_CHECKS: tuple[tuple[str, str], ...] = (
    ("no bearer token", "missing-token"),
    ("the Authorization header", "missing-token"),
    ("the token is not a well-formed", "malformed"),
    ("typ must be", "malformed"),
    ("the token is invalid", "malformed"),
    ("algorithm ", "algorithm"),
    ("iss is not", "issuer"),
    ("the client's key set", "jwks-unavailable"),
    ("no key in", "key"),
    ("aud is not", "audience"),
    ("the signature", "signature"),
    ("required claim", "claims"),
    ("exp and iat", "claims"),
    ("jti must be", "claims"),
    ("the token has expired", "expired"),
    ("iat is in the future", "not-yet-valid"),
    ("the token is not valid yet", "not-yet-valid"),
    ("jti was already used", "replay"),
    ("too many live tokens", "replay"),
    ("no trusted CDS clients", "no-clients"),
)
JWT_CHECK_VALUES = frozenset(check for _, check in JWT_CHECKS) | {"other"}


def jwt_check(reason: str) -> str:
    for prefix, check in JWT_CHECKS:
        if reason.startswith(prefix):
            return check
    return "other"


OVERRIDE_CODES = ALL_CODES
"""The override reason codes the cards offer; any other code is counted as ``other``."""


def override_label(code: str | None) -> str:
    if code is None:
        return "none"
    return code if code in OVERRIDE_CODES else "other"


def fhir_request(resource_type: str, status: int | str, seconds: float) -> None:
    """One request to an EHR's FHIR server (``service.fhir_gateway``)."""
    rtype = resource_type if resource_type in FHIR_TYPES else "other"
    if isinstance(status, int):
        label = str(status) if 100 <= status <= 599 else "other"
    else:
        label = status if status in ("timeout", "error") else "other"
    FHIR_REQUESTS.labels(rtype, label).inc()
    FHIR_DURATION.labels(rtype, label).observe(max(seconds, 0.0))


def jwt_rejected(reason: str) -> None:
    JWT_REJECTIONS.labels(jwt_check(reason)).inc()


def store_error(operation: str) -> None:
    STORE_ERRORS.labels(operation if operation in STORE_OPERATIONS else "other").inc()


def card_log(result: str, count: int = 1) -> None:
    if count > 0:
        CARD_LOG.labels(result if result in CARD_LOG_RESULTS else "other").inc(count)


def cards(service: str, recommendation: str, shown: Collection[tuple[str, str]]) -> None:
    """The cards of one answer, as (kind, indicator) pairs."""
    for kind, indicator in shown:
        CARDS.labels(service, kind, indicator, recommendation).inc()


def feedback(service: str, outcome: str, reason_code: str | None) -> None:
    FEEDBACK.labels(service, outcome, override_label(reason_code)).inc()


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus text format: summed over every worker's files in multiprocess
    mode, else this process's registry."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


# -- the hook-call timer --------------------------------------------------------------------------

HOOK_PATH = re.compile(r"/cds-services/(?P<service>[^/]+)(?P<explain>/explain)?/?")
STARTED_KEY = "ketamine_cds_started"
"""Where the middleware puts the request's arrival (``perf_counter``) in ``request.state``."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class HookMetricsMiddleware:
    """Times every ``POST /cds-services/{id}`` and ``.../explain`` from arrival to the last
    byte of the answer and counts it by service, endpoint and status, errors included. A path
    naming no registered service is counted as ``unknown``."""

    def __init__(self, app: ASGIApp, service_ids: Collection[str]) -> None:
        self.app = app
        self.service_ids = frozenset(service_ids)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        match = HOOK_PATH.fullmatch(scope.get("path", ""))
        if match is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        scope.setdefault("state", {})[STARTED_KEY] = started
        service = match["service"] if match["service"] in self.service_ids else "unknown"
        endpoint = "explain" if match["explain"] else "service"
        status = 500

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            label = str(status)
            HOOK_CALLS.labels(service, endpoint, label).inc()
            HOOK_DURATION.labels(service, endpoint, label).observe(time.perf_counter() - started)
