"""``ketamine-cds seed | invoke | explain``: the service against a real FHIR server.

    ketamine-cds seed --fhir-server URL [--token T] [--prefix P] [--no-roll] [--json]
        loads the 50 scenario patients (examples/patients) by transaction, dates moved to today,
        and prints each patient id with what it should produce
    ketamine-cds invoke HOOK-OR-SERVICE --fhir-server URL --patient ID [--draft-order FILE]
        [--prefetch | --no-prefetch] [--service-url URL] [--token T] [--json]
        acts as a CDS client (an EHR): reads discovery, fills the prefetch from the FHIR server
        (or sends only fhirServer), calls the service and prints the cards
    ketamine-cds explain HOOK-OR-SERVICE ...   (same options) prints the assessment as well

Without ``--service-url`` the service runs in this process, in development mode, allowed to call
the given FHIR server; with it, a running service is called (add ``--jwt-key``/``--jwt-iss``
unless it runs in development mode).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from rich import box
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from service.cli import EXAMPLES, console, errors, print_assessment, print_cards

FHIR_JSON = "application/fhir+json"
IN_PROCESS_BASE = "http://ketamine-cds.in-process"
PREFETCH_PAGE_CAP = 200
"""Pages a CDS client reads per prefetch query before giving up (the EHR side, not the service)."""
SEED_CONCURRENCY = 4
HOOKS_WITH_ORDERS = ("order-select", "order-sign")
HOOK_OF_SERVICE = {
    "trd-ketamine-screen": "patient-view",
    "trd-antidepressant-order": "order-select",
    "ketamine-order-safety": "order-sign",
}


class IntegrationError(Exception):
    """A problem the user can fix; the message says what (no traceback is shown)."""


# ------------------------------------------------------------------------------------------------
# Scenario patients


def scenario_index() -> list[dict[str, Any]]:
    path = EXAMPLES / "index.json"
    try:
        index: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise IntegrationError(f"the scenario patients are missing: {path} not found") from exc
    return index


def _today() -> date:
    return datetime.now(UTC).date()


def _normal_prefix(prefix: str) -> str:
    if prefix and not re.fullmatch(r"[A-Za-z0-9\-.]{1,20}", prefix):
        raise IntegrationError("--prefix may hold only letters, digits, '-' and '.' (max 20)")
    return prefix if not prefix or prefix.endswith("-") else prefix + "-"


def _rename_refs(value: Any, renamed: dict[str, str]) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key == "reference" and isinstance(item, str) and item in renamed:
                out[key] = renamed[item]
            else:
                out[key] = _rename_refs(item, renamed)
        return out
    if isinstance(value, list):
        return [_rename_refs(v, renamed) for v in value]
    return value


def with_prefix(resources: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """The resources with ``prefix`` before every id (and every reference to them)."""
    if not prefix:
        return resources
    renamed = {
        f"{r['resourceType']}/{r['id']}": f"{r['resourceType']}/{(prefix + r['id'])[:64]}"
        for r in resources
        if isinstance(r.get("id"), str)
    }
    out = []
    for resource in resources:
        copy = _rename_refs(resource, renamed)
        if isinstance(resource.get("id"), str):
            copy["id"] = renamed[f"{resource['resourceType']}/{resource['id']}"].split("/", 1)[1]
        out.append(copy)
    return out


def scenario_transaction(
    entry: dict[str, Any], *, base_url: str, today: date | None, prefix: str = ""
) -> dict[str, Any]:
    """The scenario's transaction Bundle for one FHIR server: dates rolled to ``today`` (None
    keeps them), ids prefixed, PUT to client-assigned ids with absolute fullUrls (HAPI and
    Medplum accept it; loading twice updates instead of duplicating)."""
    from service.date_roller import roll_dates

    bundle = json.loads((EXAMPLES / entry["file"]).read_text(encoding="utf-8"))
    if today is not None:
        bundle = roll_dates(bundle, today)
    resources = with_prefix([e["resource"] for e in bundle.get("entry", [])], prefix)
    base = base_url.rstrip("/")
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "timestamp": bundle.get("timestamp"),
        "entry": [
            {
                "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
            for r in resources
        ],
    }


def scenario_draft_orders(
    entry: dict[str, Any], *, today: date | None, patient_id: str
) -> list[dict[str, Any]]:
    """The scenario's draft orders, dated like its (rolled) bundle, for ``patient_id``."""
    from service.date_roller import roll_dates

    stamp = json.loads((EXAMPLES / entry["file"]).read_text(encoding="utf-8")).get("timestamp")
    drafts = []
    for draft in entry.get("draft_orders") or []:
        order = dict(draft)
        if today is not None and isinstance(stamp, str):
            order = roll_dates({**order, "timestamp": stamp}, today)
            order.pop("timestamp", None)
        order["subject"] = {"reference": f"Patient/{patient_id}"}
        drafts.append(order)
    return drafts


def find_scenario(patient_id: str) -> dict[str, Any] | None:
    """The scenario a seeded patient id belongs to (exact, or after a ``seed --prefix``)."""
    matches = [
        e
        for e in scenario_index()
        if patient_id == e["patient_id"]
        or (
            patient_id.endswith(e["patient_id"])
            and patient_id[: -len(e["patient_id"])].endswith("-")
        )
    ]
    return max(matches, key=lambda e: len(e["patient_id"])) if matches else None


# ------------------------------------------------------------------------------------------------
# FHIR client side


def fhir_client(token: str | None, *, timeout: float = 60.0) -> httpx.AsyncClient:
    headers = {"Accept": FHIR_JSON}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.AsyncClient(headers=headers, timeout=timeout, follow_redirects=False)


def _outcome_text(body: Any) -> str:
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        parts = []
        for issue in body.get("issue") or []:
            text = issue.get("diagnostics") or (issue.get("details") or {}).get("text")
            parts.append(str(text or issue.get("code") or "error"))
        return "; ".join(parts)
    return ""


def _response_problem(response: httpx.Response) -> str:
    try:
        detail = _outcome_text(response.json())
    except ValueError:
        detail = response.text[:300]
    return f"HTTP {response.status_code}" + (f": {detail}" if detail else "")


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
        raise IntegrationError(f"cannot reach the FHIR server {base_url}: {exc}") from exc
    if response.status_code not in (200, 201):
        raise IntegrationError(
            f"the FHIR server refused scenario {entry['patient_id']}: {_response_problem(response)}"
        )
    body = response.json()
    failed = [
        status
        for e in body.get("entry") or []
        if not re.match(r"(HTTP/\S+\s+)?2\d\d", status := str(e.get("response", {}).get("status")))
    ]
    if failed:
        raise IntegrationError(
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


@dataclass
class PrefetchRead:
    """What a CDS client read from the FHIR server to fill the prefetch."""

    prefetch: dict[str, Any] = field(default_factory=dict)
    requests: int = 0
    pages: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _under(url: str, base: str) -> bool:
    target, root = urlsplit(url), urlsplit(base.rstrip("/"))
    return (target.scheme, target.netloc) == (root.scheme, root.netloc) and (
        target.path == root.path or target.path.startswith(root.path + "/")
    )


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
            return _failure(f"the query for {key} failed ({type(exc).__name__})")
        if response.status_code == 404 and pages == 0 and "?" not in rendered:
            return None  # a read of something that does not exist: nothing found
        if response.status_code != 200:
            read.problems.append(f"{key}: {_response_problem(response)}")
            return _failure(f"the query for {key} answered {_response_problem(response)}")
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
        url = next(
            (
                link.get("url")
                for link in body.get("link") or []
                if isinstance(link, dict) and link.get("relation") == "next"
            ),
            None,
        )
        if url is not None and not _under(url, base_url):
            read.problems.append(f"{key}: a paging link left the FHIR server; not followed")
            url = None
        if url is not None and pages >= PREFETCH_PAGE_CAP:
            read.problems.append(f"{key}: more than {PREFETCH_PAGE_CAP} pages; the rest not read")
            url = None
    read.pages[key] = pages
    matches = [e for e in entries if (e.get("search") or {}).get("mode", "match") == "match"]
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(matches)}
    if entries:
        bundle["entry"] = entries
    return bundle


def _failure(text: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "exception", "diagnostics": text}],
    }


async def read_prefetch(
    fhir: httpx.AsyncClient,
    base_url: str,
    templates: dict[str, str],
    context: dict[str, Any],
) -> PrefetchRead:
    """Fill the prefetch as an EHR would: render each template, run it, read every page.

    A failed query is sent as an OperationOutcome (the EHR tried and failed); a template that
    cannot be rendered is left out.
    """
    from service.prefetch import render

    read = PrefetchRead()
    rendered = {k: render(t, context) for k, t in templates.items()}
    keys = [k for k, r in rendered.items() if r is not None]
    values = await asyncio.gather(
        *(_read_key(fhir, base_url, k, str(rendered[k]), read) for k in keys)
    )
    read.prefetch = dict(zip(keys, values, strict=True))
    return read


# ------------------------------------------------------------------------------------------------
# Calling the service


@contextlib.asynccontextmanager
async def service_client(
    service_url: str | None,
    *,
    fhir_server: str,
    fhir_timeout: float = 15.0,
    clock: Callable[[], datetime] | None = None,
    page_cap: int | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the CDS service: a running one, or this process's app in dev mode."""
    if service_url:
        async with httpx.AsyncClient(
            base_url=service_url.rstrip("/"), timeout=120, follow_redirects=False
        ) as client:
            yield client
        return
    from pydantic import ValidationError

    from service.main import create_app
    from service.settings import Settings

    overrides: dict[str, Any] = {
        "allow_unauthenticated": True,
        "bind_host": "127.0.0.1",
        "allowed_fhir_servers": fhir_server.rstrip("/"),
        "fhir_timeout_seconds": fhir_timeout,
    }
    if page_cap is not None:
        overrides["fhir_page_cap"] = page_cap
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise IntegrationError(
            "cannot configure the in-process service: "
            + "; ".join(str(e["msg"]) for e in exc.errors())
        ) from exc
    app = create_app(settings, clock=clock)
    # The in-process service is development mode by construction: its start-up warning is noise.
    startup_logger = logging.getLogger("service.main")
    level = startup_logger.level
    startup_logger.setLevel(logging.ERROR)
    try:
        async with app.router.lifespan_context(app):
            startup_logger.setLevel(level)
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=IN_PROCESS_BASE, timeout=120
            ) as client:
                yield client
    finally:
        startup_logger.setLevel(level)


@dataclass
class Jwt:
    key: dict[str, Any]
    iss: str

    def header(self, audience: str) -> dict[str, str]:
        from service.keys_cli import mint_token

        return {"Authorization": f"Bearer {mint_token(self.key, iss=self.iss, aud=audience)}"}


async def discovery(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    try:
        response = await client.get("/cds-services")
    except httpx.HTTPError as exc:
        raise IntegrationError(f"cannot reach the CDS service: {exc}") from exc
    if response.status_code != 200:
        raise IntegrationError(f"discovery failed: {_response_problem(response)}")
    services: list[dict[str, Any]] = response.json()["services"]
    return services


def pick_service(services: list[dict[str, Any]], hook_or_service: str) -> dict[str, Any]:
    for service in services:
        if service["id"] == hook_or_service:
            return service
    on_hook = [s for s in services if s["hook"] == hook_or_service]
    if len(on_hook) == 1:
        return on_hook[0]
    names = ", ".join(f"{s['id']} ({s['hook']})" for s in services)
    raise IntegrationError(
        f"no single CDS service for {hook_or_service!r}; the service has {names}"
    )


def hook_context(
    service: dict[str, Any],
    patient_id: str,
    *,
    user: str = "Practitioner/integration-engineer",
    draft_orders: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    context: dict[str, Any] = {"userId": user, "patientId": patient_id}
    if service["hook"] in HOOKS_WITH_ORDERS:
        if not draft_orders:
            raise IntegrationError(
                f"{service['id']} ({service['hook']}) needs draft orders: pass --draft-order FILE"
            )
        orders = []
        for order in draft_orders:
            order = dict(order)
            order.setdefault("id", str(uuid.uuid4()))
            order.setdefault("subject", {"reference": f"Patient/{patient_id}"})
            orders.append(order)
        context["draftOrders"] = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": o} for o in orders],
        }
        if service["hook"] == "order-select":
            context["selections"] = [f"{o['resourceType']}/{o['id']}" for o in orders]
    return context


def hook_request(
    service: dict[str, Any],
    context: dict[str, Any],
    *,
    fhir_server: str,
    token: str | None,
    prefetch: dict[str, Any] | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hook": service["hook"],
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": fhir_server.rstrip("/"),
        "context": context,
    }
    if token:
        body["fhirAuthorization"] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "ketamine-cds",
            "patient": context["patientId"],
        }
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


async def call_service(
    client: httpx.AsyncClient,
    service_id: str,
    body: dict[str, Any],
    *,
    explain: bool = False,
    jwt: Jwt | None = None,
) -> httpx.Response:
    path = f"/cds-services/{service_id}" + ("/explain" if explain else "")
    headers = jwt.header(f"{client.base_url}{path}".rstrip("/")) if jwt else {}
    try:
        return await client.post(path, json=body, headers=headers)
    except httpx.HTTPError as exc:
        raise IntegrationError(f"cannot reach the CDS service: {exc}") from exc


@dataclass
class Invocation:
    service: dict[str, Any]
    request: dict[str, Any]
    response: httpx.Response
    read: PrefetchRead | None
    elapsed_ms: float


async def invoke(
    client: httpx.AsyncClient,
    hook_or_service: str,
    *,
    fhir_server: str,
    patient_id: str,
    token: str | None = None,
    draft_orders: list[dict[str, Any]] | None = None,
    prefetch: bool = True,
    explain: bool = False,
    jwt: Jwt | None = None,
    status: Callable[[str], None] | None = None,
) -> Invocation:
    """One CDS client call: discovery, prefetch from the FHIR server (or not), the hook call."""
    say = status or (lambda _text: None)
    say("reading discovery")
    service = pick_service(await discovery(client), hook_or_service)
    context = hook_context(service, patient_id, draft_orders=draft_orders)
    read = None
    if prefetch:
        say(f"filling {len(service.get('prefetch') or {})} prefetch templates from {fhir_server}")
        async with fhir_client(token) as fhir:
            read = await read_prefetch(fhir, fhir_server, service.get("prefetch") or {}, context)
    body = hook_request(
        service,
        context,
        fhir_server=fhir_server,
        token=token,
        prefetch=read.prefetch if read else None,
    )
    say(f"calling {service['id']}")
    started = time.perf_counter()
    response = await call_service(client, service["id"], body, explain=explain, jwt=jwt)
    return Invocation(service, body, response, read, (time.perf_counter() - started) * 1000)


# ------------------------------------------------------------------------------------------------
# Commands


def _run(work: Coroutine[Any, Any, int]) -> int:
    try:
        return asyncio.run(work)
    except IntegrationError as exc:
        errors.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True, highlight=False)
        return 2


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
    )


def _expected_text(entry: dict[str, Any]) -> tuple[str, str, str]:
    """Recommendation, failed count and cards as index.json states them. An empty indicator list
    means "no card" only for not-a-candidate and for the order hooks; for other patient-view
    scenarios the indicator is not pinned (a card is expected: shown as "card")."""
    expected = entry["expected"]
    indicators = expected.get("card_indicators") or []
    recommendation = str(expected.get("recommendation") or "?")
    if indicators:
        cards = ", ".join(indicators)
    elif recommendation == "not-a-candidate" or entry["service"] != "trd-ketamine-screen":
        cards = "none"
    else:
        cards = "card"
    failed = expected.get("failed_adequate_trials")
    return recommendation, "?" if failed is None else str(failed), cards


def print_seeded(results: list[SeedResult], title: str) -> None:
    """The seeded patients and what each should produce (a table when the terminal is wide)."""
    rows = []
    for result in results:
        recommendation, failed, cards = _expected_text(result.entry)
        hook = HOOK_OF_SERVICE.get(result.entry["service"], result.entry["service"])
        rows.append((result.patient_id, hook, recommendation, failed, cards, result.entry))
    if console.width < 120:
        console.print(f"[bold]{title}[/bold]")
        for patient_id, hook, recommendation, failed, cards, entry in rows:
            console.print(
                f"[bold]{patient_id}[/bold] ({hook}): {recommendation}, {failed} failed, "
                f"cards: {cards}"
            )
            console.print(f"    [dim]{entry['description']}[/dim]")
        return
    table = Table(
        Column("patient id", no_wrap=True),
        Column("hook", no_wrap=True),
        Column("should produce", no_wrap=True),
        Column("failed", justify="right"),
        Column("cards", no_wrap=True),
        Column("scenario", ratio=1),
        box=box.SIMPLE,
        pad_edge=False,
        title=title,
    )
    for patient_id, hook, recommendation, failed, cards, entry in rows:
        table.add_row(patient_id, hook, recommendation, failed, cards, entry["description"])
    console.print(table)


async def _seed_command(args: argparse.Namespace) -> int:
    prefix = _normal_prefix(args.prefix or "")
    entries = scenario_index()
    if args.only:
        wanted = set(args.only)
        entries = [e for e in entries if e["patient_id"] in wanted]
        if not entries:
            raise IntegrationError(f"no scenario named {', '.join(sorted(wanted))}")
    today = _today() if args.roll else None
    with _progress() as progress:
        task = progress.add_task(
            f"loading {len(entries)} patients into {args.fhir_server}", total=len(entries)
        )
        async with fhir_client(args.token) as fhir:
            results = await seed(
                fhir,
                args.fhir_server,
                entries,
                today=today,
                prefix=prefix,
                on_done=lambda _r: progress.advance(task),
            )
    if args.json:
        console.print_json(
            json.dumps(
                [
                    {
                        "patient_id": r.patient_id,
                        "service": r.entry["service"],
                        "description": r.entry["description"],
                        "draft_orders": len(r.entry.get("draft_orders") or []),
                        "expected": r.entry["expected"],
                    }
                    for r in results
                ]
            )
        )
        return 0
    title = f"{len(results)} scenario patients in {args.fhir_server}" + (
        f" (dates moved to {today.isoformat()})" if today else ""
    )
    print_seeded(results, title)
    first = results[0].patient_id if results else "trd-two-switches"
    console.print(
        f"Try: [bold]ketamine-cds invoke patient-view --fhir-server {args.fhir_server} "
        f"--patient {first}[/bold]  (order hooks use the scenario's draft orders)"
    )
    return 0


def _draft_orders_from(paths: list[str]) -> list[dict[str, Any]]:
    orders: list[dict[str, Any]] = []
    for name in paths:
        path = Path(name)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise IntegrationError(f"cannot read draft order {path}: {exc}") from exc
        items = data if isinstance(data, list) else [data]
        for item in items:
            if isinstance(item, dict) and item.get("resourceType") == "Bundle":
                orders.extend(e["resource"] for e in item.get("entry") or [] if "resource" in e)
            elif isinstance(item, dict) and "resourceType" in item:
                orders.append(item)
            else:
                raise IntegrationError(f"{path} holds no FHIR resource or Bundle")
    return orders


def _jwt_from(args: argparse.Namespace) -> Jwt | None:
    if not args.jwt_key:
        return None
    if not args.jwt_iss:
        raise IntegrationError("--jwt-key needs --jwt-iss (the issuer the service trusts)")
    try:
        key = json.loads(Path(args.jwt_key).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise IntegrationError(f"cannot read the private key {args.jwt_key}: {exc}") from exc
    return Jwt(key, args.jwt_iss)


def print_contraindication_evidence(assessment: dict[str, Any]) -> None:
    rows = [c for c in assessment.get("contraindications") or [] if c.get("evidence")]
    if rows:
        table = Table("contraindication", "evidence", title="Contraindication evidence")
        for item in rows:
            table.add_row(item["id"], ", ".join(item["evidence"]))
        console.print(table)
    reasons = assessment.get("candidate_reason_evidence") or {}
    if reasons:
        table = Table("candidate reason", "evidence", title="Candidate reason evidence")
        for reason, evidence in reasons.items():
            table.add_row(reason, ", ".join(dict.fromkeys(evidence)) or "-")
        console.print(table)


def _print_invocation(invocation: Invocation, args: argparse.Namespace, explain: bool) -> None:
    body = invocation.response.json()
    service = invocation.service
    mode = (
        "prefetch filled from the FHIR server"
        if invocation.read
        else "no prefetch (the service queries the FHIR server)"
    )
    where = args.service_url or "in-process service (development mode)"
    console.rule(f"[bold]{service['id']}[/bold] ({service['hook']}) for Patient/{args.patient}")
    console.print(f"[dim]{where}; {mode}[/dim]")
    if invocation.read:
        pages = ", ".join(f"{k} {n}p" for k, n in invocation.read.pages.items())
        console.print(f"[dim]prefetch: {invocation.read.requests} FHIR requests ({pages})[/dim]")
        for problem in invocation.read.problems:
            console.print(f"[yellow]prefetch problem:[/yellow] {escape(problem)}")
    if explain:
        print_assessment(body["assessment"])
        print_contraindication_evidence(body["assessment"])
        explanation = body.get("explanation") or {}
        fetched = explanation.get("fetched_by_service") or []
        counts = explanation.get("resources_by_key") or {}
        console.print(
            f"[dim]queried by the service: {', '.join(fetched) or 'nothing'}; resources: "
            + ", ".join(f"{k} {v}" for k, v in counts.items())
            + "[/dim]"
        )
    print_cards(body["cards"], f"{service['hook']}: ")
    console.print(f"[dim]answered HTTP 200 in {invocation.elapsed_ms:.0f} ms[/dim]")


async def _invoke_command(args: argparse.Namespace, explain: bool) -> int:
    drafts = _draft_orders_from(args.draft_order or [])
    if not drafts:
        scenario = find_scenario(args.patient)
        if scenario is not None:
            drafts = scenario_draft_orders(
                scenario, today=_today() if args.roll else None, patient_id=args.patient
            )
    jwt = _jwt_from(args)
    with errors.status("starting") as status:
        async with service_client(
            args.service_url, fhir_server=args.fhir_server, fhir_timeout=args.fhir_timeout
        ) as client:
            invocation = await invoke(
                client,
                args.hook_or_service,
                fhir_server=args.fhir_server,
                patient_id=args.patient,
                token=args.token,
                draft_orders=drafts,
                prefetch=args.prefetch,
                explain=explain,
                jwt=jwt,
                status=lambda text: status.update(text),
            )
    response = invocation.response
    if response.status_code != 200:
        problem = escape(_response_problem(response))
        errors.print(f"[red]the service answered {problem}[/red]", soft_wrap=True)
        if args.json:
            _print_body(response)
        return 1
    if args.json:
        _print_body(response)
        return 0
    _print_invocation(invocation, args, explain)
    return 0


def _print_body(response: httpx.Response) -> None:
    try:
        console.print_json(response.text)
    except ValueError:
        console.print(response.text, markup=False, highlight=False)


def cmd_seed(args: argparse.Namespace) -> int:
    return _run(_seed_command(args))


def cmd_invoke(args: argparse.Namespace) -> int:
    return _run(_invoke_command(args, explain=False))


def cmd_explain(args: argparse.Namespace) -> int:
    return _run(_invoke_command(args, explain=True))


def _call_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "hook_or_service",
        metavar="HOOK-OR-SERVICE",
        help="patient-view, order-select, order-sign, or a service id",
    )
    parser.add_argument("--fhir-server", required=True, help="FHIR R4 base URL")
    parser.add_argument("--patient", required=True, help="Patient id on that server")
    parser.add_argument(
        "--token", help="bearer token for the FHIR server (sent as fhirAuthorization)"
    )
    parser.add_argument(
        "--draft-order",
        action="append",
        metavar="FILE",
        help="draft order(s) for order-select/order-sign: a resource, list or Bundle "
        "(default for scenario patients: the scenario's draft orders)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--prefetch",
        dest="prefetch",
        action="store_true",
        default=True,
        help="fill the prefetch from the FHIR server, as an EHR would (default)",
    )
    mode.add_argument(
        "--no-prefetch",
        dest="prefetch",
        action="store_false",
        help="send no prefetch: the service queries the FHIR server itself",
    )
    parser.add_argument("--service-url", help="a running service (default: run it in this process)")
    parser.add_argument(
        "--jwt-key", help="private JWK (from `keys generate`) to sign calls to --service-url"
    )
    parser.add_argument("--jwt-iss", help="issuer for --jwt-key, as the service trusts it")
    parser.add_argument(
        "--fhir-timeout",
        type=float,
        default=15.0,
        help="in-process service: seconds allowed per FHIR request (default 15)",
    )
    parser.add_argument(
        "--no-roll",
        dest="roll",
        action="store_false",
        help="scenario draft orders keep their written dates",
    )
    parser.add_argument("--json", action="store_true", help="print the service's JSON answer")


def register(sub: Any) -> None:
    seed_parser = sub.add_parser(
        "seed", help="load the scenario patients into a FHIR server (dates moved to today)"
    )
    seed_parser.add_argument("--fhir-server", required=True, help="FHIR R4 base URL")
    seed_parser.add_argument("--token", help="bearer token for the FHIR server")
    seed_parser.add_argument(
        "--prefix", default="", help="put PREFIX- before every id (a shared public server)"
    )
    seed_parser.add_argument(
        "--only", action="append", metavar="PATIENT", help="load only this scenario (repeatable)"
    )
    seed_parser.add_argument(
        "--no-roll",
        dest="roll",
        action="store_false",
        help="keep the dates as written (relative to Bundle.timestamp)",
    )
    seed_parser.add_argument("--json", action="store_true", help="print the patients as JSON")
    seed_parser.set_defaults(func=cmd_seed)
    invoke_parser = sub.add_parser(
        "invoke", help="call a CDS service for a patient on a FHIR server, as an EHR would"
    )
    _call_options(invoke_parser)
    invoke_parser.set_defaults(func=cmd_invoke)
    explain_parser = sub.add_parser(
        "explain", help="like invoke, and print the assessment: trials, contraindications, gaps"
    )
    _call_options(explain_parser)
    explain_parser.set_defaults(func=cmd_explain)
