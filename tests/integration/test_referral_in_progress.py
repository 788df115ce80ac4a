"""Issue 12 on a real FHIR server: the clinician accepts the referral card's suggestion, the EHR
writes the ServiceRequest it proposes to the server, and the next patient-view shows no referral
card (in both modes: the prefetch filled from the server, and the service querying it).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from ehr.fhir_http import fhir_client
from ehr.scenarios import scenario_index
from ehr.seeding import seed
from integration.fhir_server import FhirTestServer
from tests.integration.conftest import TODAY
from tests.integration.helpers import assert_sound, fire

PREFIX = "accepted-"


def _seed_patient(base_url: str) -> str:
    entries = [e for e in scenario_index() if e["patient_id"] == "trd-two-switches"]

    async def run() -> str:
        async with fhir_client(None) as fhir:
            [result] = await seed(fhir, base_url, entries, today=TODAY, prefix=PREFIX)
        return result.patient_id

    return asyncio.run(run())


def test_accepted_referral_written_to_the_server_withholds_the_next_referral_card(
    fhir_server: FhirTestServer,
) -> None:
    """Verify that the ServiceRequest the referral card proposes, once the EHR has created it on
    the FHIR server, is known as a referral in progress: no referral card next time."""
    patient_id = _seed_patient(fhir_server.base_url)
    first = fire(fhir_server.base_url, patient_id)
    assert_sound(first)
    [card] = [c for c in first.cards if c.get("suggestions")]
    [action] = card["suggestions"][0]["actions"]
    proposed: dict[str, Any] = dict(action["resource"])
    assert proposed["resourceType"] == "ServiceRequest"
    assert proposed["subject"] == {"reference": f"Patient/{patient_id}"}
    proposed.pop("id")  # the EHR creates it; the server assigns the id
    with httpx.Client(timeout=30) as client:
        created = client.post(
            f"{fhir_server.base_url}/ServiceRequest",
            json=proposed,
            headers={"Content-Type": "application/fhir+json"},
        )
    assert created.status_code == 201, created.text
    stored = created.json()

    second = fire(fhir_server.base_url, patient_id)
    assert_sound(second)
    assert second.cards == []
    assessment = second.assessment
    assert assessment["recommendation"] == "refer-for-evaluation"
    assert assessment["suppression"]["reason"] == "referral-in-progress"
    assert assessment["suppression"]["withheld"] == ["screen-referral"]
    assert f"ServiceRequest/{stored['id']}" in assessment["suppression"]["evidence"]
    assert second.fetch.body["explanation"]["resources_by_key"]["serviceRequests"] == 1
