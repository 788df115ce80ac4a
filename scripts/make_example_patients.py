"""Write examples/patients/: one FHIR transaction Bundle per clinical scenario, plus index.json.

The bundles come from the same scenario builders the test suite uses (tests/scenarios.py), with a
patient id and resource ids unique to each scenario, PUT requests (client-assigned ids, so loading
twice does not duplicate anything) and ``Bundle.timestamp`` set to the day the data is relative to;
``ehr.date_roller.roll_dates`` moves them to the current day at load time.

    python scripts/make_example_patients.py
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.factories import NOW  # noqa: E402
from tests.scenarios import SCENARIOS  # noqa: E402
from tests.scenarios.checks import expect_to_index  # noqa: E402

OUT = ROOT / "examples" / "patients"


def _rename(value: Any, ids: dict[str, str], pid: str) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                rtype, _, rid = item.partition("/")
                if rtype == "Patient":
                    out[key] = f"Patient/{pid}"
                    continue
                if f"{rtype}/{rid}" in ids:
                    out[key] = f"{rtype}/{ids[f'{rtype}/{rid}']}"
                    continue
            out[key] = _rename(item, ids, pid)
        return out
    if isinstance(value, list):
        return [_rename(v, ids, pid) for v in value]
    return value


def scenario_bundle(scenario: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    pid = scenario.id[:60]
    slug = re.sub(r"[^a-z0-9]", "", scenario.id)[:24]
    resources = scenario.build()
    orders = scenario.orders() if scenario.orders else []
    ids: dict[str, str] = {}
    for resource in resources:
        if resource["resourceType"] != "Patient":
            ids[f"{resource['resourceType']}/{resource['id']}"] = f"{slug}-{resource['id']}"[:64]
    entries = []
    for resource in resources:
        renamed = _rename(resource, ids, pid)
        key = f"{resource['resourceType']}/{resource['id']}"
        renamed["id"] = pid if resource["resourceType"] == "Patient" else ids[key]
        entries.append(
            {
                "fullUrl": f"{renamed['resourceType']}/{renamed['id']}",
                "resource": renamed,
                "request": {"method": "PUT", "url": f"{renamed['resourceType']}/{renamed['id']}"},
            }
        )
    drafts = [_rename(o, ids, pid) for o in orders]
    bundle = {
        "resourceType": "Bundle",
        "id": f"scenario-{slug}",
        "type": "transaction",
        "timestamp": NOW.isoformat(),
        "entry": entries,
    }
    return bundle, drafts


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.json"):
        old.unlink()
    index = []
    for scenario in SCENARIOS:
        bundle, drafts = scenario_bundle(scenario)
        name = f"{scenario.id}.json"
        (OUT / name).write_text(json.dumps(bundle, indent=1) + "\n", encoding="utf-8")
        index.append(
            {
                "file": name,
                "patient_id": scenario.id[:60],
                "service": scenario.service,
                "description": scenario.describe,
                "draft_orders": drafts,
                "expected": expect_to_index(scenario.expect),
            }
        )
    (OUT / "index.json").write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(index)} scenario bundles to {OUT}")


if __name__ == "__main__":
    main()
