"""Prefetch filled as an EHR fills it: render each discovery template, run it, read every page.

From a FHIR server over httpx (``read_prefetch``), or from an in-memory one
(``prefetch_from_memory``: the same reader through the server's transport). A key with no data
is ``null``; a failed query is sent as an OperationOutcome (the EHR tried and failed); a template
that cannot be rendered is left out. ``ignore`` drops search parameters from the rendered
queries: an EHR that cannot apply them (e.g. ``code``: every Observation is sent).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from ehr.fhir_http import response_problem
from ehr.memory_fhir import MemoryFhirServer, operation_outcome
from service.fhir_answers import next_link
from service.fhir_gateway import is_under
from service.prefetch import render

PAGE_CAP = 200
"""Pages a CDS client reads per prefetch query before giving up (the EHR side, not the service)."""


@dataclass
class PrefetchRead:
    """What a CDS client read from the FHIR server to fill the prefetch."""

    prefetch: dict[str, Any] = field(default_factory=dict)
    requests: int = 0
    pages: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def without_parameters(rendered: str, names: Collection[str]) -> str:
    """The query without the named search parameters (the rest kept byte for byte)."""
    path, mark, query = rendered.partition("?")
    if not mark or not names:
        return rendered
    kept = [p for p in query.split("&") if p.partition("=")[0] not in names]
    return path + ("?" + "&".join(kept) if kept else "")


def _merged(entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Every page's entries as one searchset (no paging links), or None when nothing matched."""
    if not entries:
        return None
    matches = [e for e in entries if (e.get("search") or {}).get("mode", "match") == "match"]
    return {"resourceType": "Bundle", "type": "searchset", "total": len(matches), "entry": entries}


async def _read_key(
    fhir: httpx.AsyncClient, base_url: str, key: str, rendered: str, read: PrefetchRead
) -> Any:
    url: str | None = f"{base_url.rstrip('/')}/{rendered.lstrip('/')}"
    entries: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    pages = 0
    while url is not None:
        read.requests += 1
        try:
            response = await fhir.get(url)
        except httpx.HTTPError as exc:
            read.problems.append(f"{key}: {type(exc).__name__}")
            return operation_outcome(
                "exception", f"the query for {key} failed ({type(exc).__name__})"
            )
        if response.status_code == 404 and pages == 0 and "?" not in rendered:
            return None  # a read of something that does not exist: nothing found
        if response.status_code != 200:
            read.problems.append(f"{key}: {response_problem(response)}")
            return operation_outcome(
                "exception", f"the query for {key} answered {response_problem(response)}"
            )
        body = response.json()
        pages += 1
        if body.get("resourceType") != "Bundle":
            read.pages[key] = pages
            return body
        for entry in body.get("entry") or []:
            resource = entry.get("resource")
            if not isinstance(resource, dict):
                continue
            ident = (str(resource.get("resourceType")), str(resource.get("id")))
            if ident in seen and resource.get("id") is not None:
                continue  # an _include repeated on several pages
            seen.add(ident)
            entries.append(entry)
        url = next_link(body)
        if url is not None and not is_under(url, base_url):
            read.problems.append(f"{key}: a paging link left the FHIR server; not followed")
            url = None
        if url is not None and pages >= PAGE_CAP:
            read.problems.append(f"{key}: more than {PAGE_CAP} pages; the rest not read")
            url = None
    read.pages[key] = pages
    return _merged(entries)


async def read_prefetch(
    fhir: httpx.AsyncClient,
    base_url: str,
    templates: Mapping[str, str],
    context: dict[str, Any],
    *,
    ignore: Collection[str] = (),
) -> PrefetchRead:
    """Fill the prefetch from the FHIR server at ``base_url``, all keys concurrently."""
    read = PrefetchRead()
    rendered = {k: render(t, context) for k, t in templates.items()}
    queries = {k: without_parameters(r, ignore) for k, r in rendered.items() if r is not None}
    values = await asyncio.gather(
        *(_read_key(fhir, base_url, k, q, read) for k, q in queries.items())
    )
    read.prefetch = dict(zip(queries, values, strict=True))
    return read


def prefetch_from_memory(
    server: MemoryFhirServer,
    templates: Mapping[str, str],
    context: dict[str, Any],
    *,
    ignore: Collection[str] = (),
) -> dict[str, Any]:
    """The prefetch an EHR whose FHIR server is ``server`` sends (for synchronous callers)."""

    async def fill() -> PrefetchRead:
        async with httpx.AsyncClient(transport=server.transport()) as client:
            return await read_prefetch(client, server.base, templates, context, ignore=ignore)

    return asyncio.run(fill()).prefetch
