"""What a FHIR answer must look like before its entries are believed (fail safe).

A query that answered something other than what it asked for is a failed query, never an empty
one. Only a well-formed Bundle with zero matching entries means "nothing found". Used for the
answers the service reads itself and for prefetch values alike:

- a read (``Patient/123``) must answer that resource type (with that id, when it has one);
- a search must answer a Bundle whose entries each hold a resource of the searched type, or of a
  type the query ``_include``s; OperationOutcome entries with only warnings are skipped (search
  mode ``outcome``), one with an error or fatal issue means the query failed;
- anything else (another resource, an entry without a resource, entries of the wrong type, a
  Bundle with fewer matches than its ``total`` and no next page) is malformed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from fhir_mappers.codes import as_list
from service.errors import UpstreamFatal

FAILED_SEVERITIES = frozenset({"error", "fatal"})


class MalformedAnswer(UpstreamFatal):
    """The answer is not what the query asks for (not a Bundle, wrong entry types, ...)."""


class QueryFailed(UpstreamFatal):
    """The answer is an OperationOutcome (or a Bundle holding one) reporting an error."""


def resource_type_of(query: str) -> str:
    """The resource type a query reads: its first path segment ("?" if it is not one).

    Never taken from a full URL's last segment: a read ``Patient/<id>`` must log "Patient", not
    the id (ids are patient data).
    """
    first = urlsplit(query).path.strip("/").split("/", 1)[0]
    return first if first.isalpha() and first[:1].isupper() and len(first) <= 40 else "?"


@dataclass(frozen=True)
class Expectation:
    """What a rendered query may answer."""

    resource_type: str
    read_id: str | None = None
    """The id of a read (``Patient/123``); None for a search."""
    includes: frozenset[str] = frozenset()
    """Resource types the search brings in with ``_include`` (e.g. Medication)."""

    @classmethod
    def of(cls, query: str) -> Expectation:
        parts = urlsplit(query)
        segments = [unquote(s) for s in parts.path.strip("/").split("/") if s]
        resource_type = resource_type_of(query)
        read_id = segments[1] if len(segments) >= 2 else None
        includes: set[str] = set()
        for value in parse_qs(parts.query).get("_include", []):
            pieces = value.split(":")
            if len(pieces) >= 3 and pieces[2]:
                includes.add(pieces[2])
            elif len(pieces) == 2 and pieces[1]:
                includes.add(pieces[1][:1].upper() + pieces[1][1:])
        return cls(resource_type, read_id, frozenset(includes))


@dataclass(frozen=True)
class Page:
    """One checked page of an answer."""

    resources: list[dict[str, Any]]
    matches: int
    """Entries of the searched type (``Bundle.total`` counts these, not the includes)."""
    total: int | None = None
    next_url: str | None = None


def _error_outcome(resource: dict[str, Any]) -> bool:
    return any(
        isinstance(issue, dict) and issue.get("severity") in FAILED_SEVERITIES
        for issue in as_list(resource.get("issue"))
    )


def next_link(bundle: dict[str, Any]) -> str | None:
    for link in as_list(bundle.get("link")):
        if isinstance(link, dict) and link.get("relation") == "next":
            url = link.get("url")
            return url if isinstance(url, str) and url else None
    return None


def read_page(body: Any, expect: Expectation, what: str) -> Page:
    """The resources of one answer page, checked against the query. ``what`` names the query in
    messages (a resource type or a prefetch key; never an id). Raises ``MalformedAnswer`` or
    ``QueryFailed``."""
    if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
        raise MalformedAnswer(f"{what}: the answer is not a FHIR resource")
    kind = body["resourceType"]
    if kind == "OperationOutcome":
        raise QueryFailed(f"{what}: the FHIR server answered with an OperationOutcome")
    if expect.read_id is not None:
        if kind != expect.resource_type:
            raise MalformedAnswer(f"{what}: a read answered a {kind[:40]}, not a resource")
        ident = body.get("id")
        if ident is not None and ident != expect.read_id:
            raise MalformedAnswer(f"{what}: a read answered a resource with another id")
        return Page([body], 1)
    if kind != "Bundle":
        raise MalformedAnswer(f"{what}: a search answered a {kind[:40]}, not a Bundle")
    allowed = {expect.resource_type, *expect.includes}
    resources: list[dict[str, Any]] = []
    matches = 0
    raw_entries = body.get("entry")
    if raw_entries is not None and not isinstance(raw_entries, list | dict):
        raise MalformedAnswer(f"{what}: Bundle.entry is not a list of entries")
    for entry in as_list(raw_entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            raise MalformedAnswer(f"{what}: a Bundle entry holds no resource")
        rtype = resource.get("resourceType")
        if rtype == "OperationOutcome":
            if _error_outcome(resource):
                raise QueryFailed(f"{what}: the search reported an error (OperationOutcome)")
            continue
        if rtype not in allowed:
            raise MalformedAnswer(f"{what}: the search answered entries of type {str(rtype)[:40]}")
        resources.append(resource)
        if rtype == expect.resource_type:
            matches += 1
    total = body.get("total")
    return Page(
        resources,
        matches,
        total if isinstance(total, int) and not isinstance(total, bool) and total >= 0 else None,
        next_link(body),
    )
