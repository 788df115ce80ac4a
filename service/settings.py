"""The one settings object. Read from the environment (prefix ``KETAMINE_CDS_``) by ``service/``
only; everything below ``service/`` gets plain values as arguments.

- ``KETAMINE_CDS_ALLOW_UNAUTHENTICATED`` (false): development mode, hook calls without a JWT;
  refused unless the bind address is loopback.
- ``KETAMINE_CDS_BIND_HOST`` (127.0.0.1): the address the server binds (set by ``serve --host``).
- ``KETAMINE_CDS_ALLOWED_FHIR_SERVERS`` (empty): comma-separated FHIR base URL prefixes the
  service may call as ``fhirServer``; any other is refused with 403 and never contacted.
- ``KETAMINE_CDS_FHIR_TIMEOUT_SECONDS`` (4.0): time allowed for one FHIR request.
- ``KETAMINE_CDS_FHIR_DEADLINE_SECONDS`` (5.0): time allowed for all the FHIR work of one hook
  call (every query, page and retry); what it cuts off becomes a named data gap.
- ``KETAMINE_CDS_FHIR_PAGE_CAP`` (10): pages followed per query before results are truncated.
- ``KETAMINE_CDS_MAX_BODY_BYTES`` (5000000): larger request bodies get 413.
- ``KETAMINE_CDS_MAX_FEEDBACK_ITEMS`` (100): larger feedback bodies get 413.
- ``KETAMINE_CDS_API_DOCS`` (false): serve ``/docs`` and ``/openapi.json``.
- ``KETAMINE_CDS_EPISODE_LOOKBACK_WEEKS`` (knowledge default, 104): trials that ended before
  this are outside the current episode.
- ``KETAMINE_CDS_LOG_LEVEL`` (INFO): level of the JSON logs.
- ``KETAMINE_CDS_DATABASE_URL`` (``sqlite+aiosqlite:///./ketamine-cds.sqlite3``): the store, an
  SQLAlchemy URL with an async driver: ``postgresql+asyncpg://user:password@host:5432/db`` when
  several replicas share it (required for more than one replica), ``sqlite+aiosqlite:///path``
  for one process. It holds a password: never logged, and errors about it never repeat it.
- ``KETAMINE_CDS_METRICS_TOKEN`` (none): when set, ``GET /metrics`` requires
  ``Authorization: Bearer <token>``; at least 32 characters (``openssl rand -hex 32``).
- ``KETAMINE_CDS_CARD_LOG_RETENTION_DAYS`` (90): days the card log is kept (1 to 36500).
- ``KETAMINE_CDS_STORE_FEEDBACK_COMMENTS`` (false): keep the free-text comments of card feedback
  (they may hold patient data); otherwise only whether a comment was given.
- ``KETAMINE_CDS_SUPPRESSION_SECRET`` (none): the key of the keyed hash (HMAC-SHA256) of FHIR
  server and patient id by which feedback withholds the referral card for one patient; at least
  32 characters (``openssl rand -hex 32``), the same on every replica. Without it feedback
  withholds nothing.
- ``KETAMINE_CDS_SUPPRESSION_DAYS`` (see ``hooks.override_reasons.DEFAULT_SUPPRESSION_DAYS``):
  JSON object, feedback reason code -> days the referral card is withheld (0 turns one off).
- ``KETAMINE_CDS_ON_TREATMENT_DAYS`` / ``KETAMINE_CDS_REFERRAL_RECENT_DAYS`` (the knowledge's):
  the treatment and referral in progress windows; set, they show in the rule-set version.
- ``KETAMINE_CDS_TRUSTED_CLIENTS`` (empty): JSON list of trusted CDS clients, each
  ``{"iss": ..., "jwks_url": ...}`` or ``{"iss": ..., "jwks": {...}}``, optionally with
  ``"jku_allowlist": [...]`` and ``"fhir_servers": [...]``. A client with its own
  ``fhir_servers`` may call those and nothing else; the global list applies to clients without
  one (and to development mode).
- ``KETAMINE_CDS_PUBLIC_BASE_URL`` (none): the service's public base URL (e.g.
  ``https://cds.example.org``); the expected JWT ``aud`` is built from it, never from Host.
- ``KETAMINE_CDS_JWT_ALGORITHMS`` (ES384,RS384): accepted signature algorithms (asymmetric only).
- ``KETAMINE_CDS_JWT_CLOCK_SKEW_SECONDS`` (60): leeway for ``exp``, ``iat`` and ``nbf``.
- ``KETAMINE_CDS_JWKS_CACHE_SECONDS`` (300), ``KETAMINE_CDS_JWKS_REFRESH_INTERVAL_SECONDS`` (30),
  ``KETAMINE_CDS_JWKS_TIMEOUT_SECONDS`` (2.0): JWKS caching, unknown-``kid`` refresh rate limit and
  fetch timeout.
- ``KETAMINE_CDS_CORS_ORIGINS`` (empty): comma-separated browser origins allowed by CORS (``*`` for
  any, development only).
- ``KETAMINE_CDS_APP_CLIENT_ID`` (ketamine-cds-app): the SMART client id of the evidence app
  (``/app/``), as registered with the EHR's authorization server.
- ``KETAMINE_CDS_APP_FRAME_ANCESTORS`` ('none'): the CSP ``frame-ancestors`` of the evidence app:
  the EHR origins allowed to embed it in a frame (space-separated sources).
"""

from __future__ import annotations

import ipaddress
import json
import re
from functools import cached_property, lru_cache
from typing import Any
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from hooks.override_reasons import DEFAULT_SUPPRESSION_DAYS

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
DEV_FHIR_SERVERS = ("http://127.0.0.1", "http://localhost", "http://[::1]")
DATABASE_SCHEMES = ("postgresql+asyncpg", "sqlite+aiosqlite")
"""SQLAlchemy URL schemes (dialect+async driver) accepted in KETAMINE_CDS_DATABASE_URL."""
MIN_SECRET_CHARS = 32


def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]")
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


ASYMMETRIC_ALGORITHMS = frozenset(
    {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
)


class TrustedClient(BaseModel):
    """A CDS client (EHR) whose JWTs the service accepts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    iss: str = Field(min_length=1)
    jwks_url: str | None = None
    jwks: dict[str, Any] | None = None
    jku_allowlist: tuple[str, ...] = ()
    fhir_servers: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _one_key_source(self) -> TrustedClient:
        if (self.jwks_url is None) == (self.jwks is None):
            raise ValueError(f"client {self.iss!r} needs exactly one of jwks_url and jwks")
        if self.jwks is not None and not isinstance(self.jwks.get("keys"), list):
            raise ValueError(f"client {self.iss!r}: jwks must be a JWK Set with a 'keys' list")
        for url in (self.jwks_url, *self.jku_allowlist, *self.fhir_servers):
            if url is not None:
                parts = urlsplit(url)
                if parts.scheme not in ("http", "https") or not parts.netloc:
                    raise ValueError(f"client {self.iss!r}: {url!r} is not an http(s) URL")
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KETAMINE_CDS_", extra="ignore")

    allow_unauthenticated: bool = False
    bind_host: str = "127.0.0.1"
    allowed_fhir_servers: str = ""
    fhir_timeout_seconds: float = Field(default=4.0, gt=0, le=60)
    fhir_deadline_seconds: float = Field(default=5.0, gt=0, le=60)
    fhir_page_cap: int = Field(default=10, ge=1, le=1000)
    max_body_bytes: int = Field(default=5_000_000, ge=1024)
    max_feedback_items: int = Field(default=100, ge=1, le=10_000)
    api_docs: bool = False
    episode_lookback_weeks: float | None = Field(default=None, gt=0)
    on_treatment_days: float | None = Field(default=None, gt=0, le=3650)
    """Override of the knowledge's ``on_treatment_days`` (treatment in progress: no referral
    card); the rule-set version on cards then says so."""
    referral_recent_days: float | None = Field(default=None, gt=0, le=3650)
    """Override of the knowledge's ``referral_recent_days`` (a completed referral suppresses the
    referral card that long); the rule-set version on cards then says so."""
    log_level: str = "INFO"
    database_url: str = "sqlite+aiosqlite:///./ketamine-cds.sqlite3"
    metrics_token: SecretStr | None = None
    card_log_retention_days: int = Field(default=90, ge=1, le=36500)
    store_feedback_comments: bool = False
    suppression_secret: SecretStr | None = None
    """The key of the keyed hash (HMAC-SHA256) by which feedback withholds the referral card for
    one patient. Without it, feedback never withholds a card (a start-up warning says so)."""
    suppression_days: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_SUPPRESSION_DAYS))
    """Days that feedback with each reason withholds the referral card (JSON object, reason code
    -> days; ``referral-accepted`` for an accepted referral suggestion). Given codes replace the
    defaults one by one; 0 turns a reason off."""
    trusted_clients: str = ""
    public_base_url: str | None = None
    jwt_algorithms: str = "ES384,RS384"
    jwt_clock_skew_seconds: int = Field(default=60, ge=0, le=300)
    jwks_cache_seconds: float = Field(default=300, gt=0)
    jwks_refresh_interval_seconds: float = Field(default=30, ge=0)
    jwks_timeout_seconds: float = Field(default=2.0, gt=0, le=30)
    cors_origins: str = ""
    app_client_id: str = Field(default="ketamine-cds-app", pattern=r"^[A-Za-z0-9._~:/@+-]{1,200}$")
    app_frame_ancestors: str = "'none'"

    @field_validator("suppression_days")
    @classmethod
    def _windows(cls, value: dict[str, int]) -> dict[str, int]:
        merged = dict(DEFAULT_SUPPRESSION_DAYS)
        for code, days in value.items():
            if code not in DEFAULT_SUPPRESSION_DAYS:
                known = ", ".join(sorted(DEFAULT_SUPPRESSION_DAYS))
                raise ValueError(f"unknown suppression reason {code[:40]!r}; known: {known}")
            if not 0 <= days <= 730:
                raise ValueError(f"suppression days for {code} must be 0-730, not {days}")
            merged[code] = days
        return {code: days for code, days in merged.items() if days > 0}

    @field_validator("app_frame_ancestors")
    @classmethod
    def _frame_ancestors(cls, value: str) -> str:
        sources = value.split()
        source = re.compile(r"^(?:'none'|'self'|https?:|https?://[A-Za-z0-9.*-]+(?::(?:\d+|\*))?)$")
        if (
            not sources
            or not all(source.match(s) for s in sources)
            or ("'none'" in sources and len(sources) > 1)
        ):
            raise ValueError(
                f"KETAMINE_CDS_APP_FRAME_ANCESTORS: {value!r} is not a list of CSP sources "
                "('none', 'self' or origins such as https://ehr.example.org)"
            )
        return " ".join(sources)

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

    @field_validator("trusted_clients")
    @classmethod
    def _clients(cls, value: str) -> str:
        _parse_clients(value)
        return value

    @field_validator("jwt_algorithms")
    @classmethod
    def _algorithms(cls, value: str) -> str:
        names = _split(value)
        bad = [n for n in names if n not in ASYMMETRIC_ALGORITHMS]
        if bad or not names:
            raise ValueError(
                f"KETAMINE_CDS_JWT_ALGORITHMS: {bad or value!r} not allowed; only asymmetric "
                "algorithms (ES384, RS384, ...) may be configured, never none or HS*"
            )
        return value

    @field_validator("public_base_url")
    @classmethod
    def _base(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ValueError(f"KETAMINE_CDS_PUBLIC_BASE_URL: {value!r} is not an http(s) base URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _jwt_needs_base_url(self) -> Settings:
        if self.trusted_clients.strip() and not self.public_base_url:
            raise ValueError(
                "KETAMINE_CDS_PUBLIC_BASE_URL is required when KETAMINE_CDS_TRUSTED_CLIENTS is "
                "set: the expected JWT audience is built from it"
            )
        return self

    @cached_property
    def clients(self) -> dict[str, TrustedClient]:
        return {c.iss: c for c in _parse_clients(self.trusted_clients)}

    @property
    def algorithms(self) -> tuple[str, ...]:
        return tuple(_split(self.jwt_algorithms))

    @property
    def cors_origin_list(self) -> list[str]:
        return _split(self.cors_origins)

    def fhir_servers_for(self, client: TrustedClient | None) -> tuple[str, ...]:
        """The FHIR servers a caller may name: a client's own list when it has one (and only
        that: in a multi-tenant deployment one EHR must not reach another's server), else the
        global allow-list (clients without a list, development mode)."""
        if client is not None and client.fhir_servers:
            return tuple(u.rstrip("/") for u in client.fhir_servers)
        return self.fhir_server_prefixes

    @model_validator(mode="after")
    def _dev_mode_only_on_loopback(self) -> Settings:
        if self.allow_unauthenticated and not is_loopback(self.bind_host):
            raise ValueError(
                "KETAMINE_CDS_ALLOW_UNAUTHENTICATED=true is for local development only and "
                f"requires a loopback bind address, not {self.bind_host!r}; bind to 127.0.0.1 "
                "or turn dev mode off"
            )
        return self

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        # The URL carries a password: the messages name the scheme only, never the value.
        scheme, sep, _ = value.strip().partition("://")
        if not sep or scheme not in DATABASE_SCHEMES:
            shown = scheme if sep else "none"
            raise ValueError(
                f"KETAMINE_CDS_DATABASE_URL must start with one of "
                f"{', '.join(s + '://' for s in DATABASE_SCHEMES)} (scheme given: {shown!r})"
            )
        return value.strip()

    @field_validator("metrics_token", "suppression_secret", mode="before")
    @classmethod
    def _empty_secret_is_unset(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("metrics_token", "suppression_secret")
    @classmethod
    def _secret_length(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_CHARS:
            name = f"KETAMINE_CDS_{(info.field_name or '').upper()}"
            raise ValueError(
                f"{name} is shorter than {MIN_SECRET_CHARS} characters; generate one with "
                "openssl rand -hex 32"
            )
        return value

    @property
    def fhir_server_prefixes(self) -> tuple[str, ...]:
        prefixes = tuple(_split(self.allowed_fhir_servers))
        if self.allow_unauthenticated:
            prefixes += DEV_FHIR_SERVERS
        return prefixes


def _parse_clients(value: str) -> list[TrustedClient]:
    if not value.strip():
        return []
    try:
        raw = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"KETAMINE_CDS_TRUSTED_CLIENTS is not JSON: {exc.msg}") from exc
    if not isinstance(raw, list):
        raise ValueError("KETAMINE_CDS_TRUSTED_CLIENTS must be a JSON list of clients")
    try:
        clients = [TrustedClient.model_validate(item) for item in raw]
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValueError(f"KETAMINE_CDS_TRUSTED_CLIENTS: {first['msg']}") from exc
    issuers = [c.iss for c in clients]
    if len(set(issuers)) != len(issuers):
        raise ValueError("KETAMINE_CDS_TRUSTED_CLIENTS lists the same iss twice")
    return clients


def _split(value: str) -> list[str]:
    return [part.strip().rstrip("/") for part in value.split(",") if part.strip()]


@lru_cache
def get_settings() -> Settings:
    return Settings()
