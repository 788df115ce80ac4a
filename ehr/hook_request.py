"""CDS Hooks requests as an EHR sends them, for all three hooks.

The context holds ``userId`` and ``patientId``, and for the order hooks (``ORDER_HOOKS``) the
draft orders as a collection Bundle, with ``selections`` for ``order-select`` (by default every
draft order). The data go as ``prefetch``, or as ``fhirServer`` (+ ``fhirAuthorization``) for the
service to query, or both. ``prefetched_request`` is the whole request of an EHR whose FHIR
server is an in-memory one: the prefetch filled from the service's discovery templates.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Any

from ehr.memory_fhir import MemoryFhirServer
from ehr.prefetch_fill import prefetch_from_memory
from ehr.services import ORDER_HOOKS


def bearer(token: str, *, scope: str, patient: str | None = None) -> dict[str, Any]:
    """A ``fhirAuthorization`` for a bearer token, good for 5 minutes."""
    authorization: dict[str, Any] = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": scope,
        "subject": "ketamine-cds",
    }
    if patient is not None:
        authorization["patient"] = patient
    return authorization


def hook_context(
    hook: str,
    patient_id: str,
    *,
    user: str,
    draft_orders: Sequence[dict[str, Any]] | None = None,
    selections: Sequence[str] | None = None,
) -> dict[str, Any]:
    context: dict[str, Any] = {"userId": user, "patientId": patient_id}
    if hook in ORDER_HOOKS:
        orders = list(draft_orders or [])
        context["draftOrders"] = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": o} for o in orders],
        }
        if hook == "order-select":
            context["selections"] = list(
                selections or [f"{o['resourceType']}/{o['id']}" for o in orders]
            )
    return context


def hook_request(
    hook: str,
    context: dict[str, Any],
    *,
    prefetch: dict[str, Any] | None = None,
    fhir_server: str | None = None,
    fhir_authorization: dict[str, Any] | None = None,
    hook_instance: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hook": hook,
        "hookInstance": hook_instance or str(uuid.uuid4()),
    }
    if fhir_server is not None:
        body["fhirServer"] = fhir_server
    if fhir_authorization is not None:
        body["fhirAuthorization"] = fhir_authorization
    body["context"] = context
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


def prefetched_request(
    service: dict[str, Any],
    server: MemoryFhirServer,
    patient_id: str,
    *,
    user: str,
    draft_orders: Sequence[dict[str, Any]] | None = None,
    selections: Sequence[str] | None = None,
    ignore: Collection[str] = (),
    hook_instance: str | None = None,
) -> dict[str, Any]:
    """The request for ``service`` (a discovery entry), every template filled from ``server``."""
    context = hook_context(
        service["hook"], patient_id, user=user, draft_orders=draft_orders, selections=selections
    )
    prefetch = prefetch_from_memory(server, service["prefetch"], context, ignore=ignore)
    return hook_request(service["hook"], context, prefetch=prefetch, hook_instance=hook_instance)
