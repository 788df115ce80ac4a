"""The full SMART App Launch path: an EHR launch (``launch.html?iss=...&launch=...``) against a
minimal SMART authorization server whose FHIR API needs the token it issued (tests/app/
smart_ehr.py, proxying to Medplum), in headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from integration.fhir_server import FhirTestServer
from service.main import create_app
from tests.app.conftest import explain
from tests.app.servers import ServerThread, console_problems, wait_ready
from tests.app.smart_ehr import SmartEhr
from tests.conftest import make_settings
from tests.factories import NOW

CLIENT_ID = "ketamine-cds-app"


@pytest.fixture(scope="module")
def smart_ehr(app_fhir: FhirTestServer, app_service: ServerThread) -> Iterator[SmartEhr]:
    ehr = SmartEhr(
        upstream=app_fhir.base_url,
        client_id=CLIENT_ID,
        redirect_uri=f"{app_service.base_url}/app/index.html",
    )
    server = ServerThread(ehr.app()).start()
    ehr.base_url = server.base_url
    yield ehr
    server.stop()


def ehr_launch(browser: WebDriver, service: ServerThread, ehr: SmartEhr, patient_id: str) -> str:
    query = urlencode({"iss": ehr.fhir_base, "launch": ehr.launch(patient_id)})
    browser.get(f"{service.base_url}/app/launch.html?{query}")
    return wait_ready(browser)


@pytest.mark.parametrize(
    ("patient_id", "recommendation"),
    [
        ("trd-two-switches", "refer-for-evaluation"),
        ("trd-with-psychosis-history", "not-recommended"),
    ],
    ids=["trd-referral", "contraindicated"],
)
def test_app_ehr_launch_pkce_token_reaches_the_fhir_api_through_the_service(
    patient_id: str,
    recommendation: str,
    browser: WebDriver,
    app_service: ServerThread,
    app_fhir: FhirTestServer,
    smart_ehr: SmartEhr,
    artifacts: Path,
) -> None:
    """Verify that an EHR launch runs discovery, authorize with an S256 challenge, the token
    exchange with the verifier, and that the service reads the FHIR API with the issued token
    and the page shows the launched patient's assessment."""
    smart_ehr.events.clear()
    assert ehr_launch(browser, app_service, smart_ehr, patient_id) == "true"
    browser.save_screenshot(str(artifacts / f"ehr-launch-{patient_id}.png"))
    events = list(smart_ehr.events)
    assert events[:3] == ["smart-configuration", "authorized", "token issued (PKCE S256 verified)"]
    fhir = [e for e in events[3:] if e.startswith("fhir ")]
    assert fhir and all(e.endswith("with token") for e in fhir), events
    assert {e.split()[1] for e in fhir} >= {"Patient", "Condition", "MedicationRequest"}
    assert not [e for e in events if "refused" in e]
    assert browser.find_element(By.ID, "patient-line").text.startswith(f"Patient {patient_id}")
    verdict = browser.find_element(By.ID, "recommendation")
    assert verdict.get_attribute("data-value") == recommendation
    direct = explain(app_service.base_url, app_fhir.base_url, patient_id)["assessment"]
    assert len(browser.find_elements(By.CSS_SELECTOR, "rect.trial-bar")) == len(
        direct.get("trials", [])
    )
    assert console_problems(browser) == []


def test_app_ehr_launch_revoked_token_says_launch_again(
    browser: WebDriver, app_service: ServerThread, smart_ehr: SmartEhr
) -> None:
    """Verify that when the FHIR server stops accepting the app's token, reloading the page
    shows the service's clear error and a link to launch again."""
    assert ehr_launch(browser, app_service, smart_ehr, "one-failed-trial") == "true"
    smart_ehr.tokens.clear()
    smart_ehr.events.clear()
    browser.refresh()
    assert wait_ready(browser) == "error"
    error = browser.find_element(By.ID, "app-error").text
    assert "HTTP 401" in error and "refused the access token" in error
    assert browser.find_element(By.LINK_TEXT, "Launch the app again")
    assert any(e.endswith("refused (no valid token)") for e in smart_ehr.events)
    console_problems(browser)


def test_app_ehr_launch_unknown_launch_stops_at_the_authorization_server(
    browser: WebDriver, app_service: ServerThread, smart_ehr: SmartEhr
) -> None:
    """Verify that the authorization server's refusal (a launch it never issued) ends the flow
    there: no token, no FHIR request."""
    smart_ehr.events.clear()
    query = urlencode({"iss": smart_ehr.fhir_base, "launch": "never-issued"})
    browser.get(f"{app_service.base_url}/app/launch.html?{query}")
    WebDriverWait(browser, 10).until(
        lambda d: "unknown or reused launch" in d.find_element(By.TAG_NAME, "body").text
    )
    assert browser.current_url.startswith(f"{smart_ehr.base_url}/auth/authorize?")
    assert smart_ehr.events == ["smart-configuration", "refused: unknown or reused launch"]


def test_app_standalone_launch_asks_launch_patient_and_shows_the_picked_patient(
    browser: WebDriver, app_service: ServerThread, smart_ehr: SmartEhr
) -> None:
    """Verify that a standalone launch (iss only) asks for launch/patient, completes PKCE and
    shows the patient chosen at the authorization server."""
    smart_ehr.events.clear()
    smart_ehr.standalone_patient = "unknown-doses"
    try:
        query = urlencode({"iss": smart_ehr.fhir_base})
        browser.get(f"{app_service.base_url}/app/launch.html?{query}")
        assert wait_ready(browser) == "true"
    finally:
        smart_ehr.standalone_patient = None
    assert smart_ehr.events[:3] == [
        "smart-configuration",
        "authorized",
        "token issued (PKCE S256 verified)",
    ]
    assert browser.find_element(By.ID, "patient-line").text.startswith("Patient unknown-doses")
    verdict = browser.find_element(By.ID, "recommendation")
    assert verdict.get_attribute("data-value") == "insufficient-data"


@pytest.fixture(scope="module")
def production(app_fhir: FhirTestServer) -> Iterator[tuple[ServerThread, SmartEhr]]:
    """The service outside development mode, allowing only the SMART EHR's FHIR base (so the
    CSP's connect-src holds just that origin), and that EHR."""
    ehr = SmartEhr(upstream=app_fhir.base_url, client_id="prod-client-7", redirect_uri="")
    ehr_server = ServerThread(ehr.app())
    ehr.base_url = ehr_server.base_url
    settings = make_settings(
        allow_unauthenticated=False,
        allowed_fhir_servers=ehr.fhir_base,
        app_client_id="prod-client-7",
    )
    service = ServerThread(create_app(settings, clock=lambda: NOW))
    ehr.redirect_uri = f"{service.base_url}/app/index.html"
    ehr_server.start()
    service.start()
    yield service, ehr
    service.stop()
    ehr_server.stop()


def test_app_ehr_launch_outside_dev_mode_csp_allows_just_the_ehr(
    browser: WebDriver, production: tuple[ServerThread, SmartEhr]
) -> None:
    """Verify that outside development mode the launch completes with the configured client id
    under a CSP whose connect-src is the service and the EHR's origin only, with no violation."""
    service, ehr = production
    console_problems(browser)
    assert ehr_launch(browser, service, ehr, "trd-two-switches") == "true"
    csp = httpx.get(f"{service.base_url}/app/index.html").headers["content-security-policy"]
    connect = next(d for d in csp.split("; ") if d.startswith("connect-src "))
    assert connect == f"connect-src 'self' {ehr.base_url}"
    assert ehr.events[:3] == [
        "smart-configuration",
        "authorized",
        "token issued (PKCE S256 verified)",
    ]
    verdict = browser.find_element(By.ID, "recommendation")
    assert verdict.get_attribute("data-value") == "refer-for-evaluation"
    assert console_problems(browser) == []
