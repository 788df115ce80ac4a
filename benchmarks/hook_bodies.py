"""The CDS Hooks requests the benchmark sends for a chart, built by the EHR side (``ehr``).

The chart sits in an in-memory FHIR server and the prefetch is filled from the services'
discovery templates. The order hooks get one draft order each (vortioxetine selected after the
failed trials; IV ketamine 50 mg to sign).
"""

from __future__ import annotations

from typing import Any, Literal

from benchmarks.charts import KETAMINE_IV, VORTIOXETINE_10, ChartSpec, Resource, draft_order
from ehr.hook_request import CdsClient, bearer
from ehr.services import local_service, local_services

EHR_BASE = "https://ehr.example/fhir"
USER = "Practitioner/prac-1"
HOOK_INSTANCE = "bench-0"
HOOK_OF = {s["id"]: s["hook"] for s in local_services()}
"""Hook of each service id, in discovery order (from ``hooks.registry``)."""


def _drafts(service_id: str, pid: str) -> list[Resource]:
    if HOOK_OF[service_id] == "order-select":
        return [draft_order(VORTIOXETINE_10, mid="draft-vortioxetine", pid=pid)]
    if HOOK_OF[service_id] == "order-sign":
        order = draft_order(KETAMINE_IV, mid="draft-ketamine", pid=pid, dose_mg=50, route_iv=True)
        return [order]
    return []


def hook_request_for(
    service_id: str,
    resources: list[Resource],
    *,
    mode: Literal["prefetch", "fetch"] = "prefetch",
    fhir_server: str = EHR_BASE,
    code_filtered: bool = False,
) -> dict[str, Any]:
    """A request for one of our services. ``mode`` "prefetch" fills every key (Observations: all
    of them, an EHR that cannot apply the template's code filter, unless ``code_filtered``);
    "fetch" sends ``fhirServer`` and no prefetch (the service queries everything)."""
    pid = next(r["id"] for r in resources if r["resourceType"] == "Patient")
    ehr = CdsClient(USER, fhir_server, bearer("bench-token", scope="user/*.read"), HOOK_INSTANCE)
    return ehr.request(
        local_service(service_id),
        resources,
        pid,
        mode=mode,
        draft_orders=_drafts(service_id, pid),
        ignore=() if code_filtered else ("code",),
    )


def request_body(spec: ChartSpec, resources: list[Resource], service_id: str) -> dict[str, Any]:
    """The full-prefetch request the benchmark sends for a chart."""
    return hook_request_for(service_id, resources, code_filtered=spec.code_filtered_prefetch)
