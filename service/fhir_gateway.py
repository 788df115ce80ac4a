"""The only code that talks to an EHR's FHIR server.

- Every URL is checked against the allow-list before anything is sent (``check_allowed``); paging
  links must stay under the same base; redirects are never followed; the bearer token goes only
  to the allowed base.
- One deadline for all the FHIR work of a hook call (``deadline_seconds``), shared by every
  query, page and retry: each request gets what is left of it (and at most
  ``timeout_seconds``). What the deadline cuts off is reported, never read as "nothing found".
- One retry on a timeout, a connection error, 429 or 5xx, after the server's ``Retry-After``
  when it sends one and it fits in the deadline (else at once: no retry); other failures are
  fatal.
- Answers are checked (``service.fhir_answers``): a malformed 200 is a failed query.
- Searches follow ``Bundle.link[next]`` up to a page cap; a page already read ends paging (no
  double counting). Hitting the cap, the deadline, a repeated page, a link outside the base, a
  failed later page or a ``total`` larger than what was sent is reported as truncation.
- One INFO log line per request: resource type, status, elapsed time. Never the query string (it
  holds the patient id) and never the token.
"""

from __future__ import annotations

import asyncio
import logging
import posixpath
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from service import jsonio, metrics
from service.errors import ForbiddenFhirServer, UpstreamFatal, UpstreamFhirError, UpstreamTemporary
from service.fhir_answers import Expectation, Page, read_page, resource_type_of
from service.settings import is_loopback

logger = logging.getLogger(__name__)

RETRY_DELAY_SECONDS = 0.1
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class DeadlineReached(UpstreamTemporary):
    """The hook call's FHIR deadline has passed: nothing more is sent."""


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
            "fhirServer is not on the FHIR allow-list that applies to this client; ask the "
            "service operator to add it. No request was sent to it."
        )


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """A ``Retry-After`` header (seconds or an HTTP date) in seconds; None if absent or odd."""
    if not value:
        return None
    text = value.strip()[:64]
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass
class FetchResult:
    resources: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0
    matches: int = 0
    total: int | None = None
    """``Bundle.total`` of the first page, when the server sends it."""
    truncated: str | None = None
    """Why not every page was read (None: the answer is complete)."""
    slowest_ms: float = 0.0


class FhirGateway:
    """Reads from one allowed FHIR base with the request's bearer token, within one deadline."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        *,
        token: str | None,
        page_cap: int,
        timeout_seconds: float,
        deadline_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._base = _normalise(base_url)
        self._headers = {"Accept": "application/fhir+json, application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._page_cap = page_cap
        self._timeout = timeout_seconds
        self._deadline_seconds = deadline_seconds
        self._clock = clock
        self._deadline = clock() + deadline_seconds

    @property
    def base_url(self) -> str:
        return self._base

    def remaining(self) -> float:
        """Seconds left before the deadline (may be negative)."""
        return self._deadline - self._clock()

    async def _get_once(self, url: str, resource_type: str) -> tuple[dict[str, Any], float]:
        budget = min(self._timeout, self.remaining())
        if budget <= 0:
            raise DeadlineReached(
                f"FHIR {resource_type} query not sent: the {self._deadline_seconds:g} s "
                "deadline for FHIR queries had passed"
            )
        started = time.perf_counter()
        try:
            async with asyncio.timeout(budget):
                response = await self._client.get(
                    url,
                    headers=self._headers,
                    timeout=httpx.Timeout(budget, connect=min(budget, 2.0)),
                    follow_redirects=False,
                )
        except (httpx.TimeoutException, TimeoutError) as exc:
            metrics.fhir_request(resource_type, "timeout", time.perf_counter() - started)
            if self.remaining() <= 0:
                raise DeadlineReached(
                    f"FHIR {resource_type} query not answered within the "
                    f"{self._deadline_seconds:g} s deadline"
                ) from exc
            raise UpstreamTemporary(f"FHIR {resource_type} query timed out") from exc
        except httpx.TransportError as exc:
            metrics.fhir_request(resource_type, "error", time.perf_counter() - started)
            raise UpstreamTemporary(
                f"FHIR {resource_type} query failed to connect ({type(exc).__name__})"
            ) from exc
        elapsed = (time.perf_counter() - started) * 1000
        status = response.status_code
        logger.info(
            "fhir request method=GET type=%s status=%d elapsed_ms=%.1f",
            resource_type,
            status,
            elapsed,
        )
        metrics.fhir_request(resource_type, status, elapsed / 1000)
        if status in RETRY_STATUSES:
            error = UpstreamTemporary(
                f"FHIR {resource_type} query answered HTTP {status}", upstream_status=status
            )
            error.retry_after = retry_after_seconds(response.headers.get("retry-after"))
            raise error
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
            body = jsonio.loads(response.content)
        except ValueError as exc:
            raise UpstreamFatal(f"FHIR {resource_type} query did not answer JSON") from exc
        if not isinstance(body, dict):
            raise UpstreamFatal(f"FHIR {resource_type} query did not answer a FHIR resource")
        return body, elapsed

    async def get_json(self, url: str, resource_type: str) -> tuple[dict[str, Any], float]:
        """GET with one retry on temporary failures, within the deadline."""
        if not is_under(url, self._base):
            raise ForbiddenFhirServer("a FHIR link points outside fhirServer; it was not followed")
        try:
            return await self._get_once(url, resource_type)
        except DeadlineReached:
            raise
        except UpstreamTemporary as exc:
            delay = exc.retry_after if exc.retry_after is not None else RETRY_DELAY_SECONDS
            if delay >= self.remaining():
                raise UpstreamTemporary(
                    f"{exc.message} (no retry: it would end after the "
                    f"{self._deadline_seconds:g} s deadline)",
                    upstream_status=exc.upstream_status,
                ) from exc
            await asyncio.sleep(delay)
            return await self._get_once(url, resource_type)

    async def fetch(self, query: str) -> FetchResult:
        """Run a rendered prefetch template (a read or a search) and check what it answers."""
        expect = Expectation.of(query)
        resource_type = resource_type_of(query)
        url = f"{self._base}/{query.lstrip('/')}"
        body, elapsed = await self.get_json(url, resource_type)
        result = FetchResult(pages=1, slowest_ms=elapsed)
        await self._collect(read_page(body, expect, resource_type), expect, result, {url})
        return result

    async def follow(self, first: Page, expect: Expectation) -> FetchResult:
        """Collect a prefetched Bundle's entries and the pages behind its ``next`` link."""
        result = FetchResult(pages=1)
        await self._collect(first, expect, result, set())
        return result

    async def _collect(
        self, page: Page, expect: Expectation, result: FetchResult, visited: set[str]
    ) -> None:
        resource_type = expect.resource_type
        result.total = page.total
        while True:
            result.resources.extend(page.resources)
            result.matches += page.matches
            next_url = page.next_url
            if next_url is None:
                break
            if next_url in visited:
                result.truncated = "a paging link pointed at a page already read; paging stopped"
                return
            if not is_under(next_url, self._base):
                result.truncated = "a paging link pointed outside fhirServer and was not followed"
                return
            if result.pages >= self._page_cap:
                result.truncated = f"results truncated after {result.pages} pages (page cap)"
                return
            visited.add(next_url)
            try:
                body, elapsed = await self.get_json(next_url, resource_type)
                page = read_page(body, expect, resource_type)
            except DeadlineReached:
                result.truncated = (
                    f"the {self._deadline_seconds:g} s deadline for FHIR queries was reached "
                    f"after {result.pages} pages"
                )
                return
            except UpstreamFhirError as exc:
                result.truncated = f"page {result.pages + 1} failed ({exc.message})"
                return
            result.pages += 1
            result.slowest_ms = max(result.slowest_ms, elapsed)
        if result.total is not None and result.matches < result.total:
            result.truncated = (
                f"the server counted {result.total} matches but sent {result.matches} and no "
                "next page"
            )
