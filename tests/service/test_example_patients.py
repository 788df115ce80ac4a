"""The shipped example patients (examples/patients) give their documented results."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ehr.bundles import stored_resources
from ehr.date_roller import roll_dates
from ehr.hook_request import CdsClient
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
    ehr = CdsClient(user="Practitioner/x", fhir_server="http://ehr.example/fhir")
    body = ehr.request(
        discovery[entry["service"]],
        stored_resources(bundle),
        entry["patient_id"],
        draft_orders=entry["draft_orders"],
    )
    app_now = roll_dates({"timestamp": NOW.isoformat()}, later)["timestamp"]
    client.app.state.cds.clock = lambda: datetime.fromisoformat(app_now)
    response = client.post(f"/cds-services/{entry['service']}/explain", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert_answer(expect_from_index(entry["expected"]), entry["service"], result)
