"""Servers and browser for the evidence app's tests.

- ``app_fhir``: the real FHIR server of the test suite (Medplum, ``integration/``) holding the
  scenario patients the app tests open, seeded as ``ketamine-cds seed`` seeds them;
- ``app_service``: the service in development mode (loopback FHIR allowed, clock frozen at the
  suite's NOW) served by uvicorn on a loopback thread;
- ``browser``: one headless Chromium per test module;
- ``artifacts``: where screenshots go (``$KETAMINE_CDS_TEST_ARTIFACTS``, else a temp folder).

Without Node.js/Medplum or Chromium these tests fail, never skip: the message says what to
install.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from ehr.fhir_http import fhir_client
from ehr.scenarios import scenario_index
from ehr.seeding import SeedResult, seed
from integration.fhir_server import FhirServerError, FhirTestServer, medplum_server
from service.main import create_app
from tests.app.servers import ServerThread, start_chromium
from tests.conftest import make_settings
from tests.factories import NOW

TODAY = NOW.astimezone(UTC).date()
SCREEN = "trd-ketamine-screen"
APP_PATIENTS = (
    "trd-two-switches",
    "trd-with-psychosis-history",
    "unknown-doses",
    "trd-with-uncontrolled-hypertension",
    "one-failed-trial",
    "phq9-non-response",
    "no-recent-bp-is-a-gap",
    "suicidal-ideation-phq9-item9",
    "order-sign-ketamine-overdose",
)
"""The scenario patients the app is opened on (examples/patients/index.json)."""


async def _seed(base_url: str) -> list[SeedResult]:
    entries = [e for e in scenario_index() if e["patient_id"] in APP_PATIENTS]
    async with fhir_client(None) as fhir:
        return await seed(fhir, base_url, entries, today=TODAY)


@pytest.fixture(scope="session")
def app_fhir() -> Iterator[FhirTestServer]:
    """Medplum with the app's scenario patients (small pages, so that paging happens)."""
    try:
        with medplum_server(page_size=10) as server:
            seeded = asyncio.run(_seed(server.base_url))
            assert sorted(r.patient_id for r in seeded) == sorted(APP_PATIENTS)
            yield server
    except FhirServerError as exc:
        pytest.fail(f"cannot start the FHIR test server: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def app_service() -> Iterator[ServerThread]:
    """The service, development mode, on a loopback port."""
    app = create_app(make_settings(), clock=lambda: NOW)
    server = ServerThread(app).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    driver = start_chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("KETAMINE_CDS_TEST_ARTIFACTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("app-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def explain(service_url: str, fhir_base: str, patient_id: str) -> dict[str, Any]:
    """The service's own explanation for the patient, no prefetch (the hooks' path)."""
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": fhir_base,
        "context": {"userId": "Practitioner/app-test", "patientId": patient_id},
    }
    response = httpx.post(f"{service_url}/cds-services/{SCREEN}/explain", json=body, timeout=60)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found
