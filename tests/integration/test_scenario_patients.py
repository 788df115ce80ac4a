"""The scenario patients (examples/patients) through a real FHIR server, in both modes.

They are loaded by ``ehr.seeding.seed`` (what ``ketamine-cds seed`` runs), then every hook is
fired the way ``ketamine-cds invoke`` fires it: once with the prefetch filled by rendering the
discovery templates against the server (as an EHR would), once with no prefetch at all (the
service queries the server itself, following its paging links). Both must give the result written
in ``examples/patients/index.json``, and the same answer.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest

from ehr.fhir_http import fhir_client
from ehr.scenarios import scenario_draft_orders, scenario_index
from ehr.seeding import SeedResult, scenario_transaction, seed
from integration.fhir_server import FhirTestServer
from tests.integration.conftest import TODAY
from tests.integration.helpers import BothModes, assert_sound, fire
from tests.scenarios.checks import assert_answer, expect_from_index

INDEX = scenario_index()


def check_expected(entry: dict[str, Any], result: BothModes) -> None:
    """The result documented in index.json (the same reading as the app-level scenario tests)."""
    assert_answer(expect_from_index(entry["expected"]), entry["service"], result.fetch.body)


def test_seed_loads_every_scenario_patient_and_a_rerun_duplicates_nothing(
    fhir_server: FhirTestServer, seeded: list[SeedResult]
) -> None:
    """Verify that seeding stores every patient once, with their resources, even when rerun."""
    assert [r.patient_id for r in seeded] == [e["patient_id"] for e in INDEX]
    with httpx.Client(timeout=30) as client:

        def counts() -> tuple[int, int, int]:
            patients = client.get(f"{fhir_server.base_url}/Patient", params={"_count": 200})
            requests = client.get(
                f"{fhir_server.base_url}/MedicationRequest",
                params={"patient": "trd-two-switches", "_count": 200},
            )
            observations = client.get(f"{fhir_server.base_url}/Observation", params={"_count": 1})
            return (
                patients.json()["total"],
                requests.json()["total"],
                observations.json()["total"],
            )

        before = counts()
        again = asyncio.run(_seed_again(fhir_server.base_url))
        assert len(again) == len(INDEX)
        assert counts() == before
    ids = {r.patient_id for r in seeded}
    assert before[0] >= len(INDEX) and len(ids) == len(INDEX)
    assert before[1] == 16  # three courses of monthly renewals: 3 + 3 + 10


async def _seed_again(base_url: str) -> list[SeedResult]:
    async with fhir_client(None) as fhir:
        return await seed(fhir, base_url, INDEX, today=TODAY)


def test_seeded_patient_dates_are_rolled_to_today(
    fhir_server: FhirTestServer, seeded: list[SeedResult]
) -> None:
    """Verify that what is stored is the rolled bundle: the latest BP is 10 days before today."""
    with httpx.Client(timeout=30) as client:
        bundle = client.get(
            f"{fhir_server.base_url}/Observation",
            params={"patient": "trd-two-switches", "code": "http://loinc.org|85354-9"},
        ).json()
    dates = sorted(e["resource"]["effectiveDateTime"][:10] for e in bundle["entry"])
    assert dates[-1] == (TODAY - timedelta(days=10)).isoformat()


@pytest.mark.parametrize("entry", INDEX, ids=[e["patient_id"] for e in INDEX])
def test_scenario_patient_on_real_fhir_server_gives_expected_result_in_both_modes(
    entry: dict[str, Any], fhir_server: FhirTestServer, seeded: list[SeedResult]
) -> None:
    """Verify each scenario's documented result with prefetch and with FHIR queries, identical."""
    drafts = scenario_draft_orders(entry, today=TODAY, patient_id=entry["patient_id"])
    result = fire(fhir_server.base_url, entry["patient_id"], entry["service"], draft_orders=drafts)
    assert_sound(result)
    check_expected(entry, result)


@pytest.mark.parametrize("prefix", ["", "kcds-"])
def test_seed_transactions_are_what_a_hapi_server_accepts(prefix: str) -> None:
    """Verify the shape HAPI needs: valid R4 resources, PUT to client ids that are not purely
    numeric and at most 64 characters, absolute fullUrls matching the request URL, references
    that stay inside the bundle (or are contained)."""
    from fhir.resources.R4B import get_fhir_model_class

    base = "https://hapi.example/baseR4"
    for entry in INDEX:
        bundle = scenario_transaction(entry, base_url=base, today=TODAY, prefix=prefix)
        get_fhir_model_class("Bundle").model_validate(bundle)
        ids = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]}
        for item in bundle["entry"]:
            resource = item["resource"]
            assert item["request"] == {
                "method": "PUT",
                "url": f"{resource['resourceType']}/{resource['id']}",
            }
            assert item["fullUrl"] == f"{base}/{item['request']['url']}"
            assert len(resource["id"]) <= 64 and not resource["id"].isdigit()
            assert resource["id"].startswith(prefix)
            for ref in _references(resource):
                assert ref.startswith("#") or ref in ids, (entry["file"], ref)


def _references(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["reference"]] if isinstance(value.get("reference"), str) else []
        for item in value.values():
            found += _references(item)
        return found
    if isinstance(value, list):
        return [ref for item in value for ref in _references(item)]
    return []
