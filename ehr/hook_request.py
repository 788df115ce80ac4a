"""CDS Hooks requests as an EHR sends them, for all three hooks.

The context holds ``userId`` and ``patientId``, and for the order hooks (``ORDER_HOOKS``) the
draft orders as a collection Bundle, with ``selections`` for ``order-select`` (by default every
draft order). The data go as ``prefetch``, or as ``fhirServer`` (+ ``fhirAuthorization``) for the
service to query, or both. ``CdsClient.request`` is the whole request of an EHR that holds the
patient's chart: the prefetch filled from the service's discovery templates, or its FHIR server.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal

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
    """The context of ``hook``; draft orders (each with an id) are entries with a ``fullUrl``
    derived from their ``Type/id``."""
    context: dict[str, Any] = {"userId": user, "patientId": patient_id}
    if hook in ORDER_HOOKS:
        refs = [f"{o['resourceType']}/{o['id']}" for o in draft_orders or []]
        context["draftOrders"] = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                {"fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, ref)}", "resource": o}
                for ref, o in zip(refs, draft_orders or [], strict=True)
            ],
        }
        if hook == "order-select":
            context["selections"] = list(selections or refs)
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


@dataclass(frozen=True)
class CdsClient:
    """An EHR as a CDS client: its user, its FHIR server's base URL, the ``fhirAuthorization``
    it hands over, and (for repeatable requests) a fixed ``hookInstance``."""

    user: str
    fhir_server: str
    fhir_authorization: dict[str, Any] | None = None
    hook_instance: str | None = None

    def request(
        self,
        service: dict[str, Any],
        resources: list[dict[str, Any]],
        patient_id: str,
        *,
        mode: Literal["prefetch", "fetch"] = "prefetch",
        draft_orders: Sequence[dict[str, Any]] | None = None,
        selections: Sequence[str] | None = None,
        ignore: Collection[str] = (),
    ) -> dict[str, Any]:
        """The request for ``service`` (a discovery entry) about a patient whose chart is
        ``resources``. "prefetch": every template filled from the chart, held in an in-memory
        FHIR server (``ignore``: search parameters it cannot apply); "fetch": ``fhirServer`` and
        ``fhirAuthorization`` for the service to query."""
        hook = service["hook"]
        context = hook_context(
            hook, patient_id, user=self.user, draft_orders=draft_orders, selections=selections
        )
        if mode == "fetch":
            return hook_request(
                hook,
                context,
                fhir_server=self.fhir_server,
                fhir_authorization=self.fhir_authorization,
                hook_instance=self.hook_instance,
            )
        server = MemoryFhirServer(resources, base=self.fhir_server)
        prefetch = prefetch_from_memory(server, service["prefetch"], context, ignore=ignore)
        return hook_request(hook, context, prefetch=prefetch, hook_instance=self.hook_instance)
