"""The one settings object. Read from the environment (prefix ``KETAMINE_CDS_``) by ``service/``
only; everything below ``service/`` gets plain values as arguments.

- ``KETAMINE_CDS_ALLOW_UNAUTHENTICATED`` (false): development mode, hook calls without a JWT;
  refused unless the bind address is loopback.
- ``KETAMINE_CDS_BIND_HOST`` (127.0.0.1): the address the server binds (set by ``serve --host``).
- ``KETAMINE_CDS_ALLOWED_FHIR_SERVERS`` (empty): comma-separated FHIR base URL prefixes the
  service may call as ``fhirServer``; any other is refused with 403 and never contacted.
- ``KETAMINE_CDS_FHIR_TIMEOUT_SECONDS`` (4.0): total time allowed for one FHIR request.
- ``KETAMINE_CDS_FHIR_PAGE_CAP`` (10): pages followed per query before results are truncated.
- ``KETAMINE_CDS_MAX_BODY_BYTES`` (5000000): larger request bodies get 413.
- ``KETAMINE_CDS_EPISODE_LOOKBACK_WEEKS`` (knowledge default, 104): trials that ended before
  this are outside the current episode.
- ``KETAMINE_CDS_LOG_LEVEL`` (INFO): level of the JSON logs.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
DEV_FHIR_SERVERS = ("http://127.0.0.1", "http://localhost", "http://[::1]")


def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]")
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KETAMINE_CDS_", extra="ignore")

    allow_unauthenticated: bool = False
    bind_host: str = "127.0.0.1"
    allowed_fhir_servers: str = ""
    fhir_timeout_seconds: float = Field(default=4.0, gt=0, le=60)
    fhir_page_cap: int = Field(default=10, ge=1, le=1000)
    max_body_bytes: int = Field(default=5_000_000, ge=1024)
    episode_lookback_weeks: float | None = Field(default=None, gt=0)
    log_level: str = "INFO"

    @field_validator("allowed_fhir_servers")
    @classmethod
    def _urls(cls, value: str) -> str:
        for url in _split(value):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(
                    f"KETAMINE_CDS_ALLOWED_FHIR_SERVERS: {url!r} is not an http(s) base URL"
                )
        return value

    @model_validator(mode="after")
    def _dev_mode_only_on_loopback(self) -> Settings:
        if self.allow_unauthenticated and not is_loopback(self.bind_host):
            raise ValueError(
                "KETAMINE_CDS_ALLOW_UNAUTHENTICATED=true is for local development only and "
                f"requires a loopback bind address, not {self.bind_host!r}; bind to 127.0.0.1 "
                "or turn dev mode off"
            )
        return self

    @property
    def fhir_server_prefixes(self) -> tuple[str, ...]:
        prefixes = tuple(_split(self.allowed_fhir_servers))
        if self.allow_unauthenticated:
            prefixes += DEV_FHIR_SERVERS
        return prefixes


def _split(value: str) -> list[str]:
    return [part.strip().rstrip("/") for part in value.split(",") if part.strip()]


@lru_cache
def get_settings() -> Settings:
    return Settings()
