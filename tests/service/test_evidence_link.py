"""Cards link to the evidence app (issue 13): a ``smart`` link on every patient-view and
order-select card, with the app's launch URL and an appContext that names no patient."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from tests.conftest import make_settings
from tests.factories import NOW, condition, draft_order
from tests.hook_requests import hook_request
from tests.scenarios import trd_patient

MIRTAZAPINE = [draft_order("mirtazapine 30 MG Oral Tablet", rxcui="314111", dose=1, unit="TAB")]
SPRAVATO = [draft_order("Spravato 28 mg nasal spray", dose=56, unit="mg", per_week=2)]
PSYCHOSIS = condition("F20.0", "Paranoid schizophrenia", status="resolved", onset_weeks_ago=300)


def _cards(client: TestClient, service: str, orders: Any = None, *extra: Any) -> list[Any]:
    body = hook_request(service, trd_patient(*extra), draft_orders=orders)
    response = client.post(f"/cds-services/{service}", json=body)
    assert response.status_code == 200, response.text
    cards: list[Any] = response.json()["cards"]
    return cards


@pytest.mark.parametrize(
    ("service", "orders", "extra"),
    [
        ("trd-ketamine-screen", None, ()),
        ("trd-ketamine-screen", None, (PSYCHOSIS,)),
        ("trd-antidepressant-order", MIRTAZAPINE, ()),
    ],
    ids=["patient-view-referral", "patient-view-not-recommended", "order-select"],
)
def test_evidence_link_on_patient_view_and_order_select_cards(
    service: str, orders: Any, extra: Any, client: TestClient
) -> None:
    """Verify that each card carries one smart link to the app's launch page, whose appContext
    names the service and the card template and nothing about the patient."""
    cards = _cards(client, service, orders, *extra)
    assert cards
    for card in cards:
        [link] = [item for item in card["links"] if item["type"] == "smart"]
        assert link["url"] == "http://testserver/app/launch.html"
        context = json.loads(link["appContext"])
        assert context["service"] == service and set(context) == {"service", "card"}
        assert "p1" not in link["appContext"]


def test_evidence_link_not_on_order_sign_cards(client: TestClient) -> None:
    """Verify that the order-sign cards (a safety check at signing) carry no app link."""
    cards = _cards(client, "ketamine-order-safety", SPRAVATO)
    assert cards and all(item["type"] != "smart" for c in cards for item in c.get("links", []))


def test_evidence_link_under_the_public_base_url() -> None:
    """Verify that behind a proxy the link uses KETAMINE_CDS_PUBLIC_BASE_URL."""
    settings = make_settings(public_base_url="https://cds.hospital.example/ketamine")
    with TestClient(create_app(settings, clock=lambda: NOW)) as client:
        [card] = _cards(client, "trd-ketamine-screen")
    urls = [item["url"] for item in card["links"] if item["type"] == "smart"]
    assert urls == ["https://cds.hospital.example/ketamine/app/launch.html"]
