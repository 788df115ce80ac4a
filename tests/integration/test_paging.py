"""The service's FHIR fallback follows paging on a real server (page size 10 here).

A patient with more MedicationRequests and Observations than fit on one page: with no prefetch
the service must request page after page (the server's ``next`` links, ``_offset=10, 20, ...``)
and reach the same answer as with a complete prefetch; with a page cap below the record's size it
must say that the results were truncated.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx

from ehr.seeding import put_transaction
from ehr.service_client import invoke, service_client
from integration.fhir_server import FhirTestServer
from tests.factories import NOW, blood_pressure, course, mdd, patient
from tests.integration.conftest import SCENARIO_PAGE_SIZE
from tests.integration.helpers import assert_sound, fire

PID = "paging-many-records"
SERTRALINE_100 = ("sertraline 100 MG Oral Tablet", "312938")
ESCITALOPRAM_20 = ("escitalopram 20 MG Oral Tablet", "351250")
VENLAFAXINE_150 = ("24 HR venlafaxine 150 MG Extended Release Oral Capsule", "313581")


def many_records() -> list[dict[str, Any]]:
    """Weekly renewals of three antidepressant courses (58 orders), weekly BP for 45 weeks."""
    resources = [
        patient(PID),
        mdd(pid=PID),
        *course(
            SERTRALINE_100[0],
            rxcui=SERTRALINE_100[1],
            start_weeks_ago=60,
            weeks=12,
            every_weeks=1,
            pid=PID,
        ),
        *course(
            ESCITALOPRAM_20[0],
            rxcui=ESCITALOPRAM_20[1],
            start_weeks_ago=47,
            weeks=10,
            every_weeks=1,
            pid=PID,
        ),
        *course(
            VENLAFAXINE_150[0],
            rxcui=VENLAFAXINE_150[1],
            start_weeks_ago=36,
            weeks=36,
            every_weeks=1,
            last_status="active",
            pid=PID,
        ),
        *[blood_pressure(124, 78, days_ago=7 * w + 2, pid=PID) for w in range(45)],
    ]
    for resource in resources:
        if resource["resourceType"] != "Patient":
            resource["id"] = f"{PID}-{resource['id']}"
    return resources


def load(server: FhirTestServer, resources: list[dict[str, Any]]) -> None:
    bundle = put_transaction(resources, base_url=server.base_url)
    response = httpx.post(
        server.base_url,
        content=json.dumps(bundle),
        headers={"Content-Type": "application/fhir+json"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["entry"]) == len(resources)


def offsets(log: list[dict[str, Any]], resource_type: str) -> list[int]:
    """The ``_offset`` of each search of that type in the server's log (0 for the first page)."""
    found = []
    for request in log:
        url = request["url"]
        if request["method"] == "GET" and url.startswith(f"/fhir/{resource_type}?"):
            assert request["status"] == 200, request
            match = re.search(r"[?&]_offset=(\d+)", url)
            found.append(int(match.group(1)) if match else 0)
    return found


async def _no_prefetch_explain(base_url: str, page_cap: int | None) -> dict[str, Any]:
    async with service_client(
        None, fhir_server=base_url, clock=lambda: NOW, page_cap=page_cap
    ) as client:
        invocation = await invoke(
            client,
            "patient-view",
            fhir_server=base_url,
            patient_id=PID,
            prefetch=False,
            explain=True,
        )
    assert invocation.response.status_code == 200, invocation.response.text
    body: dict[str, Any] = invocation.response.json()
    return body


def test_fallback_queries_follow_every_page_and_match_prefetch(
    fhir_server: FhirTestServer, seeded: Any
) -> None:
    """Verify that the service reads pages 2..n itself, and its answer equals prefetch mode."""
    resources = many_records()
    load(fhir_server, resources)
    orders = sum(r["resourceType"] == "MedicationRequest" for r in resources)
    pressures = sum(r["resourceType"] == "Observation" for r in resources)
    assert orders == 58 and pressures == 45

    fhir_server.clear_requests()
    body = asyncio.run(_no_prefetch_explain(fhir_server.base_url, None))
    log = fhir_server.requests()
    size = SCENARIO_PAGE_SIZE
    assert offsets(log, "MedicationRequest") == list(range(0, orders, size))  # 6 pages
    assert offsets(log, "Observation") == list(range(0, pressures, size))  # 5 pages
    assert offsets(log, "Condition") == [0]
    assert body["explanation"]["resources_by_key"]["medicationRequests"] == orders
    assert body["explanation"]["resources_by_key"]["observations"] == pressures
    assert not any("truncated" in gap for gap in body["assessment"].get("data_gaps", []))
    assert body["assessment"]["recommendation"] == "refer-for-evaluation"
    assert body["assessment"]["failed_adequate_trials"] == 2

    both = fire(fhir_server.base_url, PID)
    assert_sound(both)  # prefetch (read page by page by the client) == no prefetch
    assert both.prefetch.read is not None
    assert both.prefetch.read.pages["medicationRequests"] == 6
    assert both.assessment == body["assessment"]


def test_page_cap_below_the_record_is_reported_as_truncation(
    fhir_server: FhirTestServer, seeded: Any
) -> None:
    """Verify that stopping at the page cap is never silent: a data gap names the query."""
    load(fhir_server, many_records())
    fhir_server.clear_requests()
    body = asyncio.run(_no_prefetch_explain(fhir_server.base_url, 3))
    assert offsets(fhir_server.requests(), "MedicationRequest") == [0, 10, 20]
    assert any(
        gap.startswith("medicationRequests: results truncated after 3 pages")
        for gap in body["assessment"].get("data_gaps", [])
    ), body["assessment"].get("data_gaps", [])


def test_truncation_gap_does_not_claim_the_skipped_records_are_older(
    fhir_server: FhirTestServer, seeded: Any
) -> None:
    """Verify the truncation gap does not say "older records" when the newest were skipped.

    FHIR defines no default search order; this server (like HAPI without ``_sort``) returns the
    orders oldest first, so stopping after 3 pages skips the 28 NEWEST orders, among them the
    active venlafaxine (its ongoing trial is then reported as ended "adequate-not-failed"). The
    gap must not tell the clinician that only older records were left unchecked.
    BUG (service/gather.py, _take): the text is "results truncated after N pages; older records
    not checked". Suggested: "results truncated after N pages (30 of 58 read); the rest were not
    checked" (Bundle.total gives 58), and request bigger pages in the fallback (``_count``).
    """
    load(fhir_server, many_records())
    body = asyncio.run(_no_prefetch_explain(fhir_server.base_url, 3))
    venlafaxine = next(
        t for t in body["assessment"].get("trials", []) if t["ingredient"] == "venlafaxine"
    )
    assert venlafaxine["outcome"] == "adequate-not-failed"  # the active orders were not read
    gap = next(
        g
        for g in body["assessment"].get("data_gaps", [])
        if g.startswith("medicationRequests: results")
    )
    assert "older records" not in gap, gap
