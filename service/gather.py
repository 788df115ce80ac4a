"""Gathering a hook's data: prefetch first, the EHR's FHIR server for what is missing.

Per prefetch key (checklist section D):

- present with a resource or Bundle -> checked like an answer the service read itself
  (``service.fhir_answers``) and used, following the Bundle's ``next`` links when a fhirServer is
  available;
- present with ``null`` -> authoritative "queried, nothing found": no query, no 412;
- present with an OperationOutcome (bare, or as an error inside a Bundle) -> the client's query
  failed: it is not repeated;
- missing -> the service renders the same template and runs it against fhirServer, all missing
  keys concurrently, within one deadline.

A key whose data could not be had (the EHR's query failed, the answer was malformed, the key is
missing with no fhirServer, the service's own query failed or ran out of time) is a failed source:
a required key gives 412 (never a guess); an optional one becomes ``Unreadable``, which the rules
turn into the screens it leaves undone (it is never read as "nothing found"). A source read only
in part (paging cut short by the page cap, the deadline, a repeated or foreign link, a failed
later page, or fewer matches than the server's ``total``) is ``Unreadable`` too, with what was
read kept: what it shows still counts.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from fhir_mappers.facts import Unreadable
from hooks.base import HookService
from hooks.contexts import HookContext
from service.errors import DataUnavailable, ForbiddenFhirServer, UpstreamFhirError
from service.fhir_answers import Expectation, Page, QueryFailed, read_page
from service.fhir_gateway import FetchResult, FhirGateway
from service.prefetch import render

logger = logging.getLogger(__name__)

DEADLINE_GRACE_SECONDS = 0.25
"""How long past the FHIR deadline gathering waits for a query to wind down before it gives up
on it (the gateway itself stops at the deadline)."""


@dataclass
class Gathered:
    resources: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    unreadable: list[Unreadable] = field(default_factory=list)
    """Optional sources that failed or were read only in part."""
    fetched: list[str] = field(default_factory=list)
    """Keys the service queried itself (for explain and logs)."""


@dataclass(frozen=True)
class _Key:
    name: str
    template: str
    rendered: str | None
    expect: Expectation

    @property
    def resource_type(self) -> str:
        return self.expect.resource_type


def _fail(service: HookService, key: _Key, why: str, gathered: Gathered) -> None:
    if key.name in service.required_prefetch:
        raise DataUnavailable(
            f"required data '{key.name}' is unavailable: {why}. Send it as prefetch, or send "
            "fhirServer (and fhirAuthorization) so the service can query it."
        )
    gathered.resources[key.name] = []
    gathered.unreadable.append(Unreadable(key.resource_type, f"{key.name}: {why}"))


def _partial(key: _Key, resources: list[dict[str, Any]], why: str, gathered: Gathered) -> None:
    """Some of the answer was read: keep it, and report the rest as not checked."""
    gathered.resources[key.name] = resources
    gathered.unreadable.append(
        Unreadable(key.resource_type, f"{key.name}: {why} ({len(resources)} records read)")
    )


def _short(page: Page) -> str | None:
    """Why a single page (no next link) is incomplete, if its total says so."""
    if page.next_url is None and page.total is not None and page.matches < page.total:
        return f"the answer counted {page.total} matches but holds {page.matches}"
    return None


async def gather(
    service: HookService,
    *,
    context: HookContext,
    prefetch: dict[str, dict[str, Any] | None] | None,
    gateway: FhirGateway | None,
) -> Gathered:
    gathered = Gathered()
    prefetch = prefetch or {}
    to_fetch: list[_Key] = []
    to_follow: list[tuple[_Key, Page]] = []
    fields = context.template_fields()
    for name, template in service.prefetch.items():
        rendered = render(template, fields)
        key = _Key(name, template, rendered, Expectation.of(rendered or template))
        if name in prefetch:
            value = prefetch[name]
            if value is None:
                gathered.resources[name] = []
                continue
            try:
                page = read_page(value, key.expect, name)
            except QueryFailed:
                _fail(service, key, "the EHR reported that its query failed", gathered)
                continue
            except UpstreamFhirError as exc:
                _fail(service, key, f"the prefetched answer is malformed ({exc.message})", gathered)
                continue
            if page.next_url is not None:
                if gateway is not None:
                    to_follow.append((key, page))
                    continue
                _partial(
                    key,
                    page.resources,
                    "the prefetch has more pages but no fhirServer was given to read them",
                    gathered,
                )
                continue
            short = _short(page)
            if short:
                _partial(key, page.resources, short, gathered)
            else:
                gathered.resources[name] = page.resources
            continue
        if rendered is None:
            _fail(service, key, "its prefetch template cannot be filled", gathered)
        elif gateway is None:
            _fail(service, key, "not prefetched and no fhirServer was given", gathered)
        else:
            to_fetch.append(key)

    if gateway is not None and (to_fetch or to_follow):
        jobs: dict[asyncio.Task[FetchResult], _Key] = {}
        for key in to_fetch:
            assert key.rendered is not None
            jobs[asyncio.ensure_future(gateway.fetch(key.rendered))] = key
        for key, page in to_follow:
            jobs[asyncio.ensure_future(gateway.follow(page, key.expect))] = key
        _, pending = await asyncio.wait(
            jobs, timeout=max(gateway.remaining(), 0.0) + DEADLINE_GRACE_SECONDS
        )
        for task in pending:
            task.cancel()
        for task, key in jobs.items():
            if task in pending:
                _fail(service, key, "the FHIR query did not finish within the deadline", gathered)
                continue
            error = task.exception()
            if isinstance(error, ForbiddenFhirServer):
                raise error
            if isinstance(error, UpstreamFhirError):
                _fail(service, key, error.message, gathered)
                continue
            if error is not None:
                raise error
            _take(gathered, key, task.result())
    return gathered


def _take(gathered: Gathered, key: _Key, result: FetchResult) -> None:
    gathered.fetched.append(key.name)
    if result.truncated:
        of_total = f" of {result.total}" if result.total is not None else ""
        _partial(
            key,
            result.resources,
            f"{result.truncated}; {result.matches}{of_total} matches were read, the rest were "
            "not checked",
            gathered,
        )
    else:
        gathered.resources[key.name] = result.resources
