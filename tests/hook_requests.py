"""Hook requests for the tests: the EHR side's (``ehr.hook_request``) with the tests' user,
fhirServer and token (``ehr.hook_request.CdsClient``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from ehr.hook_request import CdsClient, bearer
from ehr.services import local_service

USER = "Practitioner/example"
TOKEN = "secret-token-abc"
SCOPE = "user/Patient.read user/Condition.read user/MedicationRequest.read"


def _template_codes(service: dict[str, Any]) -> set[str]:
    query = parse_qs(urlsplit(service["prefetch"]["observations"]).query)
    return {token.rpartition("|")[2] for token in query["code"][0].split(",")}


def hook_request(
    service_id: str,
    resources: list[dict[str, Any]],
    *,
    mode: str = "prefetch",
    pid: str = "p1",
    draft_orders: list[dict[str, Any]] | None = None,
    selections: list[str] | None = None,
    fhir_server: str = "https://ehr.example/fhir",
    observation_codes: set[str] | None = None,
) -> dict[str, Any]:
    """``mode`` "prefetch": every template filled from ``resources``; otherwise ``fhirServer``
    and a bearer token. ``observation_codes`` None: the EHR cannot apply the Observation
    template's code filter and sends every Observation; otherwise it applies the filter (the
    codes given must be the template's)."""
    service = local_service(service_id)
    if observation_codes is not None and set(observation_codes) != _template_codes(service):
        raise ValueError("observation_codes must be the observations template's codes")
    ehr = CdsClient(USER, fhir_server, bearer(TOKEN, scope=SCOPE))
    return ehr.request(
        service,
        resources,
        pid,
        mode="prefetch" if mode == "prefetch" else "fetch",
        draft_orders=draft_orders,
        selections=selections,
        ignore=("code",) if observation_codes is None else (),
    )
