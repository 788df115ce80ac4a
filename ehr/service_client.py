"""Calling the CDS service as an EHR does: discovery, then a hook call (or its explain twin).

The service is a running one (``service_url``), or this process's app in development mode,
reached through ``httpx.ASGITransport`` and allowed to call the given FHIR server.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from pydantic import ValidationError

from ehr.errors import EhrError
from ehr.fhir_http import fhir_client, response_problem
from ehr.hook_request import bearer, hook_context, hook_request
from ehr.keys import mint_token
from ehr.prefetch_fill import PrefetchRead, read_prefetch
from ehr.services import ORDER_HOOKS, pick_service
from service.main import create_app
from service.settings import Settings

IN_PROCESS_BASE = "http://ketamine-cds.in-process"
USER = "Practitioner/integration-engineer"


def _in_process_settings(
    fhir_server: str | None, fhir_timeout: float, page_cap: int | None
) -> Settings:
    overrides: dict[str, Any] = {
        "allow_unauthenticated": True,
        "bind_host": "127.0.0.1",
        "fhir_timeout_seconds": fhir_timeout,
    }
    if fhir_server is not None:
        overrides["allowed_fhir_servers"] = fhir_server.rstrip("/")
    if page_cap is not None:
        overrides["fhir_page_cap"] = page_cap
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise EhrError(
            "cannot configure the in-process service: "
            + "; ".join(str(e["msg"]) for e in exc.errors())
        ) from exc


@contextlib.asynccontextmanager
async def service_client(
    service_url: str | None,
    *,
    fhir_server: str | None = None,
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
    app = create_app(_in_process_settings(fhir_server, fhir_timeout, page_cap), clock=clock)
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
    """Signs each call as a CDS client (``--jwt-key``/``--jwt-iss``)."""

    key: dict[str, Any]
    iss: str

    def header(self, audience: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(self.key, iss=self.iss, aud=audience)}"}


async def discovery(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    try:
        response = await client.get("/cds-services")
    except httpx.HTTPError as exc:
        raise EhrError(f"cannot reach the CDS service: {exc}") from exc
    if response.status_code != 200:
        raise EhrError(f"discovery failed: {response_problem(response)}")
    services: list[dict[str, Any]] = response.json()["services"]
    return services


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
        raise EhrError(f"cannot reach the CDS service: {exc}") from exc


@dataclass
class Invocation:
    service: dict[str, Any]
    request: dict[str, Any]
    response: httpx.Response
    read: PrefetchRead | None
    elapsed_ms: float


def _draft_orders(
    service: dict[str, Any], patient_id: str, draft_orders: list[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    """The draft orders an order hook needs, each with an id and this patient as subject."""
    if service["hook"] not in ORDER_HOOKS:
        return []
    if not draft_orders:
        raise EhrError(
            f"{service['id']} ({service['hook']}) needs draft orders: pass --draft-order FILE"
        )
    return [
        {"id": str(uuid.uuid4()), "subject": {"reference": f"Patient/{patient_id}"}, **order}
        for order in draft_orders
    ]


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
    context = hook_context(
        service["hook"],
        patient_id,
        user=USER,
        draft_orders=_draft_orders(service, patient_id, draft_orders),
    )
    templates = service.get("prefetch") or {}
    read = None
    if prefetch:
        say(f"filling {len(templates)} prefetch templates from {fhir_server}")
        async with fhir_client(token) as fhir:
            read = await read_prefetch(fhir, fhir_server, templates, context)
    body = hook_request(
        service["hook"],
        context,
        prefetch=read.prefetch if read else None,
        fhir_server=fhir_server.rstrip("/"),
        fhir_authorization=(
            bearer(token, scope="patient/*.read", patient=patient_id) if token else None
        ),
    )
    say(f"calling {service['id']}")
    started = time.perf_counter()
    response = await call_service(client, service["id"], body, explain=explain, jwt=jwt)
    return Invocation(service, body, response, read, (time.perf_counter() - started) * 1000)
