"""The app on a shared store, the same tests on SQLite and PostgreSQL: JWT replay across apps,
store outages (503, never accepted unchecked; a hook answer is never turned into an error), the
card log, durable idempotent feedback, and readiness."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from service.store.migrate import head_revision
from tests.conformance import strip_volatile
from tests.conftest import EHR
from tests.hook_requests import hook_request
from tests.scenarios import SCENARIOS, Scenario
from tests.store.helpers import (
    EhrClient,
    app_on,
    break_store,
    flush_card_log,
    jwt_settings,
    operations_of,
    table_rows,
)
from tests.store.test_repository import schema_version

SCREEN = "trd-ketamine-screen"
SAFETY = "ketamine-order-safety"


def scenario(name: str) -> Scenario:
    return next(s for s in SCENARIOS if s.id == name)


def request_for(name: str, *, patient: str | None = None, **kw: Any) -> dict[str, Any]:
    """The scenario's hook request; with ``patient``, for a patient of that id (the scenario's
    resources re-pointed to it)."""
    chosen = scenario(name)
    resources = chosen.build()
    orders = chosen.orders() if chosen.orders else None
    if patient is not None:
        moved = json.dumps([resources, orders]).replace('"p1"', f'"{patient}"')
        resources, orders = json.loads(moved.replace("Patient/p1", f"Patient/{patient}"))
        kw["pid"] = patient
    return hook_request(chosen.service, resources, draft_orders=orders, **kw)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def feedback_body(card: dict[str, Any], outcome: str, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "card": card["uuid"],
        "outcome": outcome,
        "outcomeTimestamp": "2026-11-27T06:45:00Z",
    }
    if outcome == "accepted":
        item["acceptedSuggestions"] = [{"id": card["suggestions"][0]["uuid"]}]
    item.update(extra)
    return {"feedback": [item]}


# -- JWT replay ---------------------------------------------------------------------------------


def test_app_token_accepted_by_one_app_refused_by_another(store_url: str) -> None:
    """Verify that a JWT accepted by one app (a worker, a replica) is refused by another app on
    the same store, and by the first one again."""
    ehr = EhrClient()
    settings = jwt_settings(ehr, store_url)
    token = ehr.token(SCREEN)
    body = request_for("trd-two-switches")
    with app_on(store_url, settings) as first, app_on(store_url, settings) as second:
        accepted = first.post(f"/cds-services/{SCREEN}", json=body, headers=bearer(token))
        replayed = second.post(f"/cds-services/{SCREEN}", json=body, headers=bearer(token))
        again = first.post(f"/cds-services/{SCREEN}", json=body, headers=bearer(token))
    assert accepted.status_code == 200, accepted.text
    for refused in (replayed, again):
        assert refused.status_code == 401
        assert "replay" in refused.json()["issue"][0]["diagnostics"]


def test_app_store_down_token_refused_503_not_accepted(store_url: str, fake_ehr: Any) -> None:
    """Verify that when the store cannot be reached a valid JWT is refused with 503 and an
    OperationOutcome (never accepted unchecked), and no FHIR request is made."""
    ehr_client = EhrClient()
    fhir = fake_ehr(scenario("trd-two-switches").build())
    body = request_for("trd-two-switches", mode="fetch", fhir_server=EHR)
    before = sample("ketamine_cds_store_errors_total", operation="token")
    with app_on(store_url, jwt_settings(ehr_client, store_url)) as app:
        break_store(app)
        response = app.post(
            f"/cds-services/{SCREEN}", json=body, headers=bearer(ehr_client.token(SCREEN))
        )
    assert response.status_code == 503
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "transient"
    assert response.headers["retry-after"] == "5"
    assert fhir.requests == []
    assert sample("ketamine_cds_store_errors_total", operation="token") == before + 1


# -- feedback -------------------------------------------------------------------------------------


def test_app_feedback_repeated_stored_once_joined_to_card(store_url: str) -> None:
    """Verify that feedback answers 200 once committed, that the same item sent again is stored
    once, and that it names a card of the card log."""
    before = sample(
        "ketamine_cds_feedback_total", service=SCREEN, outcome="accepted", reason="none"
    )
    with app_on(store_url) as app:
        answer = app.post(f"/cds-services/{SCREEN}", json=request_for("trd-two-switches")).json()
        [card] = answer["cards"]
        body = feedback_body(card, "accepted")
        statuses = [app.post(f"/cds-services/{SCREEN}/feedback", json=body).status_code]
        statuses.append(app.post(f"/cds-services/{SCREEN}/feedback", json=body).status_code)
        flush_card_log(app)
    assert statuses == [200, 200]
    rows = table_rows(store_url)
    [stored] = rows["card_feedback"]
    assert stored["card_uuid"] == card["uuid"]
    assert stored["outcome"] == "accepted"
    assert stored["accepted_suggestions"] == f'["{card["suggestions"][0]["uuid"]}"]'
    assert [c["uuid"] for c in rows["card_shown"]] == [card["uuid"]]
    after = sample("ketamine_cds_feedback_total", service=SCREEN, outcome="accepted", reason="none")
    assert after == before + 1


COMMENT = "Alex Testpatient declined; see the note of 2026-11-20"


@pytest.mark.parametrize("allowed", [False, True], ids=["comments-off", "comments-on"])
def test_app_feedback_comment_stored_only_when_allowed(store_url: str, allowed: bool) -> None:
    """Verify that the free-text userComment is stored only with
    KETAMINE_CDS_STORE_FEEDBACK_COMMENTS=true; otherwise only that there was one."""
    reason = {"system": "http://example.org/reasons", "code": "cds-not-applicable"}
    card = {"uuid": "card-with-comment"}
    body = feedback_body(
        card, "overridden", overrideReason={"reason": reason, "userComment": COMMENT}
    )
    with app_on(store_url, store_feedback_comments=allowed) as app:
        response = app.post(f"/cds-services/{SAFETY}/feedback", json=body)
    assert response.status_code == 200, response.text
    [stored] = table_rows(store_url)["card_feedback"]
    assert stored["has_comment"] is True or stored["has_comment"] == 1
    assert stored["comment"] == (COMMENT if allowed else None)
    assert stored["override_code"] == "cds-not-applicable"
    assert stored["override_system"] == "http://example.org/reasons"


def test_app_feedback_store_down_503_then_retry_stored(store_url: str) -> None:
    """Verify that feedback that cannot be committed gets 503 (so that the EHR retries), and
    that the retry, once the store is back, is stored once."""
    body = feedback_body(
        {"uuid": "card-retried"},
        "overridden",
        overrideReason={"reason": {"code": "cds-not-applicable"}},
    )
    with app_on(store_url) as app:
        break_store(app)
        failed = app.post(f"/cds-services/{SAFETY}/feedback", json=body)
    with app_on(store_url) as app:
        retried = app.post(f"/cds-services/{SAFETY}/feedback", json=body)
    assert failed.status_code == 503
    assert failed.json()["resourceType"] == "OperationOutcome"
    assert retried.status_code == 200
    assert len(table_rows(store_url)["card_feedback"]) == 1


def test_app_feedback_over_item_limit_413_nothing_stored(store_url: str) -> None:
    """Verify that the feedback item limit still applies (413) and nothing is stored."""
    items = [
        feedback_body({"uuid": f"c-{i}"}, "overridden", overrideReason={"userComment": "x"})[
            "feedback"
        ][0]
        for i in range(3)
    ]
    with app_on(store_url, max_feedback_items=2) as app:
        response = app.post(f"/cds-services/{SAFETY}/feedback", json={"feedback": items})
    assert response.status_code == 413
    assert table_rows(store_url)["card_feedback"] == []


# -- card log -------------------------------------------------------------------------------------


def test_app_card_log_row_has_call_fields(store_url: str, fake_ehr: Any) -> None:
    """Verify the card log row of a JWT call that had part of its data prefetched and fetched
    the rest: service, hookInstance, client, tenant, rule set, recommendation, cards (uuid,
    kind, indicator), keys sent and fetched, latency."""
    ehr_client = EhrClient()
    chosen = scenario("order-sign-contraindicated")
    resources = chosen.build()
    fake_ehr(resources)
    body = hook_request(SAFETY, resources, draft_orders=chosen.orders(), fhir_server=EHR)
    for key in ("observations", "allergies", "medicationStatements"):
        del body["prefetch"][key]
    body["fhirServer"] = EHR
    body["fhirAuthorization"] = {
        "access_token": "tok",
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "user/*.read",
        "subject": "ketamine-cds",
    }
    with app_on(store_url, jwt_settings(ehr_client, store_url)) as app:
        token = ehr_client.token(SAFETY, tenant="tenant-7")
        response = app.post(f"/cds-services/{SAFETY}", json=body, headers=bearer(token))
        flush_card_log(app)
        ruleset = app.get("/healthz").json()["ruleset"]
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    rows = table_rows(store_url)
    [call] = rows["hook_call"]
    assert call["service_id"] == SAFETY and call["endpoint"] == "service"
    assert call["hook_instance"] == body["hookInstance"]
    assert call["client_iss"] == "https://ehr.store-test.example" and call["tenant"] == "tenant-7"
    assert call["ruleset_version"] == ruleset and call["recommendation"] == "not-recommended"
    assert call["prefetch_keys"] == (
        "patient,conditions,medicationRequests,medicationAdministrations,medicationDispenses,"
        "serviceRequests"
    )
    assert call["fetched_keys"] == "medicationStatements,observations,allergies"
    assert call["data_source"] == "mixed" and call["card_count"] == len(cards) == 1
    assert 0 < call["latency_ms"] < 10_000
    [shown] = rows["card_shown"]
    assert (shown["uuid"], shown["indicator"], shown["kind"]) == (
        cards[0]["uuid"],
        "critical",
        "sign-contraindicated",
    )


def test_app_hook_store_down_same_answer_failure_counted(store_url: str) -> None:
    """Verify that a store outage does not change the hook's answer (no error, same cards),
    and that the card log record it could not write is counted as failed."""
    body = request_for("trd-two-switches")
    before = sample("ketamine_cds_card_log_records_total", result="failed")
    with app_on(store_url) as app:
        healthy = app.post(f"/cds-services/{SCREEN}", json=body)
        flush_card_log(app)
        operations_of(app).card_log.retry_delays = (0.01,)
        break_store(app)
        during = app.post(f"/cds-services/{SCREEN}", json=body)
        flush_card_log(app)
    assert healthy.status_code == during.status_code == 200
    assert strip_volatile(during.json()) == strip_volatile(healthy.json())
    assert sample("ketamine_cds_card_log_records_total", result="failed") == before + 1
    assert len(table_rows(store_url)["hook_call"]) == 1


def test_app_explain_call_logged_as_explain(store_url: str) -> None:
    """Verify that explain calls are in the card log too, marked as such."""
    with app_on(store_url) as app:
        response = app.post(f"/cds-services/{SCREEN}/explain", json=request_for("trd-two-switches"))
        flush_card_log(app)
    assert response.status_code == 200
    [call] = table_rows(store_url)["hook_call"]
    assert call["endpoint"] == "explain" and call["data_source"] == "prefetch"


# -- readiness ------------------------------------------------------------------------------------


def test_app_readyz_ready_then_store_down_503_healthz_still_200(store_url: str) -> None:
    """Verify that /readyz answers 200 with a reachable, migrated store and 503 (an
    OperationOutcome) once it cannot be reached, while /healthz (liveness) stays 200."""
    with app_on(store_url) as app:
        ready = app.get("/readyz")
        break_store(app)
        not_ready = app.get("/readyz")
        alive = app.get("/healthz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready" and ready.json()["schema"] == head_revision()
    assert not_ready.status_code == 503
    assert not_ready.json()["resourceType"] == "OperationOutcome"
    assert "store cannot be reached" in not_ready.json()["issue"][0]["diagnostics"]
    assert alive.status_code == 200


def test_app_readyz_schema_gone_503_naming_command(store_url: str) -> None:
    """Verify that /readyz is 503, naming `ketamine-cds db upgrade`, when the store's schema is
    not (or no longer) at a revision this release can serve on."""
    with app_on(store_url) as app, schema_version(store_url, None):
        response = app.get("/readyz")
    assert response.status_code == 503
    assert "ketamine-cds db upgrade" in response.json()["issue"][0]["diagnostics"]


def test_app_start_postgresql_schema_missing_start_refused(backend: str, store_url: str) -> None:
    """Verify that the app does not start on a PostgreSQL store without the schema (the message
    names the command), and that an SQLite store is upgraded instead."""
    from service.main import create_app
    from service.store import StoreNotMigrated
    from tests.conftest import make_settings

    with schema_version(store_url, None):
        app = create_app(make_settings(database_url=store_url))
        if backend == "postgresql":
            with pytest.raises(StoreNotMigrated, match="ketamine-cds db upgrade"), TestClient(app):
                pass
            return
    fresh = store_url.replace(".sqlite3", "-fresh.sqlite3")
    with app_on(fresh) as client:
        assert client.get("/readyz").status_code == 200


def test_app_fhir_error_counted_by_type_and_status(store_url: str) -> None:
    """Verify that FHIR requests are counted by resource type and status."""
    before = sample("ketamine_cds_fhir_requests_total", resource_type="Patient", status="503")
    body = request_for("trd-two-switches", mode="fetch", fhir_server=EHR)
    import respx

    with respx.mock(assert_all_called=False) as mock, app_on(store_url) as app:
        mock.route(url__startswith=EHR + "/").mock(return_value=httpx.Response(503))
        response = app.post(f"/cds-services/{SCREEN}", json=body)
    assert response.status_code == 412
    after = sample("ketamine_cds_fhir_requests_total", resource_type="Patient", status="503")
    assert after == before + 2  # the request and its one retry
