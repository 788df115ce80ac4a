"""An in-memory FHIR R4 server: the EHR's FHIR API for the tests, the offline tools and the
benchmark.

It answers what our prefetch templates (``hooks/patient_data.py``) and the service's fallback
queries ask: reads (``Type/id``) and type searches filtered by ``patient`` and by ``code`` token
lists (``system|code,...``; a bare ``code`` matches any system, ``|code`` only codings without
one), with ``_include=Type:medication``, in pages (``_count``, ``_page``) linked by ``next``.
Other search parameters are ignored.

- ``handle(path, query)``: the server itself, (status, JSON body);
- ``handler(request)``: the same as an httpx or respx handler; every request is kept in
  ``requests``;
- ``transport()``: an httpx transport for a client (the app's FHIR client, a prefetch reader).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs, parse_qsl, unquote, urlencode, urlsplit

import httpx

from service import jsonio

FHIR_JSON = "application/fhir+json"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
SUBJECT_FIELDS = ("subject", "patient")
"""Where our resource types name their patient (``patient`` for AllergyIntolerance)."""


def operation_outcome(code: str, text: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }


def _about(resource: dict[str, Any], patient: str) -> bool:
    """Whether the resource is the patient's. One that names no patient in a readable reference
    (a malformed record) counts as anyone's: it still reaches the service, as an EHR's would."""
    wanted = patient if patient.startswith("Patient/") else f"Patient/{patient}"
    for field in SUBJECT_FIELDS:
        ref = resource.get(field)
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            target = str(ref["reference"])
            return target == wanted or target.endswith("/" + wanted)
    return True


def _tokens(values: list[str]) -> set[tuple[str | None, str]]:
    """``system|code`` -> (system, code); ``|code`` -> ("", code); ``code`` -> (None, code)."""
    wanted: set[tuple[str | None, str]] = set()
    for value in ",".join(values).split(","):
        system, bar, code = value.rpartition("|")
        wanted.add((system if bar else None, code))
    return wanted


def _has_code(resource: dict[str, Any], wanted: set[tuple[str | None, str]]) -> bool:
    concept = resource.get("code")
    codings = concept.get("coding") if isinstance(concept, dict) else None
    for coding in codings or []:
        if not isinstance(coding, dict):
            continue
        code, system = coding.get("code"), coding.get("system") or ""
        if (None, code) in wanted or (system, code) in wanted:
            return True
    return False


def _number(query: Mapping[str, list[str]], name: str, default: int) -> int:
    value = query.get(name, [str(default)])[0]
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name} must be a positive whole number")
    return int(value)


class MemoryFhirServer:
    """One FHIR base URL serving ``resources`` from memory."""

    def __init__(
        self,
        resources: Iterable[dict[str, Any]],
        *,
        base: str,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> None:
        self.resources = list(resources)
        self.base = base.rstrip("/")
        self.page_size = page_size
        self.requests: list[httpx.Request] = []
        self._base_path = urlsplit(self.base).path.rstrip("/")
        self._by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._by_ref: dict[str, dict[str, Any]] = {}
        for resource in self.resources:
            kind, ident = resource.get("resourceType"), resource.get("id")
            self._by_type[str(kind)].append(resource)
            if isinstance(ident, str):
                self._by_ref[f"{kind}/{ident}"] = resource

    def read(self, kind: str, ident: str) -> dict[str, Any] | None:
        return self._by_ref.get(f"{kind}/{ident}")

    def search(self, kind: str, query: Mapping[str, list[str]]) -> list[dict[str, Any]]:
        """Every match of a type search (no paging, no includes)."""
        found = self._by_type.get(kind, [])
        if "patient" in query:
            patient = query["patient"][0]
            found = [r for r in found if _about(r, patient)]
        if "code" in query:
            wanted = _tokens(query["code"])
            found = [r for r in found if _has_code(r, wanted)]
        return found

    def _included(self, page: list[dict[str, Any]]) -> list[dict[str, Any]]:
        refs = dict.fromkeys(
            str((r.get("medicationReference") or {}).get("reference")) for r in page
        )
        return [
            self._by_ref[ref]
            for ref in refs
            if ref.startswith("Medication/") and ref in self._by_ref
        ]

    def _entry(self, resource: dict[str, Any], mode: str) -> dict[str, Any]:
        return {
            "fullUrl": f"{self.base}/{resource['resourceType']}/{resource.get('id')}",
            "resource": resource,
            "search": {"mode": mode},
        }

    def _searchset(self, kind: str, query_string: str) -> dict[str, Any]:
        query = parse_qs(query_string)
        matches = self.search(kind, query)
        size = min(MAX_PAGE_SIZE, _number(query, "_count", self.page_size))
        number = _number(query, "_page", 1)
        page = matches[(number - 1) * size : number * size]
        entries = [self._entry(r, "match") for r in page]
        if query.get("_include", [""])[0].endswith(":medication"):
            entries += [self._entry(r, "include") for r in self._included(page)]
        links = [{"relation": "self", "url": f"{self.base}/{kind}?{query_string}"}]
        if number * size < len(matches):
            following = [(k, v) for k, v in parse_qsl(query_string) if k != "_page"]
            following.append(("_page", str(number + 1)))
            links.append({"relation": "next", "url": f"{self.base}/{kind}?{urlencode(following)}"})
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(matches),
            "link": links,
            "entry": entries,
        }

    def handle(self, path: str, query: str) -> tuple[int, dict[str, Any]]:
        """The answer to ``GET {path}?{query}`` (``path`` as sent, percent-encoded)."""
        if not (path == self._base_path or path.startswith(self._base_path + "/")):
            return 404, operation_outcome("not-found", "not a path of this FHIR server")
        segments = [unquote(s) for s in path[len(self._base_path) :].split("/") if s]
        if len(segments) == 2:
            resource = self.read(*segments)
            if resource is None:
                return 404, operation_outcome("not-found", f"{segments[0]} not found")
            return 200, resource
        if len(segments) != 1:
            return 400, operation_outcome("not-supported", "only reads and type searches")
        try:
            return 200, self._searchset(segments[0], query)
        except ValueError as exc:
            return 400, operation_outcome("invalid", str(exc))

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.method != "GET":
            status, body = 405, operation_outcome("not-supported", "this server is read-only")
        else:
            path = request.url.raw_path.split(b"?", 1)[0].decode("ascii")
            status, body = self.handle(path, request.url.query.decode("ascii"))
        return httpx.Response(
            status, content=jsonio.dumps(body), headers={"Content-Type": FHIR_JSON}
        )

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)
