"""The benchmarked application, and a direct ASGI driver for server-side (in-process) timings.

The app is the production one (``service.main.create_app``, as ``ketamine-cds serve`` builds
it) with the charts' clock (``charts.ANCHOR``), JSON logs at INFO as ``ketamine-cds serve``
configures them, a body limit large enough for the heavy chart's unfiltered prefetch (see
``MAX_BODY_BYTES``) and its store (``KETAMINE_CDS_DATABASE_URL``, set by ``python -m benchmarks``
to a fresh database) with a suppression secret, so that every call writes its card log and looks
up earlier feedback as in production. By default in development mode (loopback only, no JWT);
with ``BENCH_JWT=1`` (see ``BenchJwt``) every call carries a new signed token, checked against
the trusted client's key and recorded in the store's replay table.
"""

from __future__ import annotations

import json
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from jwt.algorithms import ECAlgorithm

from benchmarks.charts import ANCHOR
from benchmarks.hook_bodies import EHR_BASE

MAX_BODY_BYTES = 20_000_000
"""The heavy chart's full prefetch is about 5.6 MB, above the 5 MB default
(``KETAMINE_CDS_MAX_BODY_BYTES``); the benchmark raises the limit."""

ENV = {
    "KETAMINE_CDS_ALLOW_UNAUTHENTICATED": "true",
    "KETAMINE_CDS_BIND_HOST": "127.0.0.1",
    "KETAMINE_CDS_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
    "KETAMINE_CDS_FHIR_PAGE_CAP": "100",
}


JWT_ISS = "https://ehr.example"
PUBLIC_BASE_URL = "http://127.0.0.1:8080"


class BenchJwt:
    """An EHR's signing key (ES384), the service settings that trust it, and a fresh token (new
    ``jti``) for every call. The key travels to other processes as a PEM file."""

    def __init__(self, key: ec.EllipticCurvePrivateKey | None = None) -> None:
        self.key = key or ec.generate_private_key(ec.SECP384R1())

    @classmethod
    def from_pem(cls, pem: bytes) -> BenchJwt:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the benchmark's JWT key must be an EC key")
        return cls(key)

    def pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def env(self) -> dict[str, str]:
        public = json.loads(ECAlgorithm.to_jwk(self.key.public_key()))
        public.update({"kid": "bench-1", "alg": "ES384", "use": "sig"})
        client = {"iss": JWT_ISS, "jwks": {"keys": [public]}, "fhir_servers": [EHR_BASE]}
        return {
            "BENCH_JWT": "1",
            "KETAMINE_CDS_TRUSTED_CLIENTS": json.dumps([client]),
            "KETAMINE_CDS_PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        }

    def token(self, service_id: str) -> str:
        now = int(ANCHOR.timestamp())  # the app's clock is the charts' clock
        claims = {
            "iss": JWT_ISS,
            "aud": f"{PUBLIC_BASE_URL}/cds-services/{service_id}",
            "iat": now,
            "exp": now + 300,
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(claims, self.key, algorithm="ES384", headers={"kid": "bench-1"})


def bench_settings(**overrides: Any) -> Any:
    """Settings of the benchmarked app; the environment supplies the store's URL and, with
    ``BENCH_JWT=1``, the trusted client."""
    from service.settings import Settings

    values: dict[str, Any] = {
        "allow_unauthenticated": os.environ.get("BENCH_JWT") != "1",
        # With a secret every patient-view call looks up earlier feedback and remembers its
        # referral card, as in production (``python -m benchmarks`` sets one per run).
        "suppression_secret": os.environ.get("KETAMINE_CDS_SUPPRESSION_SECRET")
        or secrets.token_urlsafe(32),
        "bind_host": "127.0.0.1",
        "max_body_bytes": MAX_BODY_BYTES,
        "fhir_page_cap": 100,
    }
    values.update(overrides)
    return Settings(**values)


def create_bench_app(
    *, transport: httpx.AsyncBaseTransport | None = None, log_level: str | None = None
) -> FastAPI:
    """The app as ``ketamine-cds serve`` builds it (``freeze_gc``: the FHIR models imported and
    the start-up objects moved out of the garbage collector's reach), with the charts' clock."""
    from service.logging_setup import configure_logging
    from service.main import create_app

    configure_logging(log_level or os.environ.get("KETAMINE_CDS_LOG_LEVEL", "INFO"))
    return create_app(bench_settings(), clock=lambda: ANCHOR, transport=transport, freeze_gc=True)


def uvicorn_app() -> Any:
    """Factory for uvicorn (one per worker)."""
    return create_bench_app()


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[Callable[..., Any]]:
    """Run the app's lifespan and yield ``call(path, body) -> (status, body_bytes)``."""
    async with app.router.lifespan_context(app):

        async def call(path: str, body: bytes, token: str | None = None) -> tuple[int, bytes]:
            return await asgi_post(app, path, body, token)

        yield call


async def asgi_post(
    app: Any, path: str, body: bytes, token: str | None = None
) -> tuple[int, bytes]:
    """POST ``body`` to ``path`` straight through the ASGI interface (no sockets, no client)."""
    headers = [
        (b"host", b"127.0.0.1:8080"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if token is not None:
        headers.append((b"authorization", b"Bearer " + token.encode()))
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
        "headers": headers,
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
