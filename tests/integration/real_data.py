"""Third-party FHIR R4 data loaded into real FHIR servers: the curated subset in
``tests/data/fhir-r4`` or the whole shared corpus ``fixtures/fhir-r4/`` (same folder layout; every
function takes the root folder).

Three groups, one Medplum server each (their ids collide across groups: both the HL7 and the US
Core examples have ``Patient/example``):

- ``synthea``: the Synthea SMART sandbox bundles (hospital and practitioner transactions first),
  the Synthea 3.x fhir-data-pipes bundles (hospital and practitioner *batch* files first: the
  patient bundles use conditional references to them), the Inferno US Core reference bundles and
  the bulk-export NDJSON set (as transactions of PUTs);
- ``hl7``: the HL7 R4 examples: every single-resource example by PUT, the patient-data Bundles
  (collections, documents, messages, searchsets and server replies unwrapped into PUTs of their
  resources: first id wins), then the transaction Bundles as they are;
- ``us-core``: the US Core examples the same way.

Each patient has a key known at collection time: ``folder/file`` (a file with one Patient),
``folder/file#N`` (entry N of a Bundle with several) or ``folder/Patient/ID`` (NDJSON).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx

from ehr.seeding import put_transaction, refused_entries
from integration.fhir_server import FhirTestServer, medplum_server

SANDBOX = "synthea-smart-sandbox-r4"
PIPES = "synthea-v3-fhir-data-pipes"
NDJSON = "synthea-bulk-ndjson-10-patients"
INFERNO = "inferno-us-core-reference-data"
HL7 = "hl7-r4-examples"
US_CORE = "us-core-examples"
GROUPS = {"synthea": (SANDBOX, PIPES, INFERNO, NDJSON), "hl7": (HL7,), "us-core": (US_CORE,)}
SKIPPED_TYPES = frozenset({"OperationOutcome", "Bundle", "Parameters"})
REQUEST_BATCHES = frozenset(
    {"Bundle-bundle-request-medsallergies.json", "Bundle-bundle-request-simplesummary.json"}
)
"""HL7 batch Bundles that only hold GET requests (queries, not data): nothing to load."""
UNLOADABLE = {
    f"{HL7}/Bundle-bundle-transaction.json#4": (
        'PUT Patient/123a with If-Match W/"2": version 2 of a resource that does not exist, '
        "refused by any server"
    ),
}
"""Patients in the data that no server can store, and why."""


def _read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _is_support_file(name: str) -> bool:
    return name.startswith(("hospitalInformation", "practitionerInformation"))


# ------------------------------------------------------------------------------------------------
# Which patients exist (collection time)


def _bundle_keys(folder: str, path: Path, bundle: dict[str, Any]) -> list[str]:
    indexes = [
        i
        for i, e in enumerate(bundle.get("entry") or [])
        if (e.get("resource") or {}).get("resourceType") == "Patient"
    ]
    if len(indexes) == 1:
        return [f"{folder}/{path.name}"]
    return [f"{folder}/{path.name}#{i}" for i in indexes]


@cache
def patient_keys(root: Path) -> tuple[str, ...]:
    """Every patient of every group under ``root``, in a stable order."""
    keys: list[str] = []
    for folder in (SANDBOX, PIPES, INFERNO):
        for path in sorted((root / folder).glob("*.json")):
            if not _is_support_file(path.name):
                keys += _bundle_keys(folder, path, _read(path))
    patients = root / NDJSON / "Patient.000.ndjson"
    lines = patients.read_text(encoding="utf-8").splitlines() if patients.is_file() else []
    for line in lines:
        if line.strip():
            keys.append(f"{NDJSON}/Patient/{json.loads(line)['id']}")
    for folder in (HL7, US_CORE):
        plan = _examples_plan(root, folder)
        keys += plan.patient_keys
    return tuple(k for k in keys if k not in UNLOADABLE)


def group_of(key: str) -> str:
    folder = key.split("/", 1)[0]
    return next(name for name, folders in GROUPS.items() if folder in folders)


# ------------------------------------------------------------------------------------------------
# How the HL7 and US Core examples are loaded


@dataclass
class _ExamplesPlan:
    puts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """(key or "", resource) to PUT, in order; key is set for Patients."""
    transactions: list[Path] = field(default_factory=list)
    patient_keys: list[str] = field(default_factory=list)


@cache
def _examples_plan(root: Path, folder: str) -> _ExamplesPlan:
    plan = _ExamplesPlan()
    seen: set[tuple[str, str]] = set()
    bundles: list[tuple[Path, dict[str, Any]]] = []

    def put(key: str, resource: dict[str, Any]) -> None:
        ident = (resource.get("resourceType"), resource.get("id"))
        if not isinstance(ident[1], str) or ident[0] in SKIPPED_TYPES or ident in seen:
            return
        seen.add(ident)  # type: ignore[arg-type]
        plan.puts.append((key if ident[0] == "Patient" else "", resource))
        if ident[0] == "Patient":
            plan.patient_keys.append(key)

    for path in sorted((root / folder).glob("*.json")):
        data = _read(path)
        if data.get("resourceType") == "Bundle":
            bundles.append((path, data))
        else:
            put(f"{folder}/{path.name}", data)
    for path, bundle in bundles:
        kind = bundle.get("type")
        if kind in ("transaction", "batch"):
            if path.name not in REQUEST_BATCHES:
                plan.transactions.append(path)
                plan.patient_keys += _bundle_keys(folder, path, bundle)
            continue
        keys = dict(zip(_patient_indexes(bundle), _bundle_keys(folder, path, bundle), strict=True))
        for index, entry in enumerate(bundle.get("entry") or []):
            resource = entry.get("resource")
            if isinstance(resource, dict):
                put(keys.get(index, ""), resource)
    return plan


def _patient_indexes(bundle: dict[str, Any]) -> list[int]:
    return [
        i
        for i, e in enumerate(bundle.get("entry") or [])
        if (e.get("resource") or {}).get("resourceType") == "Patient"
    ]


# ------------------------------------------------------------------------------------------------
# Loading


class LoadError(AssertionError):
    pass


def _post(
    client: httpx.Client, base: str, bundle: dict[str, Any] | bytes, what: str
) -> dict[str, Any]:
    content = bundle if isinstance(bundle, bytes) else json.dumps(bundle).encode()
    response = client.post(base, content=content, headers={"Content-Type": "application/fhir+json"})
    if response.status_code != 200:
        raise LoadError(f"{what}: HTTP {response.status_code} {response.text[:500]}")
    body: dict[str, Any] = response.json()
    return body


def _patient_ids_from_response(bundle: dict[str, Any], response: dict[str, Any]) -> dict[int, str]:
    """Entry index -> stored Patient id (server-assigned for POSTs)."""
    found = {}
    answers = response.get("entry") or []
    for index in _patient_indexes(bundle):
        answer = answers[index] if index < len(answers) else {}
        status = str((answer.get("response") or {}).get("status", ""))
        if not status.startswith("2"):
            continue
        stored = answer.get("resource") or {}
        if stored.get("resourceType") == "Patient" and stored.get("id"):
            found[index] = str(stored["id"])
            continue
        location = str((answer.get("response") or {}).get("location", ""))
        if location.startswith("Patient/"):
            found[index] = location.split("/")[1]
    return found


@dataclass
class LoadedGroup:
    server: FhirTestServer
    patients: dict[str, str]
    """key -> Patient id on the server."""
    notes: list[str] = field(default_factory=list)
    """What did not load (entries refused by the server), for the report."""


def _load_bundle_file(
    client: httpx.Client, base: str, folder: str, path: Path, group: LoadedGroup
) -> None:
    raw = path.read_bytes()
    bundle = json.loads(raw)
    what = f"{folder}/{path.name}"
    try:
        response = _post(client, base, raw, what)
    except LoadError as exc:
        if bundle.get("type") != "transaction":
            raise
        # A transaction the server refuses as a whole (the HL7 feature demo: conditional deletes,
        # If-Match on a version that cannot exist): load what can be loaded, entry by entry.
        group.notes.append(f"{what}: transaction refused ({str(exc)[:200]}); loaded as a batch")
        response = _post(client, base, {**bundle, "type": "batch"}, what)
    failed = refused_entries(response)
    if failed:
        group.notes.append(f"{what}: {len(failed)} entries refused ({sorted(set(failed))})")
    keys = _bundle_keys(folder, path, bundle)
    ids = _patient_ids_from_response(bundle, response)
    for index, key in zip(_patient_indexes(bundle), keys, strict=True):
        if index in ids:
            group.patients[key] = ids[index]


def _load_ndjson(client: httpx.Client, base: str, root: Path, group: LoadedGroup) -> None:
    folder = root / NDJSON
    for path in sorted(folder.glob("*.000.ndjson")):
        resources = [
            json.loads(line)
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        response = _post(
            client, base, put_transaction(resources, base_url=base), f"{NDJSON}/{path.name}"
        )
        if failed := refused_entries(response):
            group.notes.append(f"{NDJSON}/{path.name}: {len(failed)} entries refused")
        for resource in resources:
            if resource["resourceType"] == "Patient":
                group.patients[f"{NDJSON}/Patient/{resource['id']}"] = resource["id"]


def _load_examples(
    client: httpx.Client, base: str, root: Path, folder: str, group: LoadedGroup
) -> None:
    plan = _examples_plan(root, folder)
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for _, r in plan.puts
        ],
    }
    response = _post(client, base, batch, f"{folder} examples")
    answers = response.get("entry") or []
    for (key, resource), answer in zip(plan.puts, answers, strict=True):
        status = str((answer.get("response") or {}).get("status", ""))
        if not status.startswith("2"):
            group.notes.append(
                f"{folder}: PUT {resource['resourceType']}/{resource['id']} -> {status}"
            )
        elif key:
            group.patients[key] = resource["id"]
    for path in plan.transactions:
        _load_bundle_file(client, base, folder, path, group)


def load_group(name: str, server: FhirTestServer, root: Path) -> LoadedGroup:
    group = LoadedGroup(server, {})
    with httpx.Client(timeout=300) as client:
        base = server.base_url
        if name == "synthea":
            for folder in (SANDBOX, PIPES):
                paths = sorted((root / folder).glob("*.json"))
                support = sorted(
                    (p for p in paths if _is_support_file(p.name)),
                    key=lambda p: not p.name.startswith("hospital"),
                )
                for path in support:
                    _load_bundle_file(client, base, folder, path, group)
                for path in paths:
                    if not _is_support_file(path.name):
                        _load_bundle_file(client, base, folder, path, group)
            for path in sorted((root / INFERNO).glob("*.json")):
                _load_bundle_file(client, base, INFERNO, path, group)
            _load_ndjson(client, base, root, group)
        else:
            _load_examples(client, base, root, GROUPS[name][0], group)
    return group


class RealData:
    """Starts a group's server and loads it the first time one of its patients is asked for.

    ``root`` gives the data folder when first needed (a corpus test's fixture must not touch the
    corpus before the test runs)."""

    def __init__(
        self,
        stack: contextlib.ExitStack,
        root: Callable[[], Path],
        start: Callable[[int], contextlib.AbstractContextManager[FhirTestServer]] | None = None,
        page_size: int = 20,
    ) -> None:
        self._stack = stack
        self._root = root
        self._start = start or (lambda size: medplum_server(page_size=size))
        self._page_size = page_size
        self.groups: dict[str, LoadedGroup] = {}

    def group(self, name: str) -> LoadedGroup:
        if name not in self.groups:
            server = self._stack.enter_context(self._start(self._page_size))
            self.groups[name] = load_group(name, server, self._root())
        return self.groups[name]

    def locate(self, key: str) -> tuple[FhirTestServer, str]:
        group = self.group(group_of(key))
        if key not in group.patients:
            raise LoadError(f"{key} was not stored by the server; load notes: {group.notes}")
        return group.server, group.patients[key]
