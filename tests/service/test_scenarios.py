"""Clinical scenarios through the HTTP API, with full prefetch and with no prefetch (paging)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from hooks.relevance import observation_lists
from tests.conformance import strip_volatile
from tests.hook_requests import hook_request
from tests.scenarios import SCENARIOS, Scenario
from tests.scenarios.checks import assert_answer


def _observation_codes(knowledge: Any) -> set[str]:
    return {
        code for name in observation_lists(knowledge) for _, code in knowledge.code_list(name).codes
    }


def _check(scenario: Scenario, body: dict[str, Any]) -> None:
    assert_answer(scenario.expect, scenario.service, body)


def _request(
    scenario: Scenario, resources: list[dict[str, Any]], mode: str, knowledge: Any
) -> dict[str, Any]:
    return hook_request(
        scenario.service,
        resources,
        mode=mode,
        draft_orders=scenario.orders() if scenario.orders else None,
        observation_codes=_observation_codes(knowledge),
    )


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_scenario_with_full_prefetch(
    scenario: Scenario, client: TestClient, knowledge: Any
) -> None:
    """Verify that each scenario gets its expected assessment and cards from prefetched data."""
    body = _request(scenario, scenario.build(), "prefetch", knowledge)
    response = client.post(f"/cds-services/{scenario.service}/explain", json=body)
    assert response.status_code == 200, response.text
    _check(scenario, response.json())


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_scenario_without_prefetch_matches_prefetch(
    scenario: Scenario, client: TestClient, knowledge: Any, fake_ehr: Any
) -> None:
    """Verify that querying the FHIR server (2 entries per page) gives the prefetch answer."""
    resources = scenario.build()
    orders = scenario.orders() if scenario.orders else None
    ehr = fake_ehr(resources, page_size=2)
    no_prefetch = hook_request(scenario.service, resources, mode="fetch", draft_orders=orders)
    with_prefetch = hook_request(
        scenario.service,
        resources,
        mode="prefetch",
        draft_orders=orders,
        observation_codes=_observation_codes(knowledge),
    )
    fetched = client.post(f"/cds-services/{scenario.service}/explain", json=no_prefetch)
    assert fetched.status_code == 200, fetched.text
    prefetched = client.post(f"/cds-services/{scenario.service}/explain", json=with_prefetch)
    _check(scenario, fetched.json())
    assert strip_volatile(fetched.json()["cards"]) == strip_volatile(prefetched.json()["cards"])
    assert fetched.json()["assessment"] == prefetched.json()["assessment"]
    counts: dict[str, int] = {}
    for resource in resources:
        counts[resource["resourceType"]] = counts.get(resource["resourceType"], 0) + 1
    if any(n > 2 for t, n in counts.items() if t not in ("Medication", "Observation")):
        assert any("_page=2" in str(r.url) for r in ehr.requests), "paging was not followed"
    assert all(r.headers["authorization"] == "Bearer secret-token-abc" for r in ehr.requests)
