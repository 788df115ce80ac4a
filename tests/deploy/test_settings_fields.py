"""The settings the deployment sets for the shared store and operations (service/settings.py):
defaults, environment parsing, and refusals that name the setting without repeating a secret."""

from __future__ import annotations

import os
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from service.settings import Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts with no KETAMINE_CDS_* variable from the outer environment."""
    for name in list(os.environ):
        if name.upper().startswith("KETAMINE_CDS_"):
            monkeypatch.delenv(name)


DEFAULTS = {
    "database_url": "sqlite+aiosqlite:///./ketamine-cds.sqlite3",
    "metrics_token": None,
    "card_log_retention_days": 90,
    "store_feedback_comments": False,
    "suppression_secret": None,
    "fhir_deadline_seconds": 5.0,
}


@pytest.mark.parametrize(("field", "expected"), DEFAULTS.items(), ids=list(DEFAULTS))
def test_settings_new_field_unset_default(field: str, expected: Any) -> None:
    """Verify that each new setting has its documented default."""
    assert getattr(Settings(), field) == expected


SECRET = "0123456789abcdef" * 4
POSTGRES_URL = "postgresql+asyncpg://app:pw@db.example.invalid:5432/ketamine"
SQLITE_URL = "sqlite+aiosqlite:////data/cds.db"
FROM_ENVIRONMENT = {
    "database-postgresql": (
        "KETAMINE_CDS_DATABASE_URL",
        POSTGRES_URL,
        "database_url",
        POSTGRES_URL,
    ),
    "database-sqlite": ("KETAMINE_CDS_DATABASE_URL", SQLITE_URL, "database_url", SQLITE_URL),
    "retention": ("KETAMINE_CDS_CARD_LOG_RETENTION_DAYS", "30", "card_log_retention_days", 30),
    "comments-true": (
        "KETAMINE_CDS_STORE_FEEDBACK_COMMENTS",
        "true",
        "store_feedback_comments",
        True,
    ),
    "comments-false": (
        "KETAMINE_CDS_STORE_FEEDBACK_COMMENTS",
        "0",
        "store_feedback_comments",
        False,
    ),
    "deadline": ("KETAMINE_CDS_FHIR_DEADLINE_SECONDS", "2.5", "fhir_deadline_seconds", 2.5),
    "metrics-token": ("KETAMINE_CDS_METRICS_TOKEN", SECRET, "metrics_token", SECRET),
    "suppression-secret": ("KETAMINE_CDS_SUPPRESSION_SECRET", SECRET, "suppression_secret", SECRET),
    "metrics-token-empty": ("KETAMINE_CDS_METRICS_TOKEN", "", "metrics_token", None),
    "suppression-secret-blank": (
        "KETAMINE_CDS_SUPPRESSION_SECRET",
        "  ",
        "suppression_secret",
        None,
    ),
}


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    list(FROM_ENVIRONMENT.values()),
    ids=list(FROM_ENVIRONMENT),
)
def test_settings_new_field_from_environment_parsed(
    variable: str, value: str, field: str, expected: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verify that each new setting is read from its KETAMINE_CDS_* variable (an empty secret
    means unset)."""
    monkeypatch.setenv(variable, value)
    got = getattr(Settings(), field)
    if isinstance(got, SecretStr):
        got = got.get_secret_value()
    assert got == expected


def test_settings_secrets_masked_in_repr() -> None:
    """Verify that the metrics token and the suppression secret never show in the settings'
    repr (which a log line or a traceback may carry)."""
    settings = Settings(metrics_token=SECRET, suppression_secret=SECRET[::-1])
    assert SECRET not in repr(settings) and SECRET[::-1] not in repr(settings)


REFUSED = {
    "database-no-scheme": ("database_url", "app:hunter2@db.example.invalid/ketamine"),
    "database-sync-driver": ("database_url", "postgresql://app:hunter2@db.example.invalid/k"),
    "database-other-dialect": ("database_url", "mysql+aiomysql://app:hunter2@db.example.invalid/k"),
    "database-postgres-alias": ("database_url", "postgres://app:hunter2@db.example.invalid/k"),
    "retention-zero": ("card_log_retention_days", 0),
    "retention-negative": ("card_log_retention_days", -5),
    "deadline-zero": ("fhir_deadline_seconds", 0),
    "deadline-too-long": ("fhir_deadline_seconds", 61),
    "metrics-token-short": ("metrics_token", "hunter2"),
    "suppression-secret-short": ("suppression_secret", "hunter2-" * 3),
}


@pytest.mark.parametrize(("field", "value"), list(REFUSED.values()), ids=list(REFUSED))
def test_settings_new_field_invalid_refused_naming_setting(field: str, value: Any) -> None:
    """Verify that an invalid value is refused with a message naming the field, and that the
    message (what `ketamine-cds serve` prints) never repeats a password or secret."""
    with pytest.raises(ValidationError) as caught:
        Settings(**{field: value})
    [error] = caught.value.errors()
    assert error["loc"] == (field,)
    if "hunter2" in str(value):
        assert "hunter2" not in error["msg"]
        assert f"KETAMINE_CDS_{field.upper()}" in error["msg"]
