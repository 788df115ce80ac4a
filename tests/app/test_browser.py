"""The evidence app in headless Chromium against the real FHIR server (Medplum) and the service
(development mode, on a loopback thread): open-server launches of scenario patients, the page's
DOM checked against the service's own explanation for the same patient, screenshots, keyboard
use, axe-core, the CSP, the laptop-screen fit and print."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from hooks.evidence import CONTRAINDICATION_IDS
from hooks.render import OUTCOME_TEXT
from integration.fhir_server import FhirTestServer
from tests.app.conftest import explain
from tests.app.servers import ServerThread, console_problems, run_axe, wait_ready

OPEN_LAUNCHES = {
    "trd-two-switches": "refer-for-evaluation",
    "trd-with-psychosis-history": "not-recommended",
    "unknown-doses": "insufficient-data",
    "trd-with-uncontrolled-hypertension": "not-recommended",
    "one-failed-trial": "not-a-candidate",
    "phq9-non-response": "refer-for-evaluation",
    "no-recent-bp-is-a-gap": "refer-for-evaluation",
    "suicidal-ideation-phq9-item9": "not-a-candidate",
}
"""Scenario patient -> the recommendation examples/patients/index.json documents."""


def open_patient(
    browser: WebDriver, service: ServerThread, fhir: FhirTestServer, patient_id: str
) -> str:
    query = urlencode({"fhirServiceUrl": fhir.base_url, "patientId": patient_id})
    browser.get(f"{service.base_url}/app/launch.html?{query}")
    return wait_ready(browser)


def expected_statuses(assessment: dict[str, Any]) -> dict[str, str]:
    """The checklist the service's assessment implies: its contraindication screens."""
    return {s["id"]: s["status"] for s in assessment["screens"] if s["kind"] == "contraindication"}


def bars(browser: WebDriver) -> list[WebElement]:
    found = browser.find_elements(By.CSS_SELECTOR, "rect.trial-bar")
    return sorted(found, key=lambda b: int(b.get_attribute("data-trial") or -1))


@pytest.mark.parametrize(
    ("patient_id", "recommendation"), list(OPEN_LAUNCHES.items()), ids=list(OPEN_LAUNCHES)
)
def test_app_open_server_launch_page_matches_the_service_assessment(
    patient_id: str,
    recommendation: str,
    browser: WebDriver,
    app_service: ServerThread,
    app_fhir: FhirTestServer,
    artifacts: Path,
) -> None:
    """Verify that the page shows, for each patient, the service's trial bars (drug, outcome,
    evidence), recommendation, card, eleven checklist states and data gaps, with no console
    error or CSP violation."""
    expected = explain(app_service.base_url, app_fhir.base_url, patient_id)
    assessment = expected["assessment"]
    assert assessment["recommendation"] == recommendation
    console_problems(browser)
    assert open_patient(browser, app_service, app_fhir, patient_id) == "true"
    browser.save_screenshot(str(artifacts / f"{patient_id}.png"))

    trials = assessment.get("trials", [])
    shown = bars(browser)
    assert len(shown) == len(trials)
    for bar, trial in zip(shown, trials, strict=True):
        assert bar.get_attribute("data-ingredient") == trial["ingredient"]
        assert bar.get_attribute("data-outcome") == trial["outcome"]
        label = bar.get_attribute("aria-label") or ""
        assert trial["ingredient"] in label and OUTCOME_TEXT[trial["outcome"]] in label
    chart_text = browser.find_element(By.ID, "timeline-chart").text
    for trial in trials:
        assert trial["ingredient"] in chart_text
        assert OUTCOME_TEXT[trial["outcome"]] in chart_text
    rows = browser.find_elements(By.CSS_SELECTOR, "#trials-table tbody tr")
    assert len(rows) == len(trials)

    verdict = browser.find_element(By.ID, "recommendation")
    assert verdict.get_attribute("data-value") == recommendation
    reasons = browser.find_elements(By.CSS_SELECTOR, "#reasons li[data-reason]")
    assert [r.get_attribute("data-reason") for r in reasons] == assessment.get(
        "candidate_reasons", []
    )
    cards = browser.find_elements(By.CSS_SELECTOR, "#cards .cds-card")
    assert [c.get_attribute("data-indicator") for c in cards] == [
        c["indicator"] for c in expected["cards"]
    ]
    for card, sent in zip(cards, expected["cards"], strict=True):
        assert sent["summary"] in card.text

    items = browser.find_elements(By.CSS_SELECTOR, "#checklist > li")
    statuses = {i.get_attribute("data-id"): i.get_attribute("data-status") for i in items}
    assert list(statuses) == list(CONTRAINDICATION_IDS)
    assert statuses == expected_statuses(assessment)
    for item in items:
        if item.get_attribute("data-status") == "found":
            ci = next(
                c
                for c in assessment.get("contraindications", [])
                if c["id"] == item.get_attribute("data-id")
            )
            assert all(ref in item.text for ref in ci["evidence"])

    gaps = [g.text for g in browser.find_elements(By.CSS_SELECTOR, "#gap-list li.gap")]
    assert gaps == assessment.get("data_gaps", [])
    assert browser.find_element(By.ID, "app-status").text.endswith(
        f"rule set {assessment['ruleset_version']}."
    )
    assert console_problems(browser) == []


CHART_PATIENTS = {
    "phq9-and-item9": "suicidal-ideation-phq9-item9",
    "phq9-totals": "phq9-non-response",
    "bp-and-weight": "order-sign-ketamine-overdose",
}


@pytest.mark.parametrize("patient_id", list(CHART_PATIENTS.values()), ids=list(CHART_PATIENTS))
def test_app_charts_draw_every_point_the_service_sent(
    patient_id: str, browser: WebDriver, app_service: ServerThread, app_fhir: FhirTestServer
) -> None:
    """Verify that the PHQ-9, blood-pressure and weight charts draw one mark per reading of the
    summary (and item 9 answers, positive ones as a labelled line), and their text tables list
    the same readings."""
    response = httpx.post(
        f"{app_service.base_url}/app/api/summary",
        json={"fhirServer": app_fhir.base_url, "patientId": patient_id},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    series = response.json().get("series", {})
    assert open_patient(browser, app_service, app_fhir, patient_id) == "true"

    def dots(chart: str) -> int:
        return len(browser.find_elements(By.CSS_SELECTOR, f"#{chart} svg circle"))

    def rows(table: str) -> int:
        return len(browser.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr"))

    phq9, item9 = series.get("phq9", []), series.get("phq9_item9", [])
    bp, weight = series.get("bp", []), series.get("weight", [])
    assert phq9 or item9 or bp or weight
    assert dots("phq9-chart") == len(phq9)
    positive = [p for p in item9 if p["positive"]]
    chart_text = browser.find_element(By.ID, "phq9-chart").text
    assert chart_text.count("item 9 =") == len(positive)
    assert rows("phq9-table") == len(phq9) + len(item9)
    systolic = [r for r in bp if "systolic" in r]
    diastolic = [r for r in bp if "diastolic" in r]
    assert dots("bp-chart") == len(systolic) + len(diastolic)
    assert rows("bp-table") == len(bp)
    assert dots("weight-chart") == len(weight)
    assert rows("weight-table") == len(weight)
    if bp:
        limit = str(response.json()["thresholds"]["bp_systolic"])
        assert f"{limit} systolic limit" in browser.find_element(By.ID, "bp-chart").text


def _focused_bar(browser: WebDriver, limit: int = 40) -> WebElement:
    body = browser.find_element(By.TAG_NAME, "body")
    body.click()
    for _ in range(limit):
        browser.switch_to.active_element.send_keys(Keys.TAB)
        active = browser.switch_to.active_element
        if "trial-bar" in (active.get_attribute("class") or ""):
            return active
    raise AssertionError("no trial bar could be reached with the Tab key")


def test_app_keyboard_reaches_a_bar_and_shows_its_evidence(
    browser: WebDriver, app_service: ServerThread, app_fhir: FhirTestServer
) -> None:
    """Verify that Tab reaches the first trial bar and Enter shows its orders and renewals in
    the evidence panel (and moves focus there)."""
    patient_id = "trd-two-switches"
    assessment = explain(app_service.base_url, app_fhir.base_url, patient_id)["assessment"]
    assert open_patient(browser, app_service, app_fhir, patient_id) == "true"
    bar = _focused_bar(browser)
    index = int(bar.get_attribute("data-trial") or -1)
    bar.send_keys(Keys.ENTER)
    panel = browser.find_element(By.ID, "evidence-panel")
    WebDriverWait(browser, 5).until(lambda d: panel.get_attribute("data-trial") == str(index))
    refs = [c.text for c in panel.find_elements(By.CSS_SELECTOR, ".ref-list code")]
    assert refs == assessment.get("trials", [])[index]["evidence"]
    assert browser.switch_to.active_element.get_attribute("id") == "evidence-panel"
    assert "selected" in (bar.get_attribute("class") or "")


def test_app_click_on_a_bar_shows_its_evidence(
    browser: WebDriver, app_service: ServerThread, app_fhir: FhirTestServer
) -> None:
    """Verify that clicking a bar shows that course's references."""
    patient_id = "phq9-non-response"
    assessment = explain(app_service.base_url, app_fhir.base_url, patient_id)["assessment"]
    assert open_patient(browser, app_service, app_fhir, patient_id) == "true"
    last = bars(browser)[-1]
    last.click()
    panel = browser.find_element(By.ID, "evidence-panel")
    refs = [c.text for c in panel.find_elements(By.CSS_SELECTOR, ".ref-list code")]
    assert refs == assessment.get("trials", [])[-1]["evidence"]
    assert assessment.get("trials", [])[-1]["ingredient"] in panel.text


@pytest.mark.parametrize(
    "patient_id",
    ["trd-two-switches", "trd-with-psychosis-history", "unknown-doses", "no-recent-bp-is-a-gap"],
)
def test_app_accessibility_axe_no_serious_or_critical_violation(
    patient_id: str, browser: WebDriver, app_service: ServerThread, app_fhir: FhirTestServer
) -> None:
    """Verify that axe-core finds no serious or critical accessibility violation on the page."""
    assert open_patient(browser, app_service, app_fhir, patient_id) == "true"
    violations = run_axe(browser)
    serious = [
        (v["id"], v.get("impact"), [n.get("html", "")[:120] for n in v.get("nodes", [])[:3]])
        for v in violations
        if v.get("impact") in ("serious", "critical")
    ]
    assert serious == []


@pytest.mark.parametrize("patient_id", ["trd-two-switches", "phq9-non-response", "unknown-doses"])
def test_app_typical_chart_fits_a_laptop_screen(
    patient_id: str, browser: WebDriver, app_service: ServerThread, app_fhir: FhirTestServer
) -> None:
    """Verify that a typical chart fits a 1366x768 window with no scrolling either way."""
    assert open_patient(browser, app_service, app_fhir, patient_id) == "true"
    sizes = browser.execute_script(
        "const e = document.documentElement;"
        "return [e.scrollWidth, e.scrollHeight, window.innerWidth, window.innerHeight];"
    )
    width, height, view_width, view_height = sizes
    assert view_width <= 1366 and view_height <= 768
    assert width <= view_width and height <= view_height, sizes


def test_app_csp_enforced_and_violations_reach_the_console(
    browser: WebDriver, app_service: ServerThread, app_fhir: FhirTestServer
) -> None:
    """Verify that the page runs under its CSP (inline script and inline handlers are blocked
    and reported in the console), so the clean consoles of the page tests show that fhirclient,
    d3 and Plot needed no eval, inline script or inline style."""
    assert open_patient(browser, app_service, app_fhir, "trd-two-switches") == "true"
    console_problems(browser)
    browser.execute_script(
        "const s = document.createElement('script'); s.textContent = 'window.injected = 1';"
        "document.body.append(s);"
        "const b = document.createElement('button'); b.id = 'probe';"
        "b.setAttribute('onclick', 'window.clicked = 1'); document.body.append(b); b.click();"
    )
    assert browser.execute_script("return [window.injected, window.clicked]") == [None, None]
    reports = [p for p in console_problems(browser) if "Content Security Policy" in p]
    assert len(reports) >= 2, reports


def test_app_print_stylesheet_lays_out_for_paper(
    browser: WebDriver, app_service: ServerThread, app_fhir: FhirTestServer, artifacts: Path
) -> None:
    """Verify that in print the data tables (with every trial's evidence) are shown, the
    interactive panel is not, and the page prints to PDF."""
    assert open_patient(browser, app_service, app_fhir, "trd-with-psychosis-history") == "true"
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        table = browser.find_element(By.ID, "trials-table")
        assert table.is_displayed() and table.size["height"] > 20
        assert not browser.find_element(By.ID, "evidence-panel").is_displayed()
        assert "Condition/" in browser.find_element(By.ID, "checklist").text
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    pdf = base64.b64decode(browser.print_page())
    assert pdf.startswith(b"%PDF")
    (artifacts / "trd-with-psychosis-history.pdf").write_bytes(pdf)


def test_app_index_without_launch_explains_how_to_start(
    browser: WebDriver, app_service: ServerThread
) -> None:
    """Verify that opening the app page without a SMART launch says so and links to the
    launch page."""
    browser.get(f"{app_service.base_url}/app/launch.html")
    browser.execute_script("sessionStorage.clear()")
    browser.get(f"{app_service.base_url}/app/index.html")
    assert wait_ready(browser) == "error"
    error = browser.find_element(By.ID, "app-error")
    assert "not launched" in error.text
    assert (
        error.find_element(By.LINK_TEXT, "Launch the app again")
        .get_attribute("href")
        .endswith("/app/launch.html")
    )


LAUNCH_PAGES = {
    "no-parameters-shows-the-forms": ({}, "Not launched from an EHR", True),
    "smart-configuration-unreachable": (
        {"iss": "http://127.0.0.1:9/fhir", "launch": "x"},
        "SMART configuration could not be read",
        False,
    ),
    "server-not-allow-listed": (
        {"iss": "https://evil.example/fhir", "launch": "x"},
        "does not work",
        False,
    ),
}


@pytest.mark.parametrize(
    ("params", "says", "form"), list(LAUNCH_PAGES.values()), ids=list(LAUNCH_PAGES)
)
def test_launch_page_forms_and_refusals(
    params: dict[str, str], says: str, form: bool, browser: WebDriver, app_service: ServerThread
) -> None:
    """Verify that the launch page offers a standalone launch when opened bare and refuses a
    FHIR server the service does not allow, before any redirect."""
    query = "?" + urlencode(params) if params else ""
    browser.get(f"{app_service.base_url}/app/launch.html{query}")
    WebDriverWait(browser, 10).until(lambda d: says in d.find_element(By.TAG_NAME, "main").text)
    assert browser.current_url.startswith(app_service.base_url)
    assert browser.find_element(By.ID, "standalone").is_displayed() is form
    if form:
        assert browser.find_element(By.ID, "open-server").is_displayed()
