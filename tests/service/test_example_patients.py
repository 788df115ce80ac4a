"""The shipped example patients (examples/patients) give their documented results."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.date_roller import roll_dates
from service.local_ehr import prefetch_from_bundle
from tests.factories import NOW
from tests.scenarios.checks import assert_answer, expect_from_index

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "patients"
INDEX = json.loads((EXAMPLES / "index.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("entry", INDEX, ids=[e["file"] for e in INDEX])
def test_example_patient_matches_its_expected_result(
    entry: dict[str, Any], client: TestClient
) -> None:
    """Verify that each example bundle, with dates rolled forward, gives its expected result."""
    # 20 days: a year-only birth date ("2008") cannot be rolled, so a longer roll would age the
    # partial-birth-date minor out of the scenario it documents.
    later = NOW.date() + timedelta(days=20)
    bundle = roll_dates(json.loads((EXAMPLES / entry["file"]).read_text(encoding="utf-8")), later)
    discovery = {s["id"]: s for s in client.get("/cds-services").json()["services"]}
    service = discovery[entry["service"]]
    context: dict[str, Any] = {"userId": "Practitioner/x", "patientId": entry["patient_id"]}
    if service["hook"] != "patient-view":
        context["draftOrders"] = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": d} for d in entry["draft_orders"]],
        }
        if service["hook"] == "order-select":
            context["selections"] = [f"MedicationRequest/{d['id']}" for d in entry["draft_orders"]]
    body = {
        "hook": service["hook"],
        "hookInstance": str(uuid.uuid4()),
        "context": context,
        "prefetch": prefetch_from_bundle(bundle, service["prefetch"], context),
    }
    app_now = roll_dates({"timestamp": NOW.isoformat()}, later)["timestamp"]
    client.app.state.cds.clock = lambda: datetime.fromisoformat(app_now)
    response = client.post(f"/cds-services/{entry['service']}/explain", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert_answer(expect_from_index(entry["expected"]), entry["service"], result)
