"""The benchmarked application, and a direct ASGI driver for server-side (in-process) timings.

The app is the production one (``service.main.create_app``) in development mode (loopback only,
no JWT: the JWT check is not what is measured), with the charts' clock (``charts.ANCHOR``), JSON
logs at INFO as ``ketamine-cds serve`` configures them, and a body limit large enough for the
heavy chart's unfiltered prefetch (see ``MAX_BODY_BYTES``).
"""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from benchmarks.charts import ANCHOR

MAX_BODY_BYTES = 20_000_000
"""The heavy chart's full prefetch is about 5.6 MB, above the 5 MB default
(``KETAMINE_CDS_MAX_BODY_BYTES``); the benchmark raises the limit."""

ENV = {
    "KETAMINE_CDS_ALLOW_UNAUTHENTICATED": "true",
    "KETAMINE_CDS_BIND_HOST": "127.0.0.1",
    "KETAMINE_CDS_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
    "KETAMINE_CDS_FHIR_PAGE_CAP": "100",
}


def bench_settings(**overrides: Any) -> Any:
    from service.settings import Settings

    values: dict[str, Any] = {
        "allow_unauthenticated": True,
        "bind_host": "127.0.0.1",
        "max_body_bytes": MAX_BODY_BYTES,
        "fhir_page_cap": 100,
    }
    values.update(overrides)
    return Settings(**values)


def create_bench_app(
    *, transport: httpx.AsyncBaseTransport | None = None, log_level: str | None = None
) -> FastAPI:
    from service.logging_setup import configure_logging
    from service.main import create_app

    configure_logging(log_level or os.environ.get("KETAMINE_CDS_LOG_LEVEL", "INFO"))
    return create_app(bench_settings(), clock=lambda: ANCHOR, transport=transport)


def recommended_startup() -> None:
    """The start-up step recommended for ``service/main.py`` (not applied there: not ours to
    edit): import the fhir.resources models now, then move everything start-up allocated out
    of the garbage collector's reach (``gc.freeze``), so that the full collections a large
    request body triggers do not walk the ~100k long-lived objects of the app every time."""
    from fhir_mappers import parse

    preload = getattr(parse, "preload_models", None)
    if preload is not None:
        preload()
    gc.collect()
    gc.freeze()


class _AfterStartup:
    """ASGI wrapper running ``recommended_startup`` once the app's lifespan start-up is done."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_after(message: dict[str, Any]) -> None:
            if message["type"] == "lifespan.startup.complete":
                recommended_startup()
            await send(message)

        await self.app(scope, receive, send_after)


def uvicorn_app() -> Any:
    """Factory for uvicorn (one per worker). ``BENCH_RECOMMENDED_STARTUP=1`` adds the
    recommended start-up step (the "GC-frozen" variant of the figures)."""
    app = create_bench_app()
    if os.environ.get("BENCH_RECOMMENDED_STARTUP") == "1":
        return _AfterStartup(app)
    return app


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[Callable[..., Any]]:
    """Run the app's lifespan and yield ``call(path, body) -> (status, body_bytes)``."""
    async with app.router.lifespan_context(app):

        async def call(path: str, body: bytes) -> tuple[int, bytes]:
            return await asgi_post(app, path, body)

        yield call


async def asgi_post(app: Any, path: str, body: bytes) -> tuple[int, bytes]:
    """POST ``body`` to ``path`` straight through the ASGI interface (no sockets, no client)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8080"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
        "state": {},
    }
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)
