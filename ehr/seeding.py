"""Loading patients into a FHIR server: PUT transactions to client-assigned ids.

PUT to ``Type/id`` with absolute ``fullUrl``s is what HAPI and Medplum accept, and loading twice
updates instead of duplicating. ``seed`` loads the scenario patients, a few transactions at a time.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx

from ehr.errors import EhrError
from ehr.fhir_http import FHIR_JSON, response_problem
from ehr.scenarios import scenario_bundle, with_prefix

SEED_CONCURRENCY = 4


def put_transaction(resources: Sequence[dict[str, Any]], *, base_url: str) -> dict[str, Any]:
    """A transaction Bundle that PUTs each resource to its own id on ``base_url``."""
    base = base_url.rstrip("/")
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
            for r in resources
        ],
    }


def refused_entries(answer: dict[str, Any]) -> list[str]:
    """The statuses of a transaction-response's entries that were not stored (not 2xx)."""
    return [
        status
        for e in answer.get("entry") or []
        if not re.match(r"(HTTP/\S+\s+)?2\d\d", status := str(e.get("response", {}).get("status")))
    ]


def scenario_transaction(
    entry: dict[str, Any], *, base_url: str, today: date | None, prefix: str = ""
) -> dict[str, Any]:
    """A scenario's transaction for one FHIR server: dates rolled to ``today`` (None keeps them),
    ids prefixed."""
    bundle = scenario_bundle(entry, today=today)
    resources = with_prefix([e["resource"] for e in bundle.get("entry", [])], prefix)
    transaction = put_transaction(resources, base_url=base_url)
    transaction["timestamp"] = bundle.get("timestamp")
    return transaction


@dataclass
class SeedResult:
    entry: dict[str, Any]
    patient_id: str
    resources: int
    seconds: float


async def seed_one(
    fhir: httpx.AsyncClient,
    base_url: str,
    entry: dict[str, Any],
    *,
    today: date | None,
    prefix: str = "",
) -> SeedResult:
    bundle = scenario_transaction(entry, base_url=base_url, today=today, prefix=prefix)
    started = time.perf_counter()
    try:
        response = await fhir.post(
            base_url.rstrip("/"),
            content=json.dumps(bundle),
            headers={"Content-Type": FHIR_JSON},
        )
    except httpx.HTTPError as exc:
        raise EhrError(f"cannot reach the FHIR server {base_url}: {exc}") from exc
    if response.status_code not in (200, 201):
        raise EhrError(
            f"the FHIR server refused scenario {entry['patient_id']}: {response_problem(response)}"
        )
    failed = refused_entries(response.json())
    if failed:
        raise EhrError(
            f"scenario {entry['patient_id']}: {len(failed)} entries were not stored ({failed[:3]})"
        )
    return SeedResult(
        entry, prefix + entry["patient_id"], len(bundle["entry"]), time.perf_counter() - started
    )


async def seed(
    fhir: httpx.AsyncClient,
    base_url: str,
    entries: Sequence[dict[str, Any]],
    *,
    today: date | None,
    prefix: str = "",
    on_done: Callable[[SeedResult], None] | None = None,
) -> list[SeedResult]:
    """Load the scenario patients (a few transactions at a time), in index order."""
    gate = asyncio.Semaphore(SEED_CONCURRENCY)

    async def one(entry: dict[str, Any]) -> SeedResult:
        async with gate:
            result = await seed_one(fhir, base_url, entry, today=today, prefix=prefix)
        if on_done is not None:
            on_done(result)
        return result

    return list(await asyncio.gather(*(one(e) for e in entries)))
