"""Test plumbing for the evidence app: ASGI apps on loopback threads, headless Chromium, axe-core.

- ``ServerThread``: an ASGI app served by uvicorn on 127.0.0.1 (a free port) in a daemon thread.
- ``start_chromium``: Debian's Chromium driven by Debian's chromedriver through selenium, never a
  downloaded browser (Selenium Manager is skipped: both paths are given). Missing -> the test
  fails, saying what to install.
- ``run_axe``: injects the vendored axe-core (``tests/app/vendor``) and runs it on the page.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from selenium import webdriver
from selenium.common.exceptions import JavascriptException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from starlette.types import ASGIApp

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_BROWSER = "apt-get update && apt-get install -y chromium chromium-driver"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1366,768",
    "--force-device-scale-factor=1",
    "--lang=en-US",
)
AXE = Path(__file__).resolve().parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"
PAGE_TIMEOUT_SECONDS = 30


class ServerThread:
    """``app`` served by uvicorn on 127.0.0.1 in a daemon thread; ``stop()`` ends it."""

    def __init__(self, app: ASGIApp) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def start(self, timeout: float = 30.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server on {self.base_url} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()


def start_chromium(profile: Path) -> WebDriver:
    """Headless Chromium from Debian with an empty profile; fails (never skips) when absent."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not found: the browser tests need Debian's Chromium and "
            f"chromedriver ({INSTALL_BROWSER}); they never download a browser",
            pytrace=False,
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(
            service=Service(executable_path=str(CHROMEDRIVER)), options=options
        )
    except WebDriverException as exc:
        pytest.fail(
            f"Chromium could not be started ({exc.msg}); check {INSTALL_BROWSER}", pytrace=False
        )
    driver.set_page_load_timeout(PAGE_TIMEOUT_SECONDS)
    driver.set_script_timeout(PAGE_TIMEOUT_SECONDS)
    return driver


def wait_ready(driver: WebDriver, timeout: float = PAGE_TIMEOUT_SECONDS) -> str:
    """Wait until the app page says it is done (``body[data-ready]``); returns its value."""
    script = "return document.body && document.body.getAttribute('data-ready')"
    # The launch page redirects: a script may run while one document replaces another.
    WebDriverWait(driver, timeout, ignored_exceptions=(JavascriptException,)).until(
        lambda d: d.execute_script(script)
    )
    value: str = driver.execute_script(script)
    return value


def console_problems(driver: WebDriver) -> list[str]:
    """Console errors and Content-Security-Policy reports since the last call."""
    problems = []
    for entry in driver.get_log("browser"):
        message = str(entry.get("message", ""))
        if entry.get("level") == "SEVERE" or "Content Security Policy" in message:
            problems.append(message)
    return problems


def run_axe(driver: WebDriver) -> list[dict[str, Any]]:
    """axe-core's violations on the current page (WCAG 2.x A/AA and best practices)."""
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    result = driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        axe.run(document, {resultTypes: ['violations']})
          .then(r => done(JSON.stringify(r.violations)))
          .catch(e => done(JSON.stringify([{id: 'axe-error', impact: 'critical',
                                             description: String(e), nodes: []}])));
        """
    )
    violations: list[dict[str, Any]] = json.loads(result)
    return violations
