"""Settings: dev mode only on loopback, the FHIR server allow-list, environment parsing
(checklist E item 59, J items 94-95)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from pydantic import ValidationError

from service.errors import ForbiddenFhirServer
from service.fhir_gateway import check_allowed
from service.settings import DEV_FHIR_SERVERS, Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts with no KETAMINE_CDS_* variable from the outer environment."""
    for name in list(os.environ):
        if name.upper().startswith("KETAMINE_CDS_"):
            monkeypatch.delenv(name)


NOT_LOOPBACK = [
    "0.0.0.0",
    "::",
    "[::]",
    "192.168.1.10",
    "10.0.0.1",
    "cds.example.org",
    "localhost.evil.com",
    "127.0.0.1.nip.io",
    "",
]


@pytest.mark.parametrize("host", NOT_LOOPBACK, ids=[h or "empty" for h in NOT_LOOPBACK])
def test_settings_dev_mode_on_public_bind_raises_naming_setting(host: str) -> None:
    """Verify that dev mode with a non-loopback bind is refused, naming the setting to change."""
    with pytest.raises(ValidationError, match="KETAMINE_CDS_ALLOW_UNAUTHENTICATED"):
        Settings(allow_unauthenticated=True, bind_host=host)


LOOPBACK = [
    "127.0.0.1",
    "::1",
    "[::1]",
    "localhost",
    "127.0.0.5",
    "127.255.255.254",
    "0:0:0:0:0:0:0:1",
    " 127.0.0.1 ",
]


@pytest.mark.parametrize("host", LOOPBACK)
def test_settings_dev_mode_on_loopback_bind_accepted(host: str) -> None:
    """Verify that dev mode is accepted on every loopback spelling."""
    settings = Settings(allow_unauthenticated=True, bind_host=host)
    assert settings.allow_unauthenticated is True


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10"])
def test_settings_dev_mode_off_any_bind_accepted(host: str) -> None:
    """Verify that a public bind address is fine when dev mode is off (the default)."""
    settings = Settings(bind_host=host)
    assert settings.allow_unauthenticated is False
    assert settings.fhir_server_prefixes == ()


BAD_SERVERS = {
    "no-scheme": "ehr.example/fhir",
    "ftp": "ftp://ehr.example/fhir",
    "no-host": "https://",
    "no-host-with-path": "https:///fhir",
    "javascript": "javascript:alert(1)",
    "scheme-relative": "//ehr.example/fhir",
    "one-bad-in-list": "https://ok.example/fhir, not-a-url",
}


@pytest.mark.parametrize("value", list(BAD_SERVERS.values()), ids=list(BAD_SERVERS))
def test_settings_invalid_allowed_fhir_server_raises_naming_setting(value: str) -> None:
    """Verify that an allow-list entry that is not an http(s) base URL is refused by name."""
    with pytest.raises(ValidationError, match="KETAMINE_CDS_ALLOWED_FHIR_SERVERS"):
        Settings(allowed_fhir_servers=value)


@pytest.mark.parametrize("value", list(BAD_SERVERS.values()), ids=list(BAD_SERVERS))
def test_settings_invalid_allowed_fhir_server_env_raises_naming_setting(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verify that a bad KETAMINE_CDS_ALLOWED_FHIR_SERVERS variable fails at start-up."""
    monkeypatch.setenv("KETAMINE_CDS_ALLOWED_FHIR_SERVERS", value)
    with pytest.raises(ValidationError, match="KETAMINE_CDS_ALLOWED_FHIR_SERVERS"):
        Settings()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ()),
        ("https://ehr.example/fhir", ("https://ehr.example/fhir",)),
        (
            " https://a.example/fhir/ , ,https://b.example/r4 ",
            ("https://a.example/fhir", "https://b.example/r4"),
        ),
        ("http://10.0.0.5:8080/fhir,", ("http://10.0.0.5:8080/fhir",)),
    ],
    ids=["empty", "one", "spaces-slashes-empty-entries", "trailing-comma"],
)
def test_settings_allowed_fhir_servers_parsed_to_prefixes(
    value: str, expected: tuple[str, ...]
) -> None:
    """Verify that the allow-list is split on commas, trimmed and stripped of trailing slashes."""
    assert Settings(allowed_fhir_servers=value).fhir_server_prefixes == expected


@pytest.mark.parametrize("dev", [True, False], ids=["dev-mode", "production"])
def test_settings_dev_mode_loopback_fhir_servers_only_in_dev_mode(dev: bool) -> None:
    """Verify that dev mode (and only dev mode) adds the loopback FHIR servers to the allow-list."""
    settings = Settings(allow_unauthenticated=dev, allowed_fhir_servers="https://ehr.example/fhir")
    prefixes = settings.fhir_server_prefixes
    assert prefixes[0] == "https://ehr.example/fhir"
    for loopback in DEV_FHIR_SERVERS:
        assert (loopback in prefixes) is dev
    assert {"http://127.0.0.1", "http://localhost", "http://[::1]"} <= set(DEV_FHIR_SERVERS)


@pytest.mark.parametrize(
    "server",
    [
        "http://127.0.0.1/fhir",
        "http://localhost/fhir",
        "http://[::1]/fhir",
        "http://localhost/baseR4",
    ],
)
def test_settings_dev_mode_loopback_fhir_server_allowed(server: str) -> None:
    """Verify that in dev mode a FHIR server on a loopback address passes the allow-list."""
    check_allowed(
        server, Settings(allow_unauthenticated=True).fhir_server_prefixes, any_loopback=True
    )


@pytest.mark.parametrize(
    "server",
    ["http://localhost:8080/fhir", "http://127.0.0.1:8080/fhir", "http://[::1]:8080/fhir"],
)
def test_settings_dev_mode_loopback_fhir_server_any_port_allowed(server: str) -> None:
    """Verify that in dev mode a local FHIR server on any port (e.g. HAPI :8080) is allowed."""
    check_allowed(
        server, Settings(allow_unauthenticated=True).fhir_server_prefixes, any_loopback=True
    )


@pytest.mark.parametrize(
    "server",
    [
        "http://localhost.evil.com/fhir",
        "http://127.0.0.1.nip.io/fhir",
        "http://10.0.0.1/fhir",
        "http://localhost@evil.example/fhir",
    ],
)
@pytest.mark.parametrize("dev", [True, False], ids=["dev-mode", "production"])
def test_settings_loopback_look_alike_fhir_server_refused(server: str, dev: bool) -> None:
    """Verify that look-alikes of loopback hosts never pass the allow-list, even in dev mode."""
    with pytest.raises(ForbiddenFhirServer):
        check_allowed(
            server, Settings(allow_unauthenticated=dev).fhir_server_prefixes, any_loopback=dev
        )


def test_settings_production_loopback_fhir_server_refused() -> None:
    """Verify that without dev mode a loopback fhirServer is refused (SSRF to the service host)."""
    with pytest.raises(ForbiddenFhirServer):
        check_allowed("http://127.0.0.1/fhir", Settings().fhir_server_prefixes)


ENV_CASES: list[tuple[dict[str, str], dict[str, Any]]] = [
    (
        {},
        {
            "allow_unauthenticated": False,
            "bind_host": "127.0.0.1",
            "fhir_page_cap": 10,
            "fhir_timeout_seconds": 4.0,
            "max_body_bytes": 5_000_000,
            "episode_lookback_weeks": None,
        },
    ),
    ({"KETAMINE_CDS_ALLOW_UNAUTHENTICATED": "true"}, {"allow_unauthenticated": True}),
    ({"KETAMINE_CDS_ALLOW_UNAUTHENTICATED": "1"}, {"allow_unauthenticated": True}),
    ({"KETAMINE_CDS_ALLOW_UNAUTHENTICATED": "false"}, {"allow_unauthenticated": False}),
    (
        {"KETAMINE_CDS_ALLOW_UNAUTHENTICATED": "true", "KETAMINE_CDS_BIND_HOST": "::1"},
        {"allow_unauthenticated": True, "bind_host": "::1"},
    ),
    ({"KETAMINE_CDS_FHIR_PAGE_CAP": "7"}, {"fhir_page_cap": 7}),
    ({"KETAMINE_CDS_FHIR_TIMEOUT_SECONDS": "2.5"}, {"fhir_timeout_seconds": 2.5}),
    ({"KETAMINE_CDS_MAX_BODY_BYTES": "2048"}, {"max_body_bytes": 2048}),
    ({"KETAMINE_CDS_EPISODE_LOOKBACK_WEEKS": "52"}, {"episode_lookback_weeks": 52.0}),
    ({"KETAMINE_CDS_LOG_LEVEL": "DEBUG"}, {"log_level": "DEBUG"}),
    (
        {"KETAMINE_CDS_ALLOWED_FHIR_SERVERS": "https://a.example/fhir,https://b.example/fhir/"},
        {"fhir_server_prefixes": ("https://a.example/fhir", "https://b.example/fhir")},
    ),
]


@pytest.mark.parametrize(
    ("env", "expected"),
    ENV_CASES,
    ids=[
        "defaults",
        "dev-true",
        "dev-1",
        "dev-false",
        "dev-ipv6-bind",
        "page-cap",
        "timeout",
        "max-body",
        "lookback",
        "log-level",
        "allowed-servers",
    ],
)
def test_settings_env_var_parsed(
    env: dict[str, str], expected: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verify that KETAMINE_CDS_* environment variables are read and converted."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    for attribute, value in expected.items():
        assert getattr(settings, attribute) == value, attribute


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("KETAMINE_CDS_ALLOW_UNAUTHENTICATED", "maybe"),
        ("KETAMINE_CDS_FHIR_PAGE_CAP", "0"),
        ("KETAMINE_CDS_FHIR_PAGE_CAP", "ten"),
        ("KETAMINE_CDS_FHIR_TIMEOUT_SECONDS", "0"),
        ("KETAMINE_CDS_FHIR_TIMEOUT_SECONDS", "61"),
        ("KETAMINE_CDS_MAX_BODY_BYTES", "100"),
        ("KETAMINE_CDS_EPISODE_LOOKBACK_WEEKS", "0"),
    ],
    ids=[
        "dev-not-bool",
        "page-cap-zero",
        "page-cap-text",
        "timeout-zero",
        "timeout-too-long",
        "max-body-too-small",
        "lookback-zero",
    ],
)
def test_settings_env_var_invalid_raises(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verify that an out-of-range or unparsable variable fails at start-up, naming the field."""
    monkeypatch.setenv(name, value)
    field = name.removeprefix("KETAMINE_CDS_").lower()
    with pytest.raises(ValidationError, match=field):
        Settings()


def test_settings_env_dev_mode_public_bind_raises_naming_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Verify that dev mode from the environment with a public bind fails, naming the variable."""
    monkeypatch.setenv("KETAMINE_CDS_ALLOW_UNAUTHENTICATED", "true")
    monkeypatch.setenv("KETAMINE_CDS_BIND_HOST", "0.0.0.0")
    with pytest.raises(ValidationError, match="KETAMINE_CDS_ALLOW_UNAUTHENTICATED") as raised:
        Settings()
    assert "0.0.0.0" in str(raised.value)


def test_settings_constructor_overrides_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Verify that explicit arguments win over the environment (as create_app's tests rely on)."""
    monkeypatch.setenv("KETAMINE_CDS_FHIR_PAGE_CAP", "7")
    assert Settings(fhir_page_cap=3).fhir_page_cap == 3
