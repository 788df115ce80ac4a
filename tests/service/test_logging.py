"""Logs carry no PHI, tokens or query strings; one line per FHIR request and per answered hook
(checklist E item 54, J item 104, M item 113, Q17)."""

from __future__ import annotations

import copy
import io
import json
import logging
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import respx
from fastapi.testclient import TestClient

from hooks.rules.knowledge import Knowledge
from service.logging_setup import JsonFormatter, configure_logging
from tests.conftest import EHR, FakeEhr
from tests.factories import blood_pressure, condition, patient
from tests.hook_requests import hook_request
from tests.scenarios import trd_history

PID = "pt-SECRET-4242"
FAMILY = "Zzyzxname"
CONDITION_TEXT = "Secret condition text"
TOKEN = "tok-SECRET-9999"
SCREEN = "trd-ketamine-screen"
FHIR_LINE = re.compile(r"^fhir request method=GET type=(\S+) status=(\d+) elapsed_ms=[\d.]+$")


@contextmanager
def production_logging(caplog: pytest.LogCaptureFixture) -> Iterator[io.StringIO]:
    """configure_logging() as at start-up (DEBUG), with caplog and a JSON stream attached."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved = {name: logging.getLogger(name).level for name in ("httpx", "httpcore")}
    stream = io.StringIO()
    json_handler = logging.StreamHandler(stream)
    json_handler.setFormatter(JsonFormatter())
    configure_logging("DEBUG")
    root.addHandler(caplog.handler)
    root.addHandler(json_handler)
    caplog.set_level(logging.DEBUG)
    try:
        yield stream
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def _resources(pid: str) -> list[dict[str, Any]]:
    person = patient(pid)
    person["name"] = [{"family": FAMILY, "given": ["Secretgiven"]}]
    bad = condition("F33.1", CONDITION_TEXT, pid=pid, cid="cond-bad")
    bad["clinicalStatus"] = 5
    return [
        person,
        condition("F33.1", CONDITION_TEXT, pid=pid, cid="cond-good"),
        bad,
        *[{**r, "subject": {"reference": f"Patient/{pid}"}} for r in trd_history()],
        blood_pressure(126, 79, days_ago=3, pid=pid),
    ]


def _request(pid: str, context_pid: str) -> dict[str, Any]:
    body = hook_request(SCREEN, [], mode="fetch", pid=context_pid)
    body["fhirAuthorization"]["access_token"] = TOKEN
    return body


def _secrets(pid: str) -> tuple[str, ...]:
    return (pid, "SECRET", FAMILY, "Secretgiven", CONDITION_TEXT, TOKEN)


def _assert_clean(
    records: list[logging.LogRecord], stream: io.StringIO, forbidden: tuple[str, ...]
) -> None:
    assert records, "nothing was logged"
    for record in records:
        message = record.getMessage()
        arguments = repr(record.args)
        for secret in forbidden:
            assert secret not in message, f"{secret!r} in log message {message!r}"
            assert secret not in arguments, f"{secret!r} in log args of {record.msg!r}"
    output = stream.getvalue()
    lines = [json.loads(line) for line in output.splitlines()]
    assert len(lines) >= len(records)
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    for secret in forbidden:
        assert secret not in output, f"{secret!r} in JSON log output"


CONTEXT_PIDS = {
    "bare-id": (PID, PID),
    "patient-prefix": (PID, f"Patient/{PID}"),
    "capitalised-id": ("PT-SECRET-4242", "PT-SECRET-4242"),
}


@pytest.mark.parametrize(
    ("pid", "context_pid"), list(CONTEXT_PIDS.values()), ids=list(CONTEXT_PIDS)
)
@pytest.mark.parametrize("endpoint", ["", "/explain"], ids=["hook", "explain"])
def test_logging_no_prefetch_hook_call_no_phi_token_or_query(
    pid: str,
    context_pid: str,
    endpoint: str,
    client: TestClient,
    knowledge: Knowledge,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Verify that a full fallback hook call logs no patient data, token or query string."""
    ehr = FakeEhr(_resources(pid), page_size=3)
    with respx.mock(assert_all_called=False) as mock, production_logging(caplog) as stream:
        mock.route(url__startswith=EHR + "/").mock(side_effect=ehr.handler)
        response = client.post(f"/cds-services/{SCREEN}{endpoint}", json=_request(pid, context_pid))
    assert response.status_code == 200, response.text
    assert len(ehr.requests) > 6, "paging was expected"
    records = list(caplog.records)
    queries = {r.url.query.decode() for r in ehr.requests} - {""}
    _assert_clean(records, stream, (*_secrets(pid), *queries, "patient=", "_include", "loinc.org|"))

    fhir_lines = [
        r
        for r in records
        if r.name == "service.fhir_gateway" and r.getMessage().startswith("fhir request")
    ]
    assert all(r.levelno == logging.INFO for r in fhir_lines)
    parsed = [FHIR_LINE.match(r.getMessage()) for r in fhir_lines]
    assert all(parsed), [r.getMessage() for r in fhir_lines]
    logged = Counter((m.group(1), int(m.group(2))) for m in parsed if m)
    sent = Counter((r.url.path.removeprefix("/fhir/").split("/")[0], 200) for r in ehr.requests)
    assert logged == sent

    answered = [r for r in records if r.getMessage().startswith("hook answered")]
    assert len(answered) == 1
    assert answered[0].levelno == logging.INFO
    assert f"service={SCREEN}" in answered[0].getMessage()
    assert f"ruleset={knowledge.ruleset_version}" in answered[0].getMessage()
    json_answered = [
        json.loads(line) for line in stream.getvalue().splitlines() if '"hook answered' in line
    ]
    assert len(json_answered) == 1 and json_answered[0]["level"] == "INFO"


@pytest.mark.parametrize(
    ("pid", "context_pid"), list(CONTEXT_PIDS.values()), ids=list(CONTEXT_PIDS)
)
def test_logging_fhir_failure_412_no_phi_token_or_query(
    pid: str, context_pid: str, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Verify that a failing FHIR server (retries, 412) is logged without PHI or the token."""
    with respx.mock(assert_all_called=False) as mock, production_logging(caplog) as stream:
        route = mock.route(url__startswith=EHR + "/").mock(return_value=httpx.Response(503))
        response = client.post(f"/cds-services/{SCREEN}", json=_request(pid, context_pid))
    assert response.status_code == 412, response.text
    records = list(caplog.records)
    _assert_clean(records, stream, (*_secrets(pid), "patient=", "_include"))
    statuses = [r.getMessage() for r in records if r.getMessage().startswith("fhir request")]
    assert len(statuses) == route.call_count
    assert all("status=503" in s for s in statuses)
    assert any(r.getMessage().startswith("request refused status=412") for r in records)
    assert not any(r.getMessage().startswith("hook answered") for r in records)


def test_logging_feedback_comment_not_logged(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Verify that feedback is logged by card uuid and outcome, never with the free-text comment."""
    card = str(uuid.uuid4())
    body = {
        "feedback": [
            {
                "card": card,
                "outcome": "overridden",
                "overrideReason": {
                    "reason": {"system": "http://example.org/reasons", "code": "not-relevant"},
                    "userComment": f"{FAMILY} refused; {CONDITION_TEXT}",
                },
                "outcomeTimestamp": "2026-11-27T06:30:00Z",
            }
        ]
    }
    with production_logging(caplog) as stream:
        response = client.post(f"/cds-services/{SCREEN}/feedback", json=copy.deepcopy(body))
    assert response.status_code == 200, response.text
    records = list(caplog.records)
    _assert_clean(records, stream, (FAMILY, CONDITION_TEXT, "refused"))
    lines = [r.getMessage() for r in records if r.getMessage().startswith("feedback")]
    assert len(lines) == 1
    assert card in lines[0] and "outcome=overridden" in lines[0] and "comment=yes" in lines[0]
