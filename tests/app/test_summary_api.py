"""The evidence app's API and pages over HTTP (no browser): POST /app/api/summary, GET
/app/api/config, the security headers and the static files."""

from __future__ import annotations

import hashlib
import logging
import re
import tomllib
from collections.abc import Callable, Iterator
from fnmatch import fnmatch
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from fastapi.testclient import TestClient
from pydantic import ValidationError

from hooks.evidence import CONTRAINDICATION_IDS, prune
from service.main import create_app
from service.settings import Settings
from service.smart_app import STATIC_DIR, AppSettings
from tests.conftest import EHR, FakeEhr, make_settings
from tests.factories import NOW, blood_pressure, patient
from tests.scenarios import trd_patient

TOKEN = "tok-SECRET-4711-app"
PID = "p1"
SUMMARY = "/app/api/summary"
SCREEN = "trd-ketamine-screen"


def _client(**overrides: Any) -> TestClient:
    return TestClient(create_app(make_settings(**overrides), clock=lambda: NOW))


@pytest.fixture
def dev() -> Iterator[TestClient]:
    with _client() as client:
        yield client


@pytest.fixture
def prod() -> Iterator[TestClient]:
    """Development mode off: a token is required."""
    with _client(allow_unauthenticated=False) as client:
        yield client


def _post(
    client: TestClient,
    *,
    fhir_server: str = EHR,
    patient_id: str = PID,
    token: str | None = TOKEN,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = {"Content-Type": "application/json"}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    sent.update(headers or {})
    return client.post(
        SUMMARY, json={"fhirServer": fhir_server, "patientId": patient_id}, headers=sent
    )


def _diagnostics(response: httpx.Response) -> str:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    return str(body["issue"][0]["diagnostics"])


def _empty_values(value: Any, path: str = "$") -> list[str]:
    if value is None or (isinstance(value, str | list | dict) and not value):
        return [path]
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _empty_values(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _empty_values(item, f"{path}[{index}]")
    return found


def _refusing(ehr: FakeEhr, statuses: dict[str, int]) -> Callable[[httpx.Request], httpx.Response]:
    """The EHR's handler, answering ``statuses[type]`` (or ``statuses["*"]``) instead."""

    def handler(request: httpx.Request) -> httpx.Response:
        resource_type = request.url.path.removeprefix("/fhir/").split("/")[0]
        status = statuses.get(resource_type, statuses.get("*"))
        if status is None:
            return ehr.handler(request)
        ehr.requests.append(request)
        outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error"}]}
        return httpx.Response(status, json=outcome)

    return handler


NOT_ALLOWED = {
    "other-host": "https://evil.example/fhir",
    "cloud-metadata": "http://169.254.169.254/latest/meta-data",
    "lookalike-host": "https://ehr.example.evil.org/fhir",
    "sibling-path": "https://ehr.example/fhir-admin",
    "dot-dot-escape": "https://ehr.example/fhir/../admin",
    "user-info": "https://user@ehr.example/fhir",
    "not-http": "ftp://ehr.example/fhir",
    "loopback-outside-dev-mode": "http://127.0.0.1:8080/fhir",
}


@pytest.mark.parametrize("server", list(NOT_ALLOWED.values()), ids=list(NOT_ALLOWED))
def test_summary_server_not_allow_listed_forbidden_and_nothing_sent(
    server: str, prod: TestClient
) -> None:
    """Verify that a FHIR base off the allow-list gets 403 and no request reaches any server."""
    with respx.mock(assert_all_called=False) as mock:
        anything = mock.route().respond(200, json={"resourceType": "Bundle"})
        response = _post(prod, fhir_server=server)
    assert response.status_code == 403, response.text
    assert "allow-list" in _diagnostics(response) or "plain http" in _diagnostics(response)
    assert response.json()["issue"][0]["code"] == "forbidden"
    assert anything.call_count == 0
    assert response.headers["cache-control"] == "no-store"


UNAUTHENTICATED = {
    "no-header": None,
    "empty-bearer": "Bearer ",
    "basic-scheme": "Basic dXNlcjpwYXNz",
    "two-tokens": "Bearer abc def",
    "control-characters": "Bearer abc\tdef",
}


@pytest.mark.parametrize("authorization", list(UNAUTHENTICATED.values()), ids=list(UNAUTHENTICATED))
def test_summary_no_usable_token_outside_dev_mode_unauthorized(
    authorization: str | None, prod: TestClient
) -> None:
    """Verify that outside development mode a request without a Bearer token gets 401 with an
    OperationOutcome, and nothing is sent to the FHIR server."""
    headers = {"Authorization": authorization} if authorization is not None else {}
    with respx.mock(assert_all_called=False) as mock:
        anything = mock.route().respond(200, json={"resourceType": "Bundle"})
        response = _post(prod, token=None, headers=headers)
    assert response.status_code == 401, response.text
    assert response.json()["issue"][0]["code"] == "login"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert anything.call_count == 0
    assert response.headers["cache-control"] == "no-store"


TOKEN_MODES = {
    "dev-mode-open-server": ("dev", None),
    "dev-mode-with-token": ("dev", TOKEN),
    "production-with-token": ("prod", TOKEN),
}


@pytest.mark.parametrize(("mode", "token"), list(TOKEN_MODES.values()), ids=list(TOKEN_MODES))
def test_summary_token_sent_only_to_the_fhir_server_and_never_logged(
    mode: str,
    token: str | None,
    fake_ehr: Callable[..., FakeEhr],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Verify that the summary is gathered from the FHIR server with the app's token (or none
    for an open server in development mode), answered with no-store, and the token is not in
    the logs or the answer."""
    ehr = fake_ehr(trd_patient(), page_size=3)
    caplog.set_level(logging.DEBUG)
    with _client(allow_unauthenticated=(mode == "dev")) as client:
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.DEBUG)
        response = _post(client, token=token)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert len(ehr.requests) >= 6
    sent = {r.headers.get("authorization") for r in ehr.requests}
    assert sent == {f"Bearer {token}" if token else None}
    assert TOKEN not in response.text
    for record in caplog.records:
        assert TOKEN not in record.getMessage(), record.getMessage()
        assert TOKEN not in repr(record.args)
    assert any(r.getMessage().startswith("app summary answered") for r in caplog.records)


def test_summary_same_assessment_and_cards_as_explain_with_no_empty_values(
    dev: TestClient, fake_ehr: Callable[..., FakeEhr]
) -> None:
    """Verify that the app's summary holds exactly the assessment and cards that the explain
    endpoint gives for the same patient and FHIR server, and no null or empty value."""
    fake_ehr(trd_patient(blood_pressure(171, 104, days_ago=1)), page_size=4)
    summary = _post(dev).json()
    explained = dev.post(
        f"/cds-services/{SCREEN}/explain",
        json={
            "hook": "patient-view",
            "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
            "fhirServer": EHR,
            "context": {"userId": "Practitioner/1", "patientId": PID},
        },
    ).json()
    assert _empty_values(summary) == []
    assert summary["assessment"] == prune(explained["assessment"])
    assert [c["summary"] for c in summary["cards"]] == [c["summary"] for c in explained["cards"]]
    assert summary["assessment"]["recommendation"] == "not-recommended"
    assert [c["id"] for c in summary["checklist"]] == list(CONTRAINDICATION_IDS)
    statuses = {c["id"]: c["status"] for c in summary["checklist"]}
    assert statuses["uncontrolled-hypertension"] == "found"
    assert summary["patient"] == {"id": PID, "age": 46, "gender": "female"}
    assert set(summary["series"]) >= {"bp"}
    assert summary["thresholds"]["bp_systolic"] == 140


REFUSALS = {
    "expired-token": ({"*": 401}, 401, "refused the access token"),
    "scopes-too-narrow": ({"*": 403}, 403, "scopes granted to the app"),
    "no-access-to-conditions": ({"Condition": 403}, 403, "HTTP 403 on Condition"),
    "ehr-down": ({"Condition": 503}, 412, "required data 'conditions' is unavailable"),
}


@pytest.mark.parametrize(
    ("statuses", "expected", "says"), list(REFUSALS.values()), ids=list(REFUSALS)
)
def test_summary_upstream_refusal_or_failure_clear_error(
    statuses: dict[str, int], expected: int, says: str, prod: TestClient
) -> None:
    """Verify that a token the FHIR server refuses gives 401/403 saying so, and required data
    that cannot be had gives the hooks' 412."""
    ehr = FakeEhr(trd_patient())
    with respx.mock(assert_all_called=False) as mock:
        mock.route(url__startswith=EHR + "/").mock(side_effect=_refusing(ehr, statuses))
        response = _post(prod)
    assert response.status_code == expected, response.text
    assert says in _diagnostics(response)
    assert TOKEN not in response.text
    assert response.headers["cache-control"] == "no-store"


def test_summary_optional_data_refused_becomes_a_gap(prod: TestClient) -> None:
    """Verify that a 403 on optional data (allergies) is a named gap, as on the hook path, and
    the checklist says the hypersensitivity check could not be completed."""
    ehr = FakeEhr(trd_patient())
    with respx.mock(assert_all_called=False) as mock:
        handler = _refusing(ehr, {"AllergyIntolerance": 403})
        mock.route(url__startswith=EHR + "/").mock(side_effect=handler)
        response = _post(prod)
    assert response.status_code == 200, response.text
    summary = response.json()
    assert any(g.startswith("allergies:") for g in summary["assessment"].get("data_gaps", []))
    check = next(c for c in summary["checklist"] if c["id"] == "ketamine-hypersensitivity")
    assert check["status"] == "incomplete" and check["gaps"]


BAD_REQUESTS = {
    "text-plain": ({"Content-Type": "text/plain"}, b'{"fhirServer": "x"}', 400),
    "not-json": ({"Content-Type": "application/json"}, b"{nope", 400),
    "a-list": ({"Content-Type": "application/json"}, b"[]", 400),
    "no-patient": (
        {"Content-Type": "application/json"},
        b'{"fhirServer": "%s"}' % EHR.encode(),
        400,
    ),
    "path-in-patient-id": (
        {"Content-Type": "application/json"},
        b'{"fhirServer": "%s", "patientId": "../Observation"}' % EHR.encode(),
        400,
    ),
    "too-large": ({"Content-Type": "application/json"}, b'{"x": "' + b"a" * 20000 + b'"}', 413),
}


@pytest.mark.parametrize(
    ("headers", "body", "status"), list(BAD_REQUESTS.values()), ids=list(BAD_REQUESTS)
)
def test_summary_malformed_request_refused(
    headers: dict[str, str], body: bytes, status: int, dev: TestClient
) -> None:
    """Verify that a request that is not the app's JSON is refused before anything is fetched."""
    with respx.mock(assert_all_called=False) as mock:
        anything = mock.route().respond(200, json={"resourceType": "Bundle"})
        response = dev.post(SUMMARY, content=body, headers=headers)
    assert response.status_code == status, response.text
    assert anything.call_count == 0


CONFIG_CASES = {
    "defaults": (
        {},
        {"clientId": "ketamine-cds-app", "redirectUri": "index.html", "allowLoopback": True},
    ),
    "registered-client": (
        {
            "app_client_id": "ehr-issued-42",
            "public_base_url": "https://cds.example.org",
            "allow_unauthenticated": False,
        },
        {
            "clientId": "ehr-issued-42",
            "redirectUri": "https://cds.example.org/app/index.html",
            "allowLoopback": False,
        },
    ),
}


@pytest.mark.parametrize(
    ("overrides", "expected"), list(CONFIG_CASES.values()), ids=list(CONFIG_CASES)
)
def test_config_from_settings(overrides: dict[str, Any], expected: dict[str, Any]) -> None:
    """Verify that the page's configuration (client id, scopes, redirect, servers) comes from the
    settings, with PKCE required and no secret."""
    with _client(**overrides) as client:
        response = client.get("/app/api/config")
    assert response.status_code == 200
    config = response.json()
    for key, value in expected.items():
        assert config[key] == value
    assert config["pkceMode"] == "required"
    assert config["scope"] == "launch openid fhirUser patient/*.rs"
    assert config["fhirServers"] == [EHR]
    assert response.headers["cache-control"] == "no-store"
    assert not {"clientSecret", "secret"} & set(config)


def _csp(response: httpx.Response) -> dict[str, list[str]]:
    directives = {}
    for part in response.headers["content-security-policy"].split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


PATHS = {
    "launch-page": ("/app/launch.html", 200),
    "index-page": ("/app/index.html", 200),
    "app-root": ("/app/", 200),
    "script": ("/app/js/app.js", 200),
    "vendored-library": ("/app/vendor/plot-0.6.17/plot.umd.min.js", 200),
    "config": ("/app/api/config", 200),
    "missing-file": ("/app/nothing-here.js", 404),
    "no-directory-escape": ("/app/%2e%2e/smart_app.py", 404),
}


@pytest.mark.parametrize(("path", "status"), list(PATHS.values()), ids=list(PATHS))
def test_app_paths_carry_the_security_headers(path: str, status: int, dev: TestClient) -> None:
    """Verify that every answer under /app/ has the strict CSP (no eval, no inline script),
    nosniff and no-referrer, errors included."""
    response = dev.get(path)
    assert response.status_code == status
    csp = _csp(response)
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert "'self'" in csp["connect-src"]
    header = response.headers["content-security-policy"]
    assert "unsafe-eval" not in header and "unsafe-inline" not in header
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"


def test_hook_endpoints_untouched_by_the_app_headers(dev: TestClient) -> None:
    """Verify that the app's headers stay under /app/ (discovery is unchanged)."""
    response = dev.get("/cds-services")
    assert response.status_code == 200
    assert "content-security-policy" not in response.headers


CONNECT_CASES = {
    "dev-mode-loopback-any-port": (
        {},
        "",
        ["'self'", "https://ehr.example", "http://127.0.0.1:*", "http://localhost:*"],
        [],
    ),
    "production-allow-list-origins": (
        {
            "allow_unauthenticated": False,
            "allowed_fhir_servers": "https://ehr.example/fhir,https://fhir.other.org:8443/r4",
        },
        "",
        ["'self'", "https://ehr.example", "https://fhir.other.org:8443"],
        ["http://127.0.0.1:*"],
    ),
    "authorization-servers-added": (
        {"allow_unauthenticated": False},
        "https://authorization.ehr.example, https://login.ehr.example",
        ["https://authorization.ehr.example", "https://login.ehr.example"],
        ["http://localhost:*"],
    ),
}


@pytest.mark.parametrize(
    ("overrides", "extra", "present", "absent"),
    list(CONNECT_CASES.values()),
    ids=list(CONNECT_CASES),
)
def test_csp_connect_src_allow_list_and_configured_origins(
    overrides: dict[str, Any],
    extra: str,
    present: list[str],
    absent: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Verify that connect-src is the service, the allow-listed FHIR origins, loopback in
    development mode only, and KETAMINE_CDS_APP_CONNECT_SRC."""
    monkeypatch.setenv("KETAMINE_CDS_APP_CONNECT_SRC", extra)
    with _client(**overrides) as client:
        csp = _csp(client.get("/app/index.html"))
    for source in present:
        assert source in csp["connect-src"], csp["connect-src"]
    for source in absent:
        assert source not in csp["connect-src"], csp["connect-src"]


def test_frame_ancestors_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Verify that KETAMINE_CDS_APP_FRAME_ANCESTORS lets an EHR frame the app (no DENY then)."""
    with _client(app_frame_ancestors="https://ehr.example 'self'") as client:
        response = client.get("/app/index.html")
    assert _csp(response)["frame-ancestors"] == ["https://ehr.example", "'self'"]
    assert "x-frame-options" not in response.headers


BAD_SETTINGS = {
    "frame-ancestors-injection": (Settings, {"app_frame_ancestors": "https://a; script-src *"}),
    "frame-ancestors-none-plus-origin": (Settings, {"app_frame_ancestors": "'none' https://a"}),
    "frame-ancestors-javascript": (Settings, {"app_frame_ancestors": "javascript:"}),
    "client-id-with-space": (Settings, {"app_client_id": "a b"}),
    "scope-with-quote": (AppSettings, {"scope": 'launch "x'}),
    "connect-src-path-injection": (AppSettings, {"connect_src": "https://a.org; script-src *"}),
    "connect-src-keyword": (AppSettings, {"connect_src": "'unsafe-eval'"}),
}


@pytest.mark.parametrize(("model", "values"), list(BAD_SETTINGS.values()), ids=list(BAD_SETTINGS))
def test_app_settings_invalid_refused(model: type[Any], values: dict[str, str]) -> None:
    """Verify that settings that would break or widen the CSP, or the client id, are refused."""
    with pytest.raises(ValidationError):
        model(**values)


class _PageScan(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.inline: list[str] = []
        self.refs: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag == "script":
            self._in_script = True
            self.scripts.append(names.get("src") or "")
        if tag == "style" or "style" in names:
            self.inline.append(f"<{tag} style>")
        self.inline += [f"{tag}.{n}" for n in names if n.startswith("on")]
        for key in ("src", "href"):
            value = names.get(key)
            if value and not value.startswith("#"):
                self.refs.append(value)

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False if tag == "script" else self._in_script

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append("inline script")


@pytest.mark.parametrize("page", ["index.html", "launch.html"])
def test_pages_no_inline_script_or_style_and_only_local_files(page: str) -> None:
    """Verify that the pages hold no inline script, handler or style (the CSP forbids them)
    and load only files that ship with the service (no CDN)."""
    scan = _PageScan()
    scan.feed((STATIC_DIR / page).read_text(encoding="utf-8"))
    assert scan.inline == []
    assert scan.scripts and all(scan.scripts)
    for ref in scan.refs:
        assert "//" not in ref and ref.split("?")[0], ref
        assert (STATIC_DIR / ref.split("?")[0]).is_file(), ref


def _vendored() -> list[tuple[str, str, int, str]]:
    rows = []
    readme = (STATIC_DIR / "vendor" / "README.md").read_text(encoding="utf-8")
    for line in readme.splitlines():
        match = re.match(
            r"^\| `([^`]+)/` \|.*\| `[^`]*?([^/`]+)`.*\| (\d+) \| `([0-9a-f]{64})` \|$", line
        )
        if match:
            rows.append((match.group(1), match.group(2), int(match.group(3)), match.group(4)))
    return rows


def test_vendored_libraries_pinned_with_licences() -> None:
    """Verify that each vendored library is the file, size and hash the vendor README pins, and
    ships its licence file."""
    rows = _vendored()
    assert {r[0] for r in rows} == {"fhirclient-2.6.3", "d3-7.9.0", "plot-0.6.17"}
    for folder, name, size, digest in rows:
        path = STATIC_DIR / "vendor" / folder / name
        data = path.read_bytes()
        assert len(data) == size, path
        assert hashlib.sha256(data).hexdigest() == digest, path
        assert (path.parent / "LICENSE").is_file(), folder


def test_axe_core_vendored_for_the_tests_only() -> None:
    """Verify that axe-core (MPL-2.0) ships with its licence under tests/ and not in the app."""
    folder = Path(__file__).parent / "vendor" / "axe-core-4.14.1"
    assert (folder / "axe.min.js").is_file() and (folder / "LICENSE").is_file()
    assert not list(STATIC_DIR.rglob("axe*"))


def test_static_types_served_for_the_browser(dev: TestClient) -> None:
    """Verify that scripts, styles and pages are served with types the browser accepts under
    nosniff."""
    expected = {
        "/app/js/app.js": "javascript",
        "/app/css/app.css": "text/css",
        "/app/launch.html": "text/html",
        "/app/favicon.svg": "image/svg+xml",
    }
    for path, kind in expected.items():
        response = dev.get(path)
        assert response.status_code == 200
        assert kind in response.headers["content-type"], (path, response.headers["content-type"])
    assert dev.post("/app/index.html").status_code == 405


def test_summary_patient_without_data_still_complete(dev: TestClient) -> None:
    """Verify that a patient with nothing but a Patient resource gets a full checklist, an
    episode and no empty value."""
    ehr = FakeEhr([patient(PID)])
    with respx.mock(assert_all_called=False) as mock:
        mock.route(url__startswith=EHR + "/").mock(side_effect=ehr.handler)
        summary = _post(dev).json()
    assert _empty_values(summary) == []
    assert summary["assessment"]["recommendation"] == "not-a-candidate"
    statuses = {c["id"]: c["status"] for c in summary["checklist"]}
    assert statuses["uncontrolled-hypertension"] == "no-data"
    assert "cards" not in summary and "series" not in summary
    assert summary["episode"]["start"] < summary["episode"]["end"]


def test_every_app_file_ships_in_the_package() -> None:
    """Verify that pyproject's package-data globs cover every file of the app, so that a
    non-editable install (the Docker image) serves the same pages."""
    root = STATIC_DIR.parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    globs = config["tool"]["setuptools"]["package-data"]["service"]
    files = [p.relative_to(STATIC_DIR.parent).as_posix() for p in STATIC_DIR.rglob("*")]
    missing = [
        f
        for f in files
        if (STATIC_DIR.parent / f).is_file() and not any(fnmatch(f, g) for g in globs)
    ]
    assert files and missing == []
