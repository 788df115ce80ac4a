"""Firing hooks at a real FHIR server through the EHR side's client code (``ehr``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from ehr.prefetch_fill import PrefetchRead
from ehr.service_client import invoke, service_client
from tests.conformance import assert_conformant_response, strip_volatile
from tests.factories import NOW

ALL_KEYS = {
    "patient",
    "conditions",
    "medicationRequests",
    "medicationStatements",
    "observations",
    "allergies",
    "medicationAdministrations",
    "medicationDispenses",
    "serviceRequests",
}


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    read: PrefetchRead | None


@dataclass
class BothModes:
    prefetch: Answer
    fetch: Answer
    plain: Answer
    """The non-explain endpoint, no prefetch (what an EHR without prefetch gets)."""

    @property
    def assessment(self) -> dict[str, Any]:
        return self.fetch.body["assessment"]

    @property
    def cards(self) -> list[dict[str, Any]]:
        return self.fetch.body["cards"]


async def _both_modes(
    base_url: str,
    patient_id: str,
    hook_or_service: str,
    draft_orders: list[dict[str, Any]] | None,
    page_cap: int | None,
) -> BothModes:
    async with service_client(
        None, fhir_server=base_url, clock=lambda: NOW, page_cap=page_cap
    ) as client:
        answers = []
        for prefetch, explain in ((True, True), (False, True), (False, False)):
            invocation = await invoke(
                client,
                hook_or_service,
                fhir_server=base_url,
                patient_id=patient_id,
                draft_orders=draft_orders,
                prefetch=prefetch,
                explain=explain,
            )
            response = invocation.response
            body = (
                response.json() if response.headers.get("content-type", "").endswith("json") else {}
            )
            answers.append(Answer(response.status_code, body, invocation.read))
    return BothModes(*answers)


def fire(
    base_url: str,
    patient_id: str,
    hook_or_service: str = "patient-view",
    *,
    draft_orders: list[dict[str, Any]] | None = None,
    page_cap: int | None = None,
) -> BothModes:
    """The hook for one patient: prefetch filled from the server, and no prefetch at all."""
    return asyncio.run(_both_modes(base_url, patient_id, hook_or_service, draft_orders, page_cap))


def assert_sound(result: BothModes) -> None:
    """200 in both modes, conformant cards, identical answers, and who queried what."""
    for answer in (result.prefetch, result.fetch, result.plain):
        assert answer.status == 200, (answer.status, answer.body)
    assert_conformant_response(result.plain.body)
    assert_conformant_response({"cards": result.prefetch.body["cards"]})
    assert_conformant_response({"cards": result.fetch.body["cards"]})
    assert result.prefetch.read is not None and not result.prefetch.read.problems, (
        result.prefetch.read
    )
    assert result.prefetch.body["assessment"] == result.fetch.body["assessment"]
    assert strip_volatile(result.prefetch.body["cards"]) == strip_volatile(
        result.fetch.body["cards"]
    )
    assert strip_volatile(result.plain.body["cards"]) == strip_volatile(result.fetch.body["cards"])
    assert result.prefetch.body["explanation"].get("fetched_by_service", []) == []
    assert set(result.fetch.body["explanation"].get("fetched_by_service", [])) == ALL_KEYS
    assert (
        result.prefetch.body["explanation"]["resources_by_key"]
        == result.fetch.body["explanation"]["resources_by_key"]
    )
