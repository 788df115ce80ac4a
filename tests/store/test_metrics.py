"""GET /metrics: Prometheus text format, the counts it must carry, bounded patient-free labels,
and the optional bearer token."""

from __future__ import annotations

import ast
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from service import metrics
from tests.conftest import EHR
from tests.store.helpers import EhrClient, app_on, jwt_settings
from tests.store.test_app_store import SCREEN, request_for, sample, scenario

ROOT = Path(__file__).resolve().parents[2]
SECRET = "a" * 40
PATIENT = "pt-METRICS-5150"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def test_metrics_hook_cards_fhir_feedback_jwt_counted_labels_bounded(
    isolated_store: str, fake_ehr: Any
) -> None:
    """Verify that /metrics counts hook calls (by service and status, unknown service ids as
    "unknown"), cards (by kind, indicator, recommendation), FHIR requests, feedback (an unknown
    reason code as "other") and JWT rejections (by check), with no patient id in any label."""
    built = json.dumps(scenario("trd-two-switches").build())
    resources = json.loads(
        built.replace('"p1"', f'"{PATIENT}"').replace("Patient/p1", f"Patient/{PATIENT}")
    )
    fake_ehr(resources)
    body = request_for("trd-two-switches", mode="fetch", fhir_server=EHR, pid=PATIENT)
    labels = {"service": SCREEN, "endpoint": "service", "status": "200"}
    before = {
        "calls": sample("ketamine_cds_hook_calls_total", **labels),
        "unknown": sample(
            "ketamine_cds_hook_calls_total", service="unknown", endpoint="service", status="404"
        ),
        "cards": sample(
            "ketamine_cds_cards_total",
            service=SCREEN,
            kind="screen-referral",
            indicator="info",
            recommendation="refer-for-evaluation",
        ),
        "fhir": sample("ketamine_cds_fhir_requests_total", resource_type="Patient", status="200"),
        "feedback": sample(
            "ketamine_cds_feedback_total", service=SCREEN, outcome="overridden", reason="other"
        ),
        "signature": sample("ketamine_cds_jwt_rejections_total", check="signature"),
    }
    with app_on(isolated_store) as app:
        assert app.post(f"/cds-services/{SCREEN}", json=body).status_code == 200
        assert app.post(f"/cds-services/{PATIENT}", json=body).status_code == 404
        feedback = {
            "card": str(uuid.uuid4()),
            "outcome": "overridden",
            "overrideReason": {"reason": {"code": f"made-up-{PATIENT}"}},
            "outcomeTimestamp": "2026-11-27T06:45:00Z",
        }
        response = app.post(f"/cds-services/{SCREEN}/feedback", json={"feedback": [feedback]})
        assert response.status_code == 200
        text = app.get("/metrics").text
    ehr = EhrClient()
    with app_on(isolated_store, jwt_settings(ehr, isolated_store)) as app:
        forged = EhrClient().token(SCREEN)  # signed with a key the service does not trust
        response = app.post(
            f"/cds-services/{SCREEN}", json=body, headers={"Authorization": f"Bearer {forged}"}
        )
        assert response.status_code == 401
    assert PATIENT not in text
    exposed = _samples(text)
    assert exposed[("ketamine_cds_hook_calls_total", tuple(sorted(labels.items())))] >= 1
    assert sample("ketamine_cds_hook_calls_total", **labels) == before["calls"] + 1
    assert (
        sample("ketamine_cds_hook_calls_total", service="unknown", endpoint="service", status="404")
        == before["unknown"] + 1
    )
    assert (
        sample(
            "ketamine_cds_cards_total",
            service=SCREEN,
            kind="screen-referral",
            indicator="info",
            recommendation="refer-for-evaluation",
        )
        == before["cards"] + 1
    )
    assert (
        sample("ketamine_cds_fhir_requests_total", resource_type="Patient", status="200")
        == before["fhir"] + 1
    )
    assert (
        sample("ketamine_cds_feedback_total", service=SCREEN, outcome="overridden", reason="other")
        == before["feedback"] + 1
    )
    assert sample("ketamine_cds_jwt_rejections_total", check="signature") == before["signature"] + 1
    histogram = ("ketamine_cds_hook_duration_seconds_count", tuple(sorted(labels.items())))
    assert exposed[histogram] >= 1


TOKEN_CASES = {
    "no-token-configured-open": (None, None, 200),
    "token-configured-no-header": (SECRET, None, 401),
    "token-configured-wrong": (SECRET, "Bearer " + "b" * 40, 401),
    "token-configured-basic-scheme": (SECRET, "Basic " + SECRET, 401),
    "token-configured-right": (SECRET, "Bearer " + SECRET, 200),
}


@pytest.mark.parametrize(
    ("configured", "header", "status"), list(TOKEN_CASES.values()), ids=list(TOKEN_CASES)
)
def test_metrics_token_configured_bearer_required(
    isolated_store: str, configured: str | None, header: str | None, status: int
) -> None:
    """Verify that with KETAMINE_CDS_METRICS_TOKEN set, /metrics needs that bearer token (401
    with an OperationOutcome otherwise), and is open without it."""
    headers = {"Authorization": header} if header else {}
    with app_on(isolated_store, metrics_token=configured) as app:
        response = app.get("/metrics", headers=headers)
    assert response.status_code == status
    if status == 200:
        assert response.headers["content-type"].startswith("text/plain")
    else:
        assert response.json()["resourceType"] == "OperationOutcome"
        assert SECRET not in response.text


def _rejection_reasons() -> list[str]:
    """The reason (or the literal start of it) of every Rejected(...) raised in service/auth.py."""
    tree = ast.parse((ROOT / "service" / "auth.py").read_text(encoding="utf-8"))
    reasons = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "Rejected"
            and node.args
        ):
            argument = node.args[0]
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                reasons.append(argument.value)
            elif isinstance(argument, ast.JoinedStr):
                first = argument.values[0]
                assert isinstance(first, ast.Constant), ast.dump(argument)
                reasons.append(str(first.value))
    return reasons


REASONS = _rejection_reasons()


@pytest.mark.parametrize("reason", REASONS)
def test_metrics_jwt_rejection_reason_named_check(reason: str) -> None:
    """Verify that every reason service/auth.py can reject a token for maps to a named check
    (a small fixed label set), never to "other"."""
    check = metrics.jwt_check(reason)
    assert check != "other" and check in metrics.JWT_CHECK_VALUES


def test_metrics_jwt_reason_list_found() -> None:
    """Verify that the reason scan reads auth.py (the table above is not empty)."""
    assert len(REASONS) >= 15


LABEL_CASES = {
    "known-code": ("cds-not-applicable", "cds-not-applicable"),
    "unknown-code": ("made-up", "other"),
    "no-code": (None, "none"),
}


@pytest.mark.parametrize(("code", "label"), list(LABEL_CASES.values()), ids=list(LABEL_CASES))
def test_metrics_override_label_bounded(code: str | None, label: str) -> None:
    """Verify that an override reason code becomes a label only when the cards offer it."""
    assert metrics.override_label(code) == label


FHIR_LABELS = {
    "known-type": ("Observation", 200, ("Observation", "200")),
    "unknown-type": ("Patient/123", 200, ("other", "200")),
    "timeout": ("Condition", "timeout", ("Condition", "timeout")),
    "odd-status": ("Condition", 999, ("Condition", "other")),
}


@pytest.mark.parametrize(
    ("resource_type", "status", "labels"), list(FHIR_LABELS.values()), ids=list(FHIR_LABELS)
)
def test_metrics_fhir_labels_bounded(
    resource_type: str, status: int | str, labels: tuple[str, str]
) -> None:
    """Verify that FHIR request labels come from fixed sets (a type that is not one of ours, or
    a status outside HTTP's, is "other")."""
    name = "ketamine_cds_fhir_requests_total"
    keys = {"resource_type": labels[0], "status": labels[1]}
    before = sample(name, **keys)
    metrics.fhir_request(resource_type, status, 0.01)
    assert sample(name, **keys) == before + 1
