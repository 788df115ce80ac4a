"""The FHIR test server: the launcher's messages and what the Node wrapper adds to Medplum."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import httpx
import pytest

from ehr.seeding import put_transaction
from integration import fhir_server as launcher
from integration.fhir_server import FhirTestServer
from tests.integration.conftest import SCENARIO_PAGE_SIZE, started

INSTALL = "install Node.js >= 20 (apt-get install nodejs npm)"


def test_missing_node_fails_the_tests_with_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Verify that without `node` the fixture fails (never skips) and says what to install."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("KETAMINE_CDS_NODE", raising=False)
    with pytest.raises(pytest.fail.Exception, match=r"install Node\.js >= 20 \(apt-get"):
        with started(SCENARIO_PAGE_SIZE):
            pass


def test_too_old_node_is_refused_with_the_same_advice(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Verify that Node 18 is reported as too old, with the install advice."""
    fake = tmp_path / "node"
    fake.write_text("#!/bin/sh\necho v18.19.0\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("KETAMINE_CDS_NODE", str(fake))
    with pytest.raises(launcher.FhirServerError) as exc:
        launcher.node_executable()
    assert "version 18, too old" in str(exc.value) and INSTALL in str(exc.value)


def test_node_20_gets_the_websocket_flag() -> None:
    """Verify the command line: Node 20 needs --experimental-websocket for Medplum."""
    node = launcher.node_executable()
    command = launcher.command(node, page_size=7)
    assert command[-4:] == ["--port", "0", "--page-size", "7"]
    assert ("--experimental-websocket" in command) == (launcher.node_major(node) < 22)
    assert os.path.basename(command[-5]) == "server.mjs"


def test_searches_page_with_next_links_until_the_total(fhir_server: FhirTestServer) -> None:
    """Verify the wrapper's paging: `_count`/`_offset`, `next` until the last page, fullUrls."""
    with httpx.Client(timeout=30) as client:
        client.post(fhir_server.base_url, json=_puts(23, "paging-links", fhir_server))
        url: str | None = f"{fhir_server.base_url}/Observation?patient=paging-links"
        pages, ids = 0, []
        while url:
            bundle = client.get(url).json()
            pages += 1
            assert bundle["total"] == 23
            ids += [e["resource"]["id"] for e in bundle["entry"]]
            assert all(e["fullUrl"].startswith(fhir_server.base_url) for e in bundle["entry"])
            url = next((x["url"] for x in bundle["link"] if x["relation"] == "next"), None)
    assert pages == 3 and len(ids) == len(set(ids)) == 23


def test_patient_search_equals_subject_search(fhir_server: FhirTestServer) -> None:
    """Verify that the `patient=` -> `subject=Patient/` rewrite changes nothing in results."""
    with httpx.Client(timeout=30) as client:
        client.post(fhir_server.base_url, json=_puts(5, "rewrite-check", fhir_server))
        by_patient = client.get(
            f"{fhir_server.base_url}/Observation", params={"patient": "rewrite-check"}
        ).json()
        by_subject = client.get(
            f"{fhir_server.base_url}/Observation", params={"subject": "Patient/rewrite-check"}
        ).json()
    assert by_patient["total"] == by_subject["total"] == 5
    assert [e["resource"]["id"] for e in by_patient["entry"]] == [
        e["resource"]["id"] for e in by_subject["entry"]
    ]


def test_large_put_transaction_is_stored_whole(fhir_server: FhirTestServer) -> None:
    """Verify that a transaction of more than 50 PUTs (Medplum's limit) is stored entirely."""
    with httpx.Client(timeout=30) as client:
        response = client.post(
            fhir_server.base_url, json=_puts(120, "big-transaction", fhir_server)
        )
        assert response.status_code == 200, response.text
        assert response.json()["type"] == "transaction-response"
        assert len(response.json()["entry"]) == 121
        total = client.get(
            f"{fhir_server.base_url}/Observation", params={"patient": "big-transaction"}
        ).json()["total"]
    assert total == 120


def test_reads_creates_and_errors_look_like_a_fhir_server(fhir_server: FhirTestServer) -> None:
    """Verify 404 with an OperationOutcome, 201 with Location, and the request log."""
    with httpx.Client(timeout=30) as client:
        missing = client.get(f"{fhir_server.base_url}/Patient/does-not-exist")
        assert missing.status_code == 404
        assert missing.json()["resourceType"] == "OperationOutcome"
        created = client.post(
            f"{fhir_server.base_url}/Patient",
            content=json.dumps({"resourceType": "Patient", "gender": "other"}),
            headers={"Content-Type": "application/fhir+json"},
        )
        assert created.status_code == 201
        assert created.headers["location"].startswith(f"{fhir_server.base_url}/Patient/")
    assert {"method": "GET", "url": "/fhir/Patient/does-not-exist", "status": 404} in (
        fhir_server.requests()
    )


def _puts(observations: int, pid: str, server: FhirTestServer) -> dict[str, object]:
    resources: list[dict[str, object]] = [{"resourceType": "Patient", "id": pid}]
    resources += [
        {
            "resourceType": "Observation",
            "id": f"{pid}-{n}",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": f"Patient/{pid}"},
            "valueQuantity": {"value": 60 + n, "unit": "/min"},
        }
        for n in range(observations)
    ]
    return put_transaction(resources, base_url=server.base_url)
