"""The only code that talks to an EHR's FHIR server.

- Every URL is checked against the allow-list before anything is sent (``check_allowed``); paging
  links must stay under the same base; redirects are never followed; the bearer token goes only
  to the allowed base.
- Searches follow ``Bundle.link[next]`` up to a page cap; hitting it is reported as truncation.
- One quick retry on a timeout, a connection error, 429 or 5xx; other failures are fatal.
- One INFO log line per request: resource type, status, elapsed time. Never the query string (it
  holds the patient id) and never the token.
"""

from __future__ import annotations

import asyncio
import logging
import posixpath
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import orjson

from service.errors import ForbiddenFhirServer, UpstreamFatal, UpstreamTemporary
from service.settings import is_loopback

logger = logging.getLogger(__name__)

RETRY_DELAY_SECONDS = 0.1
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def _normalise(url: str) -> str:
    return url.strip().rstrip("/")


def is_under(url: str, base: str) -> bool:
    """Whether ``url`` is ``base`` or a path below it (same scheme, host and port)."""
    url, base = _normalise(url), _normalise(base)
    if url == base:
        return True
    target, root = urlsplit(url), urlsplit(base)
    if (target.scheme, target.netloc.lower()) != (root.scheme, root.netloc.lower()):
        return False
    if target.username or target.password:
        return False
    # Resolve "." and ".." (also percent-encoded) so "/fhir/../admin" is not "under" /fhir.
    path = posixpath.normpath(unquote(target.path) or "/")
    root_path = posixpath.normpath(unquote(root.path) or "/")
    if root_path == "/":
        return True
    return path == root_path or path.startswith(root_path.rstrip("/") + "/")


def check_allowed(
    fhir_server: str, prefixes: tuple[str, ...], *, any_loopback: bool = False
) -> None:
    """Raise ForbiddenFhirServer unless the server is under one of the allowed prefixes.

    ``any_loopback`` (development mode only) also allows a FHIR server on this machine, on any
    port (e.g. a local HAPI at http://localhost:8080/fhir).
    """
    parts = urlsplit(fhir_server)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.username:
        raise ForbiddenFhirServer("fhirServer is not a plain http(s) base URL; request refused")
    if any_loopback and is_loopback(parts.hostname or ""):
        return
    if not any(is_under(fhir_server, prefix) for prefix in prefixes):
        raise ForbiddenFhirServer(
            "fhirServer is not on this service's allow-list (KETAMINE_CDS_ALLOWED_FHIR_SERVERS); "
            "ask the service operator to add it. No request was sent to it."
        )


def resource_type_of(relative: str) -> str:
    """The resource type a rendered template queries: its first path segment ("?" if odd).

    Never taken from a full URL's last segment: a read ``Patient/<id>`` must log "Patient", not
    the id (ids are patient data).
    """
    first = urlsplit(relative).path.strip("/").split("/", 1)[0]
    return first if first.isalpha() and first[:1].isupper() and len(first) <= 40 else "?"


@dataclass
class FetchResult:
    resources: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False
    pages: int = 0
    slowest_ms: float = 0.0
    total: int | None = None
    """``Bundle.total`` of the first page, when the server sends it."""
    notes: list[str] = field(default_factory=list)


class FhirGateway:
    """Reads from one allowed FHIR base with the request's bearer token."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        *,
        token: str | None,
        page_cap: int,
        timeout_seconds: float,
    ) -> None:
        self._client = client
        self._base = _normalise(base_url)
        self._headers = {"Accept": "application/fhir+json, application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._page_cap = page_cap
        self._timeout = httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 2.0))
        self._total_seconds = timeout_seconds  # a deadline for the whole request, not per phase

    @property
    def base_url(self) -> str:
        return self._base

    async def _get_once(self, url: str, resource_type: str) -> tuple[dict[str, Any], float]:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._total_seconds):
                response = await self._client.get(
                    url, headers=self._headers, timeout=self._timeout, follow_redirects=False
                )
        except (httpx.TimeoutException, TimeoutError) as exc:
            raise UpstreamTemporary(f"FHIR {resource_type} query timed out") from exc
        except httpx.TransportError as exc:
            raise UpstreamTemporary(
                f"FHIR {resource_type} query failed to connect ({type(exc).__name__})"
            ) from exc
        elapsed = (time.perf_counter() - started) * 1000
        logger.info(
            "fhir request method=GET type=%s status=%d elapsed_ms=%.1f",
            resource_type,
            response.status_code,
            elapsed,
        )
        status = response.status_code
        if status in RETRY_STATUSES:
            raise UpstreamTemporary(
                f"FHIR {resource_type} query answered HTTP {status}", upstream_status=status
            )
        if 300 <= status < 400:
            raise UpstreamFatal(
                f"FHIR {resource_type} query was redirected; redirects are not followed",
                upstream_status=status,
            )
        if status >= 400:
            raise UpstreamFatal(
                f"FHIR {resource_type} query answered HTTP {status}", upstream_status=status
            )
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise UpstreamFatal(f"FHIR {resource_type} query did not return JSON") from exc
        if not isinstance(body, dict):
            raise UpstreamFatal(f"FHIR {resource_type} query did not return a FHIR resource")
        return body, elapsed

    async def get_json(self, url: str, resource_type: str) -> tuple[dict[str, Any], float]:
        """GET with one quick retry on temporary failures."""
        if not is_under(url, self._base):
            raise ForbiddenFhirServer("a FHIR link points outside fhirServer; it was not followed")
        try:
            return await self._get_once(url, resource_type)
        except UpstreamTemporary:
            await asyncio.sleep(RETRY_DELAY_SECONDS)
            return await self._get_once(url, resource_type)

    async def fetch(self, relative: str) -> FetchResult:
        """Run a rendered prefetch template (a read or a search) against the base."""
        resource_type = resource_type_of(relative)
        body, elapsed = await self.get_json(f"{self._base}/{relative.lstrip('/')}", resource_type)
        result = FetchResult(pages=1, slowest_ms=elapsed)
        if body.get("resourceType") == "Bundle":
            await self._collect(body, result, resource_type)
        elif body.get("resourceType") == "OperationOutcome":
            raise UpstreamFatal(f"FHIR {resource_type} query returned an OperationOutcome")
        else:
            result.resources.append(body)
        return result

    async def follow(self, bundle: dict[str, Any]) -> FetchResult:
        """Collect a prefetched Bundle's entries and the pages behind its ``next`` link."""
        result = FetchResult(pages=1)
        resources = entry_resources(bundle)
        kind = resources[0].get("resourceType") if resources else None
        await self._collect(bundle, result, kind if isinstance(kind, str) else "?")
        return result

    async def _collect(
        self, bundle: dict[str, Any], result: FetchResult, resource_type: str
    ) -> None:
        page: dict[str, Any] | None = bundle
        total = bundle.get("total")
        if isinstance(total, int) and not isinstance(total, bool):
            result.total = total
        while page is not None:
            result.resources.extend(entry_resources(page))
            next_url = next_link(page)
            if next_url is None:
                return
            if result.pages >= self._page_cap:
                result.truncated = True
                return
            if not is_under(next_url, self._base):
                result.notes.append("a paging link pointed outside fhirServer and was not followed")
                result.truncated = True
                return
            page, elapsed = await self.get_json(next_url, resource_type)
            result.pages += 1
            result.slowest_ms = max(result.slowest_ms, elapsed)
            if page.get("resourceType") != "Bundle":
                raise UpstreamFatal("a FHIR paging link did not return a Bundle")


def entry_resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """Resources of a searchset page, without OperationOutcome warnings (search.mode outcome)."""
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        return []
    found: list[dict[str, Any]] = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
            continue
        resource = entry["resource"]
        if resource.get("resourceType") == "OperationOutcome":
            continue
        found.append(resource)
    return found


def next_link(bundle: dict[str, Any]) -> str | None:
    links = bundle.get("link")
    if not isinstance(links, list):
        return None
    for link in links:
        if isinstance(link, dict) and link.get("relation") == "next":
            url = link.get("url")
            return url if isinstance(url, str) and url else None
    return None
