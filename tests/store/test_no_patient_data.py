"""The store holds no patient data: after every scenario patient (tests/scenarios.py) has gone
through its hook over HTTP, with a JWT, once with full prefetch and once fetched from a FHIR
server through the explain endpoint, and every card has had feedback (with a free-text comment
naming the patient), no text in any column of any table holds a patient id, a name, a birth
date, a resource id, the FHIR access token, a JWT or its id, the comment, or a resource's JSON.
On SQLite and PostgreSQL alike."""

from __future__ import annotations

import json
import re
import uuid
from datetime import date, datetime
from typing import Any

import respx

from tests.conftest import EHR, FakeEhr
from tests.hook_requests import hook_request
from tests.scenarios import SCENARIOS, Scenario
from tests.store.helpers import EhrClient, app_on, flush_card_log, jwt_settings, table_rows

SERVICES = {s.service for s in SCENARIOS}


def _personalised(index: int, scenario: Scenario) -> tuple[str, list[Any], list[Any] | None]:
    """The scenario's resources and orders for a patient of its own (id, names, birth date)."""
    pid = f"pat-{index:02d}-qx7"
    text = json.dumps(scenario.build())
    text = text.replace('"Patient/p1"', f'"Patient/{pid}"').replace('"id": "p1"', f'"id": "{pid}"')
    text = text.replace("Testpatient", f"Famname{index:02d}qx").replace(
        '"Alex"', f'"Givname{index:02d}qx"'
    )
    text = text.replace("1980-05-17", f"1971-03-{index % 28 + 1:02d}")
    orders = None
    if scenario.orders:
        orders = json.loads(json.dumps(scenario.orders()).replace("Patient/p1", f"Patient/{pid}"))
    return pid, json.loads(text), orders


def _forbidden_text(resources: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for resource in resources:
        if resource["resourceType"] == "Patient":
            found.add(resource["birthDate"])
            for name in resource.get("name", []):
                found.add(name["family"])
                found.update(name.get("given", []))
    return found


def _all_ids(value: Any) -> set[str]:
    if isinstance(value, dict):
        ids = {value["id"]} if isinstance(value.get("id"), str) else set()
        for item in value.values():
            ids |= _all_ids(item)
        return ids
    if isinstance(value, list):
        return set().union(*(_all_ids(item) for item in value)) if value else set()
    return set()


def _stored_text(url: str) -> list[tuple[str, str, str]]:
    """(table, column, text) for every non-null value of every row, as text."""
    values = []
    for table, rows in table_rows(url).items():
        for row in rows:
            for column, value in row.items():
                if value is None or isinstance(value, bool | int | float):
                    continue
                if isinstance(value, datetime | date):
                    value = value.isoformat()
                values.append((table, column, str(value)))
    return values


def _is_random(value: str) -> bool:
    """A uuid or a hex digest (token and feedback keys, keyed hashes): random hex that may spell
    a short fragment ("2008") by chance, and cannot carry patient text."""
    if re.fullmatch(r"[0-9a-f]{64}", value):
        return True
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _violations(
    stored: list[tuple[str, str, str]], words: set[str], fragments: set[str]
) -> list[str]:
    whole = re.compile(
        r"(?<![A-Za-z0-9-])(" + "|".join(re.escape(w) for w in sorted(words)) + r")(?![A-Za-z0-9-])"
    )
    found = []
    for table, column, value in stored:
        match = whole.search(value)
        if match:
            found.append(f"{table}.{column} holds the id {match.group(0)!r}")
        if not _is_random(value):
            found += [f"{table}.{column} holds {f[:40]!r}" for f in fragments if f in value]
        if value.startswith(("{", "[")) and (
            (table, column) != ("card_feedback", "accepted_suggestions")
            or not all(isinstance(i, str) for i in json.loads(value))
        ):
            found.append(f"{table}.{column} holds JSON")
    return found


def _run_scenarios(
    store_url: str, tenant_of: Any = lambda pid: "tenant-a"
) -> tuple[set[str], set[str], int]:
    """Every scenario through its hook (prefetch) and explain (fetched), with feedback on every
    card; returns the ids and text fragments that must not be stored, and the cards seen."""
    ehr_client = EhrClient()
    settings = jwt_settings(ehr_client, store_url)
    words: set[str] = set()  # matched as whole tokens (ids)
    fragments: set[str] = {'"resourceType"', "resourceType", "Bundle", "fhir+json"}
    cards_seen = 0
    with app_on(store_url, settings) as app:
        for index, scenario in enumerate(SCENARIOS):
            pid, resources, orders = _personalised(index, scenario)
            access_token = f"fhir-access-{index:02d}-zz9"
            words |= {pid, *_all_ids(resources)}
            fragments |= _forbidden_text(resources) | {access_token}
            fragments |= {json.dumps(resource)[:30] for resource in resources}
            prefetched = hook_request(scenario.service, resources, pid=pid, draft_orders=orders)
            fetched = hook_request(
                scenario.service, resources, pid=pid, draft_orders=orders, mode="fetch"
            )
            fetched["fhirAuthorization"]["access_token"] = access_token
            ehr = FakeEhr(resources, page_size=3)
            with respx.mock(assert_all_called=False) as mock:
                mock.route(url__startswith=EHR + "/").mock(side_effect=ehr.handler)
                for endpoint, body in (("", prefetched), ("/explain", fetched)):
                    jti = f"jti-{index:02d}{endpoint.strip('/')}-kw4"
                    token = ehr_client.token(
                        scenario.service, endpoint=endpoint, tenant=tenant_of(pid), jti=jti
                    )
                    words.add(jti)
                    fragments |= {token, token.split(".")[1]}
                    response = app.post(
                        f"/cds-services/{scenario.service}{endpoint}",
                        json=body,
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    assert response.status_code == 200, (scenario.id, response.text)
                    for card in response.json()["cards"]:
                        cards_seen += 1
                        _feedback(app, ehr_client, scenario.service, card, pid, fragments)
        flush_card_log(app)
    return words, fragments, cards_seen


def test_store_after_every_scenario_no_patient_data(store_url: str) -> None:
    """Verify that no stored text holds patient ids, names, birth dates, resource ids, the
    access token, a JWT or jti, the feedback comment, or resource JSON."""
    words, fragments, cards_seen = _run_scenarios(store_url)
    assert cards_seen >= 30, "the scenarios should show cards"
    stored = _stored_text(store_url)
    assert {"hook_call", "card_shown", "card_feedback", "token_use"} <= {t for t, _, _ in stored}
    assert _violations(stored, words, fragments) == []


def test_store_patient_id_sent_as_tenant_detected(isolated_store: str) -> None:
    """Verify that the check can fail: an EHR that puts the patient id in the JWT's tenant
    claim (which the card log keeps as sent) is caught."""
    words, fragments, _ = _run_scenarios(isolated_store, tenant_of=lambda pid: pid)
    found = _violations(_stored_text(isolated_store), words, fragments)
    assert any("hook_call.tenant holds the id 'pat-" in line for line in found), found[:3]


def _feedback(
    app: Any,
    ehr_client: EhrClient,
    service: str,
    card: dict[str, Any],
    pid: str,
    fragments: set[str],
) -> None:
    comment = f"Discussed with {pid}; family declined"
    fragments.add(comment)
    item: dict[str, Any] = {"card": card["uuid"], "outcomeTimestamp": "2026-11-27T06:45:00Z"}
    if card.get("suggestions"):
        item["outcome"] = "accepted"
        item["acceptedSuggestions"] = [{"id": card["suggestions"][0]["uuid"]}]
    else:
        item["outcome"] = "overridden"
        item["overrideReason"] = {
            "reason": {"system": "http://example.org/reasons", "code": "cds-not-applicable"},
            "userComment": comment,
        }
    token = ehr_client.token(service, endpoint="/feedback", tenant="tenant-a")
    fragments.add(token)
    response = app.post(
        f"/cds-services/{service}/feedback",
        json={"feedback": [item]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
