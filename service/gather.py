"""Gathering a hook's data: prefetch first, the EHR's FHIR server for what is missing.

Per prefetch key (checklist section D):

- present with a resource or Bundle -> use it (and follow the Bundle's ``next`` links when a
  fhirServer is available, else record a gap);
- present with ``null`` -> authoritative "queried, nothing found": no query, no 412;
- present with an OperationOutcome (bare, or as the only content of a Bundle) -> the client's query
  failed: it is not repeated; a required key then gives 412, an optional one a data gap;
- missing -> the service renders the same template and runs it against fhirServer, all missing
  keys concurrently; a required key that cannot be had gives 412 (never a guess).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from hooks.base import HookService
from service.errors import (
    DataUnavailable,
    ForbiddenFhirServer,
    UpstreamFhirError,
)
from service.fhir_gateway import FetchResult, FhirGateway, entry_resources, next_link
from service.prefetch import render

logger = logging.getLogger(__name__)


@dataclass
class Gathered:
    resources: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    gaps: list[str] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)
    """Keys the service queried itself (for explain and logs)."""
    slowest_query_ms: float = 0.0


def _is_failure(value: dict[str, Any]) -> bool:
    if value.get("resourceType") == "OperationOutcome":
        return True
    if value.get("resourceType") == "Bundle":
        entries = value.get("entry")
        if isinstance(entries, list) and entries:
            resources = (e.get("resource") for e in entries if isinstance(e, dict))
            return all(
                isinstance(r, dict)
                and r.get("resourceType") == "OperationOutcome"
                and any(
                    isinstance(i, dict) and i.get("severity") in ("error", "fatal")
                    for i in r.get("issue") or []
                )
                for r in resources
            )
    return False


def _unavailable(service: HookService, key: str, why: str, gathered: Gathered) -> None:
    if key in service.required_prefetch:
        raise DataUnavailable(
            f"required data '{key}' is unavailable: {why}. Send it as prefetch, or send "
            "fhirServer (and fhirAuthorization) so the service can query it."
        )
    gathered.gaps.append(f"{key}: {why}; not checked")


async def gather(
    service: HookService,
    *,
    context: dict[str, Any],
    prefetch: dict[str, dict[str, Any] | None] | None,
    gateway: FhirGateway | None,
) -> Gathered:
    gathered = Gathered()
    prefetch = prefetch or {}
    to_fetch: dict[str, str] = {}
    to_follow: dict[str, dict[str, Any]] = {}
    for key, template in service.prefetch.items():
        if key in prefetch:
            value = prefetch[key]
            if value is None:
                gathered.resources[key] = []
            elif not isinstance(value, dict) or _is_failure(value):
                _unavailable(service, key, "the EHR reported that its query failed", gathered)
                gathered.resources[key] = []
            elif value.get("resourceType") == "Bundle":
                if next_link(value) is not None:
                    if gateway is not None:
                        to_follow[key] = value
                        continue
                    gathered.gaps.append(
                        f"{key}: prefetch has more pages but no fhirServer to read them; "
                        "only the first page was used"
                    )
                gathered.resources[key] = entry_resources(value)
            else:
                gathered.resources[key] = [value]
            continue
        rendered = render(template, context)
        if rendered is None:
            _unavailable(service, key, "its prefetch template cannot be filled", gathered)
            gathered.resources[key] = []
        elif gateway is None:
            _unavailable(service, key, "not prefetched and no fhirServer was given", gathered)
            gathered.resources[key] = []
        else:
            to_fetch[key] = rendered

    if gateway is not None and (to_fetch or to_follow):
        keys = list(to_fetch) + list(to_follow)
        jobs = [gateway.fetch(to_fetch[k]) for k in to_fetch]
        jobs += [gateway.follow(to_follow[k]) for k in to_follow]
        results = await asyncio.gather(*jobs, return_exceptions=True)
        for key, result in zip(keys, results, strict=True):
            gathered.resources[key] = []
            if isinstance(result, ForbiddenFhirServer):
                raise result
            if isinstance(result, UpstreamFhirError):
                _unavailable(service, key, result.message, gathered)
                continue
            if isinstance(result, BaseException):
                raise result
            _take(gathered, key, result)
    return gathered


def _take(gathered: Gathered, key: str, result: FetchResult) -> None:
    gathered.resources[key] = result.resources
    gathered.fetched.append(key)
    gathered.slowest_query_ms = max(gathered.slowest_query_ms, result.slowest_ms)
    if result.truncated:
        of_total = f" of {result.total}" if result.total is not None else ""
        gathered.gaps.append(
            f"{key}: results truncated after {result.pages} pages ({len(result.resources)}"
            f"{of_total} records read); the rest were not checked, whatever their dates"
        )
    gathered.gaps.extend(f"{key}: {note}" for note in result.notes)
